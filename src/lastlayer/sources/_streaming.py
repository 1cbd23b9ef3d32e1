"""One-process, bounded-memory passes over a source: statistics and exact leave-one-out."""

from __future__ import annotations

import sys

import numpy as np
from tqdm.auto import tqdm

from .._core.loo import loo_partial, loo_plan
from .._core.stats import PRECISIONS, StatsAccumulator, resolve_precision
from .._validation import (
    check_row_inputs,
    check_alphas,
    check_cell_targets,
    check_cell_weights,
    check_feature_range,
    check_choice,
    check_int,
    check_stats,
)
from ._sources import as_source

__all__ = ["check_precision", "progress_bar", "streaming_loo_path",
           "streaming_statistics"]


def progress_bar(progress, total, desc):
    return tqdm(total=total, unit="row", unit_scale=True, desc=desc, file=sys.stderr,
                disable=not progress, leave=False, dynamic_ncols=True)


def check_precision(precision, stored_dtype):
    """``precision`` checked and ``"auto"`` resolved from ``stored_dtype()`` (called
    only then: a source may read a block to know its dtype)."""
    precision = check_choice(precision, "precision", ("auto", *PRECISIONS))
    return resolve_precision(precision, stored_dtype() if precision == "auto" else None)


def _stream(source, cells, sw, bar):
    """Yield ``(block, cells, sample_weight)`` aligned with the source's row order.

    Blocks are float32 or float64 as stored and may live in a buffer that the next
    block overwrites (``reuse=True``): each is used before the next is asked for.
    """
    n = cells.shape[0]
    lo = 0
    for blk in source.iter_blocks(None, reuse=True):
        hi = lo + blk.shape[0]
        if hi > n:
            raise ValueError(
                f"The 'cells' parameter has {n} entries, but the source yields more rows.")
        yield blk, cells[lo:hi], None if sw is None else sw[lo:hi]
        bar.update(blk.shape[0])
        lo = hi


# --------------------------------------------------------------------------------------
# Streaming (one process, bounded memory)
# --------------------------------------------------------------------------------------


def streaming_statistics(source, cells, n_cells, sample_weight=None, progress=True,
                         precision="float64"):
    """Per-cell sufficient statistics in one bounded-memory pass over a source.

    Equal (to round-off) to :func:`lastlayer.solvers.sufficient_statistics` on the
    same rows held in memory; the result feeds :func:`lastlayer.solvers.solve_ridge`,
    the leverage hook of :mod:`lastlayer.weights`, :mod:`lastlayer.paths` and
    :func:`streaming_loo_path`.

    Parameters
    ----------
    source : FeatureSource or anything :func:`as_source` accepts
    cells : array-like of int of shape (n_samples,)
        Cell of every row, in the source's row order (from ``source.labels()``).
    n_cells : int
        Number of cells ``J``.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative sample weights ``s_i``.
    progress : bool, default=True
        Show a tqdm progress bar on stderr.
    precision : {"float64", "float32", "auto"}, default="float64"
        Of the Gram products, as :func:`lastlayer.solvers.sufficient_statistics`:
        ``"float32"`` shifts every block by a fixed centre (the first block's mean,
        rounded to float32), takes its Gram product with ``ssyrk`` and accumulates
        in float64, undoing the shift exactly at the end -- accurate to about
        ``1e-7`` relative to the spread of the features, whatever their offset.
        ``"auto"``: float32 when the source stores float32.

    Returns
    -------
    SufficientStats

    Notes
    -----
    Memory (see the module docstring): one block as stored, read into one reused
    buffer for ``.npy`` files (``block_rows * d * itemsize`` bytes), about 64 MiB
    of workspace and the statistics, ``8 J (d + 1)^2`` bytes. No float64 copy of
    a float32 block is made: each sub-block is converted (float64) or shifted
    (float32) in the workspace. Gram matrices are accumulated with the symmetric
    rank-k update (``?syrk``, half the flops of ``X^T X``).
    """
    source = as_source(source)
    n_cells = check_int(n_cells, "n_cells", low=1)
    precision = check_precision(precision, lambda: source.dtype)
    n = source.n_samples
    cells, sw = check_row_inputs(cells, n_cells, n, sample_weight)
    acc = StatsAccumulator(n_cells, source.n_features, precision)
    first = 0
    with progress_bar(progress, n, "statistics") as bar:
        for blk, cb, sb in _stream(source, cells, sw, bar):
            if precision == "float32":  # squares that overflow float32, named as in memory
                check_feature_range(blk, precision, source=getattr(source, "path", None),
                                    n_rows=n, first_row=first)
            acc.add(blk, cb, sb)
            first += blk.shape[0]
    return acc.result()


def streaming_loo_path(source, stats, cells, cell_weights, cell_targets, alphas,
                       sample_weight=None, progress=True, precision="float64"):
    """Exact weighted leave-one-out error for many alphas in one more pass.

    The same quantity as :func:`lastlayer.solvers.ridge_loo_path` (primal case,
    ``d <=`` the number of weighted rows): with ``C = Q diag(lam) Q^T`` the
    eigendecomposition of the weighted centred Gram matrix, obtained from
    ``stats`` alone, each row's leverage and residual for every alpha follow from
    its projection ``u_i = sqrt(v_i) diag(lam)^{-1/2} Q^T (x_i - mu)``:

    .. math::

        h_{ii} = \\frac{v_i}{V} + \\sum_k u_{ik}^2 F_k,\\quad
        e_i = \\sqrt{v_i}(t_i - \\bar t) - \\sum_k u_{ik} F_k (U^\\top \\tilde T)_k,
        \\quad F_k = \\frac{\\lambda_k}{\\lambda_k + \\alpha n},

    and ``LOO(alpha) = sum_i ||e_i||^2 / (1 - h_ii)^2 / V``.

    Parameters
    ----------
    source : FeatureSource or anything :func:`as_source` accepts
    stats : SufficientStats
        Of the same rows (:func:`streaming_statistics`).
    cells, sample_weight
        As in :func:`streaming_statistics`.
    cell_weights : array-like of shape (n_cells,)
    cell_targets : array-like of shape (n_cells, n_targets) or (n_cells,)
    alphas : array-like of shape (n_alphas,)
        Non-negative ridge strengths.
    progress : bool, default=True
    precision : {"float64", "float32", "auto"}, default="float64"
        Of the projections ``Q^T (x_i - mu)``: ``"float32"`` shifts each sub-block
        by ``mu`` and projects it with a float32 product (accurate to about
        ``1e-7`` relative to the spread of the rows, as float32 statistics);
        ``"auto"``: float32 when the source stores float32.

    Returns
    -------
    dict
        ``"alphas"``, ``"loo_mse"`` (``inf`` where a weighted row has ``h_ii``
        numerically one) and ``"df"``, as :func:`ridge_loo_path`.

    Notes
    -----
    Cost: one ``d x d`` eigendecomposition, then ``O(n d r + n r m L)`` for the
    pass. Memory: the streaming bound plus ``3 * 8 d^2`` bytes.
    """
    source = as_source(source)
    stats = check_stats(stats)
    omega = check_cell_weights(cell_weights, stats.n_cells)
    T = check_cell_targets(cell_targets, stats.n_cells)
    alphas = check_alphas(alphas)
    dtype = np.dtype(check_precision(precision, lambda: source.dtype))
    n = source.n_samples
    if source.n_features != stats.n_features:
        raise ValueError(
            f"The 'stats' parameter has {stats.n_features} features but the source has "
            f"{source.n_features}.")
    cells, sw = check_row_inputs(cells, stats.n_cells, n, sample_weight)
    v = omega[cells] if sw is None else sw * omega[cells]
    plan, df = loo_plan(stats, omega, T, alphas, int(np.count_nonzero(v > 0)))
    total = np.zeros(alphas.size)
    bad = np.zeros(alphas.size, dtype=bool)
    with progress_bar(progress, n, "leave-one-out") as bar:
        for blk, cb, sb in _stream(source, cells, sw, bar):
            part, b = loo_partial(blk, cb, sb, plan, dtype)
            total += part
            bad |= b
    loo = total / plan.V
    loo[bad] = np.inf
    return {"alphas": alphas, "loo_mse": loo, "df": df}
