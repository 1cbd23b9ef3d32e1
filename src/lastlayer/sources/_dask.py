"""Statistics and exact leave-one-out of dask arrays: one task per row chunk, tree sums."""

from __future__ import annotations

import numpy as np

from .._core.loo import add_partials, loo_partial, loo_plan
from .._core.stats import block_statistics, merge
from .._validation import (
    check_feature_range,
    check_finite_rows,
    check_row_inputs,
    check_alphas,
    check_cell_targets,
    check_cell_weights,
    check_int,
    check_stats,
)
from ._sources import DEFAULT_BLOCK_ROWS, compute_if_dask
from ._streaming import check_precision

__all__ = ["dask_loo_path", "dask_statistics"]

_DASK_HINT = 'pip install "lastlayer[dask]"'


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        raise ImportError(f"dask input needs dask and distributed: {_DASK_HINT}") from exc
    return dask, da


def _dask_rows(X, da):
    if not isinstance(X, da.Array):
        X = da.from_array(np.asarray(X), chunks=(DEFAULT_BLOCK_ROWS, -1))
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(
            "The 'X' parameter must be a 2-D dask array of shape (n_samples, n_features) "
            f"with at least one row and column. Got shape {X.shape} instead.")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            "The 'X' dask array has unknown chunk sizes; call X.compute_chunk_sizes() first.")
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    bounds = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int)
    return X, X.to_delayed()[:, 0], bounds


def _tree_sum(dask, parts, combine, split_every):
    while len(parts) > 1:
        parts = [dask.delayed(combine)(*parts[i:i + split_every])
                 for i in range(0, len(parts), split_every)]
    return parts[0]


def dask_statistics(X, cells, n_cells, sample_weight=None, *, split_every=8,
                    precision="float64"):
    """Per-cell sufficient statistics of a dask array, in parallel.

    Each row chunk (all columns) becomes one task computing its partial statistics;
    the partials are summed in a tree (``split_every`` at a time, like dask's own
    reductions). Runs on the active scheduler -- a ``dask.distributed`` client
    when one exists.

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features)
        A NumPy array is wrapped with ``dask.array.from_array``.
    cells : array-like of int of shape (n_samples,)
        NumPy or dask (computed first: labels are small).
    n_cells : int
    sample_weight : array-like of shape (n_samples,), default=None
        NumPy or dask.
    split_every : int, default=8
        Fan-in of the tree sum.
    precision : {"float64", "float32", "auto"}, default="float64"
        Of the Gram products, as in :func:`streaming_statistics`; with
        ``"float32"`` each task shifts its chunk by the chunk's own mean (rounded to
        float32) and undoes the shift in float64 before the tree sum. ``"auto"``:
        float32 when ``X`` is float32.

    Returns
    -------
    SufficientStats
        Equal (to round-off) to :func:`lastlayer.solvers.sufficient_statistics`.

    Notes
    -----
    Memory per worker: one row chunk of ``X`` plus ``split_every + 1`` partial
    statistics (``8 J (d + 1)^2`` bytes each).
    """
    dask, da = _import_dask()
    n_cells = check_int(n_cells, "n_cells", low=1)
    split_every = check_int(split_every, "split_every", low=2)
    X, blocks, bounds = _dask_rows(X, da)
    precision = check_precision(precision, lambda: X.dtype)
    cells, sw = check_row_inputs(compute_if_dask(cells), n_cells, int(X.shape[0]),
                                  compute_if_dask(sample_weight))
    parts = [
        dask.delayed(_checked_block_statistics)(blk, cells[lo:hi], n_cells,
                                                None if sw is None else sw[lo:hi],
                                                precision, lo, int(X.shape[0]))
        for blk, lo, hi in zip(blocks, bounds[:-1], bounds[1:])
    ]
    (stats,) = dask.compute(_tree_sum(dask, parts, _merge, split_every))
    return stats


def dask_loo_path(X, stats, cells, cell_weights, cell_targets, alphas, sample_weight=None,
                  *, split_every=8, precision="float64"):
    """:func:`streaming_loo_path` on a dask array, one task per row chunk.

    The eigendecomposition is done once, locally, from ``stats``
    (:func:`dask_statistics`); the plan (``d x r`` projection and small vectors) is
    shipped once to the workers, each row chunk returns per-alpha partial sums and
    these are added in a tree. ``precision`` as in :func:`streaming_loo_path`
    (``"auto"``: float32 projections when ``X`` is float32).

    Returns
    -------
    dict
        ``"alphas"``, ``"loo_mse"``, ``"df"`` as :func:`lastlayer.solvers.ridge_loo_path`.
    """
    dask, da = _import_dask()
    stats = check_stats(stats)
    omega = check_cell_weights(cell_weights, stats.n_cells)
    T = check_cell_targets(cell_targets, stats.n_cells)
    alphas = check_alphas(alphas)
    split_every = check_int(split_every, "split_every", low=2)
    X, blocks, bounds = _dask_rows(X, da)
    dtype = np.dtype(check_precision(precision, lambda: X.dtype))
    if X.shape[1] != stats.n_features:
        raise ValueError(
            f"The 'stats' parameter has {stats.n_features} features but X has "
            f"{X.shape[1]}.")
    cells, sw = check_row_inputs(compute_if_dask(cells), stats.n_cells, int(X.shape[0]),
                                  compute_if_dask(sample_weight))
    v = omega[cells] if sw is None else sw * omega[cells]
    plan, df = loo_plan(stats, omega, T, alphas, int(np.count_nonzero(v > 0)))
    plan_d = dask.delayed(plan, traverse=False)
    parts = [
        dask.delayed(loo_partial)(blk, cells[lo:hi], None if sw is None else sw[lo:hi],
                                   plan_d, dtype)
        for blk, lo, hi in zip(blocks, bounds[:-1], bounds[1:])
    ]
    (total, bad), = dask.compute(_tree_sum(dask, parts, add_partials, split_every))
    loo = total / plan.V
    loo[bad] = np.inf
    return {"alphas": alphas, "loo_mse": loo, "df": df}


def _checked_block_statistics(X, cells, n_cells, s, precision, first_row, n_rows):
    """:func:`block_statistics` of one row chunk after the checks an in-memory fit
    makes, naming rows of the whole array: NaN / inf (count, first row and column)
    and entries whose squares overflow the Gram precision."""
    X = np.asarray(X)
    if X.dtype.kind == "f":
        check_finite_rows(X, first_row=first_row)
        check_feature_range(X, precision, n_rows=n_rows, first_row=first_row)
    return block_statistics(X, cells, n_cells, s, precision)


def _merge(*stats):
    return merge(stats)
