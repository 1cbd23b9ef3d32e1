"""The fit pipeline of :class:`lastlayer.LastLayerClassifier`, as plain functions.

One direction, immutable values, no callbacks into the estimator::

    prepare(y, groups, ...)          -> Design      labels, cells, units, sample weights
    resolve(params, shape, design)   -> Plan        every "auto", once (recorded as plan_)
    statistics(data, design, plan)   -> stats       per-cell sums and Gram matrices
    RidgeOracle(data, design, plan, stats)          ridge fits, leverages, LOO alpha
    select(params, design, plan, oracle, ...) -> Choice   weights and alpha
    fit_layer(params, design, plan, oracle, choice, log) -> Layer   the last layer

:func:`lastlayer._select.fit_selected` runs the last three for every candidate
configuration of the plan and keeps the best by leave-one-out. Inputs arrive
validated (the estimator checks its parameters and arrays once, with
:mod:`lastlayer._validation`); the
numerical work is done by the kernels of :mod:`lastlayer._core` and the weighting
registry of :mod:`lastlayer.weights`, which asks the oracle for leverages.

The objective is that of the estimator's docstring (and of
:mod:`lastlayer.solvers`): weighted ridge on one-hot targets, or weighted
multinomial cross-entropy, with loss weights at mean one over samples.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import NamedTuple

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from ._core.logistic import hat_flops, logistic, logistic_alpha_path
from ._core.logistic import row_space as logistic_row_space
from ._core.loo import (
    argmin_prefer_last,
    centred_eigh,
    gcv_path,
    loo_partial,
    loo_path,
    loo_plan,
    loo_spectrum,
)
from ._core.ridge import ridge, ridge_dual, weighted_rows
from ._core.rowspace import RowSpace, lift, row_space
from ._core.stats import accumulate, all_constant, packed_statistics, row_statistics
from ._progress import PhaseLog
from ._validation import (
    check_cv,
    check_feature_values,
    check_group_count,
    check_rows_per_unit,
    check_unit_values,
    warn_zero_target,
)
from .dimension import SPECTRAL_DIMENSIONS
from .exceptions import NotConvergedWarning
from .weights import (
    Weighting,
    WeightingProblem,
    compute_weighting,
    downsample_sizes,
    normalise_weights,
    optimal_method,
)

__all__ = ["ALPHA_GRID", "GCV_ROWS_PER_FEATURE", "Choice", "Data", "Design", "Layer", "Plan",
           "RidgeOracle", "RowStats", "Validation", "check_design", "check_design_rows",
           "check_values", "data_driven", "fit_layer", "free_blas_threads", "make_oracle",
           "prepare", "resolve", "row_space_spectrum", "scheme_name", "select", "statistics"]

#: alpha="auto" searches ``lambda_max * ALPHA_GRID``, with ``lambda_max`` the largest
#: eigenvalue of the feature covariance, so the choice is invariant to feature scale.
ALPHA_GRID = np.logspace(-8, 1, 46)
#: Above this many rows per feature, alpha="auto" uses GCV from the sufficient
#: statistics instead of exact leave-one-out (which costs a pass over the rows).
GCV_ROWS_PER_FEATURE = 10
#: Eigendecompositions a fit keeps for reuse (:meth:`RidgeOracle.centred_eigh`): the
#: latest (each is a ``d x d`` matrix, the size of the statistics).
KEPT_SPECTRA = 1
#: Problems with min(n, d) at most this run after the statistics on one BLAS thread.
SMALL_PROBLEM = 512
#: Statistics passes of at least this many multiply-adds (n d^2) use every BLAS thread.
MULTITHREAD_FLOPS = 2**30
#: In-memory per-cell Gram matrices are kept as the rows (:func:`cell_layout`) when
#: ``n_cells * p`` exceeds this many times the rows ``n`` (``p = min(n, d)``: the
#: ``J p x p`` float64 arrays would take more than twice the rows in float64) ...
CELL_ROWS_RATIO = 2
#: ... and there are at least this many cells, or the arrays would exceed
#: CELL_GRAMS_MAX_BYTES: with few cells a combination of the dense arrays (reading
#: ``J p^2``) is much cheaper than a pass over the rows (``n p^2`` flops; measured
#: 1.4x slower fits at 1,000 x 2,048 with 5 classes, docs/performance.md).
CELL_ROWS_MIN_CELLS = 16
CELL_GRAMS_MAX_BYTES = 2**32
#: In memory, the per-cell Gram matrices otherwise are lower triangles packed (half the
#: memory of ``J d x d`` arrays, the same values); off: ``d x d`` arrays, as the
#: out-of-core statistics (kept for benchmarks and reference tests).
CELL_GRAMS_PACKED = True
_LOGISTIC_MAX_ITER, _LOGISTIC_TOL = 1000, 1e-8


# ----------------------------------------------------------------------------- design


@dataclass(frozen=True)
class Design:
    """Everything about the rows but their features.

    Cells are what the solvers see (classes, or (class, group) pairs); units are
    what the weights are per (classes, or groups).
    """

    classes: np.ndarray        # (K,) sorted class labels
    y_idx: np.ndarray          # (n,) class index of each row
    sample_weight: np.ndarray  # (n,)
    class_mass: np.ndarray     # (K,) sum of sample weights per class
    cell_idx: np.ndarray       # (n,) cell of each row
    cell_class: np.ndarray     # (J,) class of each cell
    unit_of_cell: np.ndarray   # (J,) unit of each cell
    unit_labels: np.ndarray    # (n,) unit of each row
    unit_names: np.ndarray     # (U,) class or group labels
    unit_counts: np.ndarray    # (U,) sum of sample weights per unit
    target: np.ndarray         # (U,) target mixture, sums to one
    groups: np.ndarray | None  # (G,) group labels when weighting by group

    @property
    def n_classes(self):
        return self.classes.size

    @property
    def n_cells(self):
        return self.cell_class.size

    @property
    def cell_targets(self):
        return np.eye(self.n_classes)[self.cell_class]


def prepare(y, groups, sample_weight, target):
    """Classes, cells (solver) and units (weighting) from checked 1-D labels."""
    classes, y_idx = np.unique(y, return_inverse=True)
    K = classes.size
    if K < 2:
        raise ValueError(f"LastLayerClassifier needs samples of at least 2 classes; "
                         f"y has 1 class: {classes.tolist()!r}.")
    mass = np.bincount(y_idx, weights=sample_weight, minlength=K)
    if np.any(mass <= 0):
        empty = classes[mass <= 0].tolist()
        raise ValueError(f"Class(es) {empty!r} have no samples with positive weight; every "
                         f"class needs at least one sample.")
    group_names = None
    if groups is not None:
        group_names, g_idx = np.unique(groups, return_inverse=True)
        check_group_count(group_names)
        G = group_names.size
        keys, cell_idx = np.unique(y_idx * G + g_idx, return_inverse=True)
        cell_class, unit_of_cell, unit_labels = keys // G, keys % G, g_idx
        unit_names = group_names
    else:
        cell_idx, cell_class = y_idx, np.arange(K)
        unit_of_cell, unit_labels, unit_names = np.arange(K), y_idx, classes
    U = unit_names.size
    unit_counts = np.bincount(unit_labels, weights=sample_weight, minlength=U)
    if np.any(unit_counts <= 0):
        raise ValueError(f"Group(s) {unit_names[unit_counts <= 0].tolist()!r} have no "
                         f"samples with positive weight.")
    tgt = check_unit_values(target, unit_names, "target", 1.0 / U)
    if np.any(tgt < 0) or tgt.sum() <= 0:
        raise ValueError(f"The 'target' parameter must be non-negative with a positive sum. "
                         f"Got {tgt.tolist()!r} instead.")
    warn_zero_target(tgt, unit_names, "class" if groups is None else "group")
    return Design(classes, y_idx, sample_weight, mass, cell_idx, cell_class, unit_of_cell,
                  unit_labels, unit_names, unit_counts, tgt / tgt.sum(), group_names)


def data_driven(params):
    """Whether alpha or the weights are read off the rows (leave-one-out, GCV,
    leverages, internal CV): then every class and group needs two rows."""
    return params["alpha"] == "auto" or scheme_name(params["weighting"]) in (
        "auto", "optimal", "tuned")


def check_values(X, params, plan):
    """In-memory features: squares that stay finite in the plan's precision, and a
    FeatureOutlierWarning when alpha or the weights are read off the rows."""
    check_feature_values(X, plan.precision, data_driven(params))


def check_design(design, params, X, y, groups, kind):
    """Rows per class and group (:func:`check_design_rows`); the params with ``cv`` as
    explicit splits when it is a splitter or an iterable (rows in memory)."""
    check_design_rows(design, params)
    if kind == "memory" and not isinstance(params["cv"], int):
        return {**params, "cv": check_cv(params["cv"], X, y, groups)}
    return params


def check_design_rows(design, params):
    """Rows of positive weight per class and per group (:func:`check_rows_per_unit`)."""
    active = design.sample_weight > 0
    strict = data_driven(params)
    rows = np.bincount(design.y_idx[active], minlength=design.n_classes)
    check_rows_per_unit(rows, design.classes, "class", strict)
    if design.groups is not None:
        rows = np.bincount(design.unit_labels[active], minlength=design.unit_names.size)
        check_rows_per_unit(rows, design.unit_names, "group", strict)


@dataclass(frozen=True)
class Data:
    """Where the rows are: in memory (``X``), or behind a source (streamed or dask)."""

    X: np.ndarray | None = None
    source: object | None = None
    dask_X: object | None = None

    @property
    def in_memory(self):
        return self.X is not None


@dataclass(frozen=True)
class Validation:
    """Checked validation rows for ``weighting="tuned"``: features, class index and
    unit index of every row."""

    X: np.ndarray
    y_idx: np.ndarray
    units: np.ndarray


# ------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Plan:
    """Every "auto" of a fit, resolved once (:func:`resolve`); ``plan_`` on the estimator.

    statistics : "numpy", "torch", "stream" or "dask"
        Where the sufficient statistics are computed.
    precision : "float64" or "float32"
        Of the Gram products.
    solver : "primal" or "dual"
        Of the full-data ridge fits.
    subset_solver, fold_solvers
        Of the ridge fits on ``downsample``'s subsets and on the folds of
        ``tuned``'s internal cross-validation (the smaller space, by their sizes).
    stats_threads, solve_threads : 1 or None
        BLAS threads of the statistics pass and of everything after it (None: all).
    alpha_criterion : "fixed", "tuned", "gcv", "loo", "stream_loo" or "dask_loo"
        How the square-loss alpha is chosen (and the weights' alpha, for any loss).
    logistic_alpha : None, "fixed", "tuned" or "alo"
        How the cross-entropy alpha is chosen (``loss="logistic"``).
    optimal_method : None, "two_unit_path" or "iteration"
        How ``weighting="optimal"`` solves its fixed point.
    loss : "square" or "logistic"
        The loss of this configuration.
    weighting : str
        Its weighting scheme (a registry name, or "explicit" for given weights).
    adjust : None or "logit"
        A post-hoc bias: "logit" subtracts ``tau`` log class priors from the scores
        (``tau`` chosen by the selection's leave-one-out estimate).
    candidates : tuple of Plan
        With ``loss="auto"`` / ``weighting="auto"``: the configurations the
        selection layer compares (:mod:`lastlayer._select`), each with its own
        criteria; empty for a single configuration. The statistics are computed
        once, as this plan says, and shared by every candidate.
    metric : str
        What the selection maximises: "worst", "balanced" or "target" (the
        ``target``-weighted mean) leave-one-out accuracy.
    selection_skipped : str or None
        Why candidates that ``"auto"`` would consider were left out (e.g. the
        cross-entropy candidates when their leave-one-out costs too much).
    cell_grams : "packed", "dense" or "rows"
        How the per-cell Gram matrices are held: in memory, ``J`` lower triangles of
        ``p x p`` packed (``p`` the features, or the row-space coordinates when
        ``n < d``; :class:`lastlayer._core.stats.PackedGrams`, half the memory of
        ``J p x p`` arrays), out of core ``J`` arrays of ``p x p``, or, in memory with
        many cells (``J p > CELL_ROWS_RATIO n``: the arrays would be larger than the
        rows; and ``J >= CELL_ROWS_MIN_CELLS`` or arrays over 4 GiB), the rows
        themselves (:class:`lastlayer._core.stats.CellRows`: every combination of
        cells is a pass over the rows, memory ``O(p^2)``).
    """

    statistics: str
    precision: str
    solver: str
    subset_solver: str | None
    fold_solvers: tuple
    stats_threads: int | None
    solve_threads: int | None
    alpha_criterion: str
    logistic_alpha: str | None
    optimal_method: str | None
    loss: str = "square"
    weighting: str = "optimal"
    adjust: str | None = None
    candidates: tuple = ()
    metric: str = "worst"
    selection_skipped: str | None = None
    cell_grams: str = "dense"

    def as_dict(self):
        return asdict(self)

    def params(self, params):
        """``params`` with this configuration's concrete loss and weighting."""
        w = params["weighting"] if self.weighting == "explicit" else self.weighting
        return {**params, "loss": self.loss, "weighting": w}


def _smaller_space(n_rows, d):
    return "dual" if d + 1 > n_rows else "primal"


def _fold_sizes(design, cv):
    """Training rows of each fold: of the given ``(train, test)`` splits, or of the
    round-robin stratified split (per cell) for an int ``cv``."""
    if not isinstance(cv, int):
        return [len(train) for train, _ in cv]
    per_cell = np.bincount(design.cell_idx, minlength=design.n_cells)
    held = [sum(len(range(f, c, cv)) for c in per_cell) for f in range(cv)]
    return [design.cell_idx.size - h for h in held]


#: The cross-entropy candidates of loss="auto" are compared only when their
#: leave-one-out (an L-BFGS fit and an approximate-LOO Hessian per alpha) is
#: estimated to cost at most this many flops with two classes (a few seconds on one
#: core) ...
LOGISTIC_SELECTION_FLOPS = 2e10
#: ... and this many with more than two, where the square loss's one-hot targets can
#: mask classes and cross-entropy is worth more time (3-14 s a candidate on one core
#: near the budget, two candidates a default fit; benchmarks/ce_budget.py,
#: docs/selection.md, "When cross-entropy is skipped").
LOGISTIC_SELECTION_FLOPS_MULTICLASS = 2e11


def logistic_selection_budget(n_classes):
    """The flop budget of the cross-entropy candidates for ``n_classes`` classes."""
    return LOGISTIC_SELECTION_FLOPS if n_classes <= 2 else LOGISTIC_SELECTION_FLOPS_MULTICLASS
#: Alphas on the grid of the cross-entropy alpha search (every third point).
_LOGISTIC_GRID_STEP = 3
#: The cross-entropy alpha search (from the largest alpha down) stops after the
#: approximate leave-one-out error has risen at this many alphas in a row.
_LOGISTIC_PATIENCE = 3


def logistic_selection_flops(n, d, K):
    """Estimated flops of choosing alpha for one cross-entropy candidate by ALO: per
    alpha, about 50 L-BFGS gradients and the ALO's hat blocks. With more than two
    classes the count is the work done: a gradient is two ``n p K`` products (``4 n p
    K`` flops) and the hat the cheaper method of
    :func:`lastlayer._core.logistic.hat_flops`; with two classes it is the count the
    budget was set with (``n p K`` a gradient, ``n p^2 + p^3`` the hat)."""
    p = min(n, d) + 1
    n_alphas = len(range(0, ALPHA_GRID.size, _LOGISTIC_GRID_STEP))
    if K <= 2:
        return n_alphas * (50.0 * n * p * K + n * p * p + p**3)
    return n_alphas * (50.0 * 4.0 * n * p * K + min(hat_flops(n, p, K).values()))


def _configurations(params, n, d, kind, design):
    """The (loss, weighting, adjust) configurations to fit, and why some were skipped.

    One configuration unless ``loss`` or ``weighting`` is "auto": then the
    theory-guided candidates of the selection layer, the theory choice first.
    """
    loss, spec = params["loss"], params["weighting"]
    scheme = scheme_name(spec)
    weighting = "explicit" if scheme is None else scheme
    if loss != "auto" and weighting != "auto":
        return [(loss, weighting, None)], None
    if weighting == "auto":
        weighting = None
    skipped = None
    losses = ["square", "logistic"] if loss == "auto" else [loss]
    if kind != "memory" or weighting in ("downsample", "tuned"):
        # no leave-one-out to compare candidates by: the theory choice, as before
        skipped = "no leave-one-out estimate for out-of-core rows or averaged subsets"
        return [("square", weighting or "optimal", None)], skipped
    elif loss == "auto" and logistic_selection_flops(n, d, design.n_classes) > \
            logistic_selection_budget(design.n_classes):
        losses = ["square"]
        skipped = (f"cross-entropy candidates: their leave-one-out would cost about "
                   f"{logistic_selection_flops(n, d, design.n_classes):.2g} flops "
                   f"(limit {logistic_selection_budget(design.n_classes):.2g})")
    if weighting is not None:
        return [(lo, weighting, None) for lo in losses], skipped
    if loss != "auto":  # explicit loss, weighting="auto": the theory weights, as before
        return [(loss, "optimal", None)], None
    configs = [("square", "optimal", None), ("square", "balanced", None),
               ("square", "power", None)]
    if "logistic" in losses:
        # (the cross-entropy theory's weights, "optimal_logistic", are not a candidate:
        # on breast cancer, 9% malignant, they trailed every other candidate by 3-9 pp
        # of worst-class accuracy; docs/selection.md)
        configs.append(("logistic", "optimal", None))
        if design.groups is None:
            configs.append(("logistic", "none", "logit"))
    return configs, skipped


def free_blas_threads():
    """BLAS threads a fit may use now without oversubscribing the machine.

    The CPUs this process may run on, less the runnable tasks of *other* processes
    (Linux ``/proc/loadavg`` less this process's own running threads: BLAS workers
    still spinning after an earlier call are not competition; neither, by the same
    count, are other busy threads of this process), read when the plan is resolved;
    at least one and at most the BLAS libraries' current setting (so an outer
    ``threadpool_limits`` still holds).
    """
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    try:
        with open("/proc/loadavg") as fh:
            running = int(fh.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        running = 1
    others = max(running - _own_running_threads(), 0)
    current = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    return max(1, min(cpus - others, max(current, default=cpus)))


def _own_running_threads():
    """Threads of this process in the running state (at least 1: this one)."""
    count = 0
    try:
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/stat") as fh:
                    state = fh.read().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            count += state == "R"
    except OSError:
        return 1
    return max(count, 1)


def resolve(params, n, d, dtype, kind, design, has_validation):
    """Resolve every "auto" of ``params`` for data of ``n`` rows, ``d`` features.

    ``kind`` is "memory", "stream" or "dask"; ``dtype`` the features' dtype.
    With several candidate configurations, the returned plan is the first one's
    (it decides the shared statistics pass) with every candidate's plan attached.
    """
    configs, skipped = _configurations(params, n, d, kind, design)
    # the free BLAS threads, read once for every candidate (each read scans the loaded
    # libraries and this process's threads: milliseconds a candidate on small fits)
    free = free_blas_threads() if kind == "memory" else None
    plans = [replace(_resolve_one({**params, "loss": lo, "weighting": w if w != "explicit"
                                   else params["weighting"]},
                                  n, d, dtype, kind, design, has_validation, free),
                     loss=lo, weighting=w, adjust=adj, metric=params["metric"])
             for lo, w, adj in configs]
    if len(plans) == 1:
        return replace(plans[0], selection_skipped=skipped)
    return replace(plans[0], candidates=tuple(plans), selection_skipped=skipped)


def _resolve_one(params, n, d, dtype, kind, design, has_validation, free=None):
    """The plan of one concrete (loss, weighting) configuration; ``free``: the free BLAS
    threads (:func:`free_blas_threads`), read here when None."""
    loss, scheme = params["loss"], scheme_name(params["weighting"])
    out_of_core = kind != "memory"
    if params["device"] is not None or loss != "square":
        precision = "float64"
    else:
        precision = (params["precision"] if params["precision"] != "auto" else
                     "float32" if dtype == np.float32 else "float64")
    statistics = ("dask" if kind == "dask" else "torch" if params["device"] is not None
                  else "stream" if kind == "stream" else "numpy")
    solver = "primal" if out_of_core else (
        _smaller_space(n, d) if params["solver"] == "auto" else params["solver"])

    def rows_solver(n_rows):  # fits on row subsets: the smaller space unless told
        return solver if solver == "dual" or params["solver"] != "auto" else (
            _smaller_space(n_rows, d))

    subset_solver = fold_solvers = None
    if scheme == "downsample":
        rows = np.bincount(design.unit_labels, minlength=design.unit_names.size)
        subset_solver = rows_solver(int(downsample_sizes(rows, design.target).sum()))
    if scheme == "tuned" and not has_validation and loss == "square":
        fold_solvers = tuple(rows_solver(m) for m in _fold_sizes(design, params["cv"]))
    if params["alpha"] != "auto":
        criterion = "fixed"
    elif scheme == "tuned":
        criterion = "tuned"
    elif n > GCV_ROWS_PER_FEATURE * d:
        # n >> d: leverages are O(d/n) and GCV, computed from the statistics alone,
        # equals leave-one-out to that order -- no extra pass over the rows.
        criterion = "gcv"
    else:
        criterion = {"memory": "loo", "stream": "stream_loo", "dask": "dask_loo"}[kind]
    logistic_alpha = None if loss != "logistic" else (
        "fixed" if params["alpha"] != "auto" else "tuned" if scheme == "tuned" else "alo")
    method = (optimal_method(design.unit_names.size, True, design.target)
              if scheme == "optimal" else None)
    # The O(n d^2) statistics use the free BLAS threads unless the pass is short; the
    # rest of a small problem runs on one thread. Never more threads than cores that
    # no other process is running on: oversubscribed OpenBLAS threads spin and a fit
    # gets several times slower (measured: docs/performance.md).
    stats_threads = solve_threads = None
    if not out_of_core:
        free = free_blas_threads() if free is None else free
        stats_threads = 1 if n * d * d < MULTITHREAD_FLOPS else free
        solve_threads = 1 if min(n, d) <= SMALL_PROBLEM else free
    return Plan(statistics, precision, solver, subset_solver, fold_solvers or (),
                stats_threads, solve_threads, criterion, logistic_alpha, method,
                cell_grams=cell_layout(n, d, design.n_cells) if statistics == "numpy"
                else "dense")


def cell_layout(n, d, n_cells):
    """``"rows"`` when the per-cell Gram matrices of ``n`` in-memory rows would be
    larger than :data:`CELL_ROWS_RATIO` times the rows and there are many cells
    (:data:`CELL_ROWS_MIN_CELLS`) or the arrays would take more than
    :data:`CELL_GRAMS_MAX_BYTES` (:class:`Plan`), else ``"packed"`` (``"dense"``
    when :data:`CELL_GRAMS_PACKED` is off)."""
    p = min(n, d)
    many = n_cells >= CELL_ROWS_MIN_CELLS or 8 * n_cells * p * p > CELL_GRAMS_MAX_BYTES
    if many and n_cells * p > CELL_ROWS_RATIO * n:
        return "rows"
    return "packed" if CELL_GRAMS_PACKED else "dense"


def cell_statistics(X, cells, n_cells, sw, precision, layout, chunk_size=65536):
    """Per-cell statistics of in-memory ``X`` with the Gram matrices as ``layout``
    says (``sw`` None: all ones)."""
    if layout == "rows":
        return row_statistics(X, cells, n_cells, sw, precision)
    if layout == "packed":
        return packed_statistics(X, cells, n_cells, sw, chunk_size, precision)
    return accumulate(X, cells, n_cells, sw, chunk_size, precision)


# ------------------------------------------------------------------------- statistics


class RowStats(NamedTuple):
    """Statistics of an in-memory ``n < d`` problem in the span of its rows: the
    basis (:class:`lastlayer._core.rowspace.RowSpace`) and the per-cell statistics of
    the row coordinates (``r x r`` Gram matrices, ``r < n``)."""

    space: RowSpace
    stats: object


def statistics(data, design, plan, device=None, log=None):
    """Per-cell sufficient statistics of the rows, where the plan says (a timed line
    on ``log``, a :class:`lastlayer._progress.PhaseLog`, when given).

    In memory with the dual plan (``d + 1 > n``) the problem is first moved to the
    span of its rows (one ``n x n`` kernel eigendecomposition) and the statistics are
    those of the ``r < n`` coordinates (:class:`RowStats`): every later ridge fit,
    leverage and leave-one-out pass costs ``r^3`` instead of ``d^3`` or ``n^2 d``.
    """
    log = log or PhaseLog(0)
    with log.phase(f"statistics: n={design.y_idx.size}, d={_n_features(data)}, "
                   f"{plan.statistics}, {plan.precision}"):
        return _statistics(data, design, plan, device)


def _n_features(data):
    return data.X.shape[1] if data.in_memory else data.source.n_features


def _statistics(data, design, plan, device):
    from . import sources

    cells, J, sw = design.cell_idx, design.n_cells, design.sample_weight
    if plan.statistics == "numpy" and plan.solver == "dual":
        with threadpool_limits(limits=plan.stats_threads, user_api="blas"):
            space = row_space(data.X, sw)
            if space.coords.shape[1] == 0:
                raise ValueError("Every feature of X is constant: there is nothing to fit.")
            return RowStats(space, cell_statistics(space.coords, cells, J,
                                                   None if np.all(sw == 1.0) else sw,
                                                   "float64", plan.cell_grams))
    if plan.statistics == "dask":
        return sources.dask_statistics(data.dask_X, cells, J, sw, precision=plan.precision)
    if plan.statistics == "torch":
        rows = data.X if data.in_memory else data.source
        return sources.torch_statistics(rows, cells, J, sw, device=device)
    if plan.statistics == "stream":
        return sources.streaming_statistics(data.source, cells, J, sw,
                                            precision=plan.precision)
    with threadpool_limits(limits=plan.stats_threads, user_api="blas"):
        return cell_statistics(data.X, cells, J, None if np.all(sw == 1.0) else sw,
                               plan.precision, plan.cell_grams)


def check_not_constant(data, stats, spectrum):
    """Refuse features that are all constant (nothing to fit)."""
    constant = (all_constant(data.X, stats) if data.in_memory
                else not spectrum.max() > 0)
    if constant:
        raise ValueError("Every feature of X is constant: there is nothing to fit.")


# ----------------------------------------------------------------------------- oracle


@dataclass(frozen=True)
class RidgeOracle:
    """Ridge fits of the design at any cell weights and alpha: the one numerical
    service the weighting schemes and the alpha criteria need."""

    data: Data
    design: Design
    plan: Plan
    stats: object
    space: RowSpace | None = None  # data.X are coordinates in this basis (n < d)
    # loo_spectrum's eigendecompositions and loo_alpha's choices by cell weights,
    # shared by the oracles of one fit (the selection layer's candidates share weights)
    spectra: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def features(self):
        """The rows in feature space (for cross-entropy fits and predictions)."""
        return self.data.X if self.space is None else self.space.X

    @property
    def n_features(self):
        return self.stats.sums.shape[1] if self.space is None else self.space.n_features

    def lift(self, W, b):
        """Coefficients in feature space from a fit on the oracle's rows."""
        return (W, b) if self.space is None else lift(self.space, W, b)

    def solve(self, cell_w, alpha, rows=None, solver=None):
        """The square-loss fit (all rows, or the subset ``rows`` with ``solver``)."""
        D, T = self.design, self.design.cell_targets
        if rows is None:
            X, cells, sw, stats = self.data.X, D.cell_idx, D.sample_weight, self.stats
            solver = self.plan.solver
        else:
            X, cells, sw, stats = self.data.X[rows], D.cell_idx[rows], D.sample_weight[rows], None
        if solver == "dual":
            X64 = np.asarray(X, dtype=np.float64)
            return ridge_dual(weighted_rows(X64, cells, cell_w, T, sw), cell_w.size, alpha)
        if stats is None:
            stats = cell_statistics(X, cells, D.n_cells, None if np.all(sw == 1.0) else sw,
                                    "float64", cell_layout(X.shape[0], X.shape[1],
                                                           D.n_cells))
        return ridge(stats, cell_w, alpha, T)

    def leverage_at(self, alpha):
        """``leverage(cell_w) -> (cell_leverage, df)`` of the fit at ``alpha``."""
        def leverage(cell_w):
            sol = self.solve(cell_w, alpha)
            return sol.cell_leverage, sol.df
        return leverage

    def loo_alpha(self, cell_w, alphas):
        """The alpha of ``alphas`` that the plan's criterion prefers for these weights
        (computed once per weights, grid, criterion and row dtype, kept in ``spectra``:
        the candidates of the selection layer start from the same weights)."""
        key = ("alpha", _weights_key(cell_w), np.asarray(alphas).tobytes(),
               self.plan.alpha_criterion, str(getattr(self.data.X, "dtype", None)))
        if key not in self.spectra:
            self.spectra[key] = self._loo_alpha(cell_w, alphas)
        return self.spectra[key]

    def _loo_alpha(self, cell_w, alphas):
        D, T, crit = self.design, self.design.cell_targets, self.plan.alpha_criterion
        if crit == "gcv":
            path = gcv_path(self.stats, cell_w, T, alphas, return_coef=False,
                            full=self.centred_eigh(cell_w))
            return float(alphas[argmin_prefer_last(path["gcv"], path["alphas"])])
        if crit in ("stream_loo", "dask_loo"):  # out of core: one more pass over the rows
            from . import sources
            args = (self.stats, D.cell_idx, cell_w, T, alphas, D.sample_weight)
            kw = {"precision": self.plan.precision}
            out = (sources.dask_loo_path(self.data.dask_X, *args, **kw) if crit == "dask_loo"
                   else sources.streaming_loo_path(self.data.source, *args, **kw))
            return float(alphas[argmin_prefer_last(out["loo_mse"], out["alphas"])])
        X = self.data.X
        n_active = self.n_active(cell_w)
        if X.shape[1] <= n_active:
            # one d x d eigendecomposition from the statistics, then the rows in
            # blocks: no n x d float64 copy, O(n d^2) once and O(n d) per alpha
            lplan, _ = loo_plan(self.stats, cell_w, T, alphas, n_active,
                                self.loo_spectrum(cell_w), X.dtype)
            sq, bad = loo_partial(X, D.cell_idx, D.sample_weight, lplan, X.dtype)
            loo = sq / lplan.V
            loo[bad] = np.inf
            return float(alphas[argmin_prefer_last(loo, alphas)])
        rows = weighted_rows(np.asarray(X, dtype=np.float64), D.cell_idx, cell_w, T,
                             D.sample_weight)
        path = loo_path(rows, alphas)
        return float(path["alphas"][argmin_prefer_last(path["loo_mse"], path["alphas"])])


    def logistic_rows(self):
        """:func:`lastlayer._core.logistic.row_space` of the features (for
        cross-entropy fits and ALO), computed once per fit and kept in ``spectra``."""
        if "logistic_rows" not in self.spectra:
            self.spectra["logistic_rows"] = logistic_row_space(self.features)
        return self.spectra["logistic_rows"]

    def spectral(self, cell_w):
        """Whether :meth:`loo_alpha` at ``cell_w`` works from their ``d x d``
        eigendecomposition (kept in ``spectra``): rows in memory, at least as many
        weighted rows as columns of the oracle's rows (the row space's coordinates
        when ``n < d``: ``r x r``), leave-one-out or GCV."""
        return (self.data.in_memory and self.plan.alpha_criterion in ("loo", "gcv")
                and self.data.X.shape[1] <= self.n_active(cell_w))

    def forget(self):
        """Let go of every kept eigendecomposition; alpha choices stay."""
        for key in [k for k in self.spectra if k[0] == "eigh"]:
            del self.spectra[key]

    def n_active(self, cell_w):
        """Rows with positive weight at cell weights ``cell_w``."""
        D = self.design
        return int(np.count_nonzero(D.sample_weight * cell_w[D.cell_idx] > 0))

    def loo_spectrum(self, cell_w):
        """:func:`lastlayer._core.loo.loo_spectrum` at ``cell_w`` (rows >= features),
        computed once per weights and kept in ``spectra``. Weights equal to 13
        significant digits share one (a scheme's weights and the same weights
        renormalised differ in the last bits; the spectra would differ at 1e-13)."""
        return loo_spectrum(self.stats, cell_w, self.design.cell_targets,
                            self.n_active(cell_w), self.centred_eigh(cell_w))

    def centred_eigh(self, cell_w):
        """:func:`lastlayer._core.loo.centred_eigh` at ``cell_w``, kept in ``spectra``
        (:meth:`loo_spectrum` and GCV share it).

        The latest :data:`KEPT_SPECTRA` are kept (each holds a ``d x d`` matrix); the
        oldest is let go before a new one is made. The selection layer fits the
        candidates that read the start weights' eigendecomposition one after the other
        (:func:`lastlayer._select.evaluation_order`)."""
        key = ("eigh", _weights_key(cell_w))
        if key not in self.spectra:
            kept = [k for k in self.spectra if k[0] == "eigh"]
            for old in kept[:max(len(kept) - KEPT_SPECTRA + 1, 0)]:
                del self.spectra[old]
            self.spectra[key] = centred_eigh(self.stats, cell_w, self.design.cell_targets)
        return self.spectra[key]


def _weights_key(cell_w):
    return tuple(f"{w:.12e}" for w in np.asarray(cell_w, dtype=np.float64))


def make_oracle(data, design, plan, stats, space=None, spectra=None):
    """The :class:`RidgeOracle` of in-memory ``data``; with a row space (``n < d``,
    :class:`RowStats`) its ridge rows are the coordinates and its features (for
    cross-entropy fits and predictions) are ``data.X``. Oracles of one fit (the same
    statistics) may share ``spectra``, a dict of leave-one-out eigendecompositions."""
    spectra = {} if spectra is None else spectra
    if space is None:
        return RidgeOracle(data, design, plan, stats, spectra=spectra)
    return RidgeOracle(Data(X=space.coords), design, replace(plan, solver="primal"), stats,
                       space._replace(X=data.X), spectra=spectra)


def row_space_spectrum(space, design):
    """Nonzero eigenvalues of the sample-weighted feature covariance, ascending."""
    return space.eigenvalues[::-1] / float(design.sample_weight.sum())


# ----------------------------------------------------------------------------- select


@dataclass(frozen=True)
class Choice:
    """What :func:`select` chose: the weighting, the square-loss alpha it was chosen
    at, and the alpha grid."""

    weighting: Weighting
    alpha_sq: float
    alphas: np.ndarray
    effective_dim: float


def scheme_name(spec):
    """The registry name of a ``weighting`` parameter; None for explicit weights."""
    return spec if isinstance(spec, str) else None


def _scheme_options(params, plan):
    scheme = scheme_name(params["weighting"])
    if scheme == "optimal":
        return {"max_leverage": params["max_leverage"], "method": plan.optimal_method}
    if scheme == "optimal_theory":
        return {"dim": params["dim"], "max_leverage": params["max_leverage"]}
    if scheme == "optimal_logistic":
        return {"dim": params["dim"]}
    if scheme == "downsample":
        return {"n_subsets": params["n_subsets"]}
    return {}


def _logged(log, plan, oracle, choose, alphas):
    """``oracle.loo_alpha`` and ``choose`` with a timed message per call."""
    if not log.verbose:
        return oracle.loo_alpha, choose
    found = {}

    def loo_alpha(cell_w, grid):
        with log.phase(lambda: f"alpha: {plan.alpha_criterion} over {len(grid)} values "
                               f"-> {found['alpha']:.4g}"):
            found["alpha"] = oracle.loo_alpha(cell_w, grid)
        return found["alpha"]

    def logged_choose(alpha, **extra):
        with log.phase(lambda: f"weights: {found['w'].weights.round(4).tolist()} at "
                               f"alpha={found['w'].alpha or alpha:.4g}"):
            found["w"] = choose(alpha, **extra)
        return found["w"]
    return loo_alpha, logged_choose


def select(params, design, plan, oracle, spectrum, rng, score=None, log=None):
    """Choose the loss weights and the square-loss alpha (alternating once)."""
    log = log or PhaseLog(0)
    spec = params["weighting"]
    scheme = scheme_name(spec)
    alphas = max(float(spectrum.max()), np.finfo(float).tiny) * ALPHA_GRID
    if score is not None:
        grid = 9 * (alphas[::5].size if plan.alpha_criterion == "tuned" else 1)
        score = log.counted(score, grid, "tuned: weight x alpha grid")
    problem = WeightingProblem(
        unit_counts=design.unit_counts, target=design.target,
        unit_of_cell=design.unit_of_cell, n_features=oracle.n_features,
        X=oracle.features, unit_labels=design.unit_labels, spectrum=spectrum,
        stats=oracle.stats, cell_targets=design.cell_targets, score=score,
        random_state=rng, unit_names=design.unit_names)
    options = _scheme_options(params, plan)

    builds_path = scheme == "optimal" and plan.optimal_method == "two_unit_path"

    def choose(alpha, **extra):
        if builds_path:
            # a weight path is as large as an eigendecomposition: none is kept beside
            # it (the candidates that share the start weights' one are fitted first:
            # _select.evaluation_order)
            oracle.forget()
        at = replace(problem, alpha=alpha, leverage=oracle.leverage_at(alpha))
        return compute_weighting(spec, at, **options, **extra)

    loo_alpha, choose = _logged(log, plan, oracle, choose, alphas)
    crit = plan.alpha_criterion
    if crit == "fixed":
        alpha_sq = float(params["alpha"])
        weighting = choose(alpha_sq)
    elif crit == "tuned":
        # The expensive baseline searches alpha jointly with the weights.
        weighting = choose(0.0, alphas=alphas[::5])
        alpha_sq = weighting.alpha
    else:
        alpha_sq, weighting = _alternate(scheme, design, loo_alpha, alphas, choose, oracle)
        if scheme == "optimal" and weighting.info.get("capped"):
            alpha_sq, weighting = _raise_alpha_until_feasible(alpha_sq, weighting, alphas,
                                                              choose)
    dim = float(SPECTRAL_DIMENSIONS["pca99"](spectrum))
    return Choice(weighting, alpha_sq, alphas, dim)


def _alternate(scheme, design, loo_alpha, alphas, choose, oracle):
    """alpha for the starting weights, weights for that alpha, alpha again if they moved.

    Memory: a two-unit weight path and a ``d x d`` eigendecomposition (each the size of
    the statistics) are not held together. ``choose`` lets every kept
    eigendecomposition go before it builds a path; where the leave-one-out at the new
    weights comes from their eigendecomposition (``oracle.spectral``), the weight path
    they were read off is let go here before that eigendecomposition is made (the
    decisions at those weights come from it); when alpha then moves, weights read off
    a path move with it (no candidate has those weights)."""
    U, cells = design.unit_names.size, design.unit_of_cell
    start = (np.ones(U) if scheme == "none"
             else normalise_weights(design.target / design.unit_counts, design.unit_counts))
    alpha_sq = loo_alpha(start[cells], alphas)
    weighting = choose(alpha_sq)
    if not np.allclose(weighting.weights, start, rtol=1e-9):
        moved = weighting.weights[cells]
        on_path = weighting.path is not None  # weights read off a path move with alpha
        if on_path and oracle.spectral(moved):
            weighting = replace(weighting, path=None)
        alpha2 = loo_alpha(moved, alphas)
        if alpha2 != alpha_sq:
            alpha_sq = alpha2
            weighting = None  # its weight path (p x p arrays) is for the old alpha
            weighting = choose(alpha_sq)
    return alpha_sq, weighting


def _raise_alpha_until_feasible(alpha, weighting, alphas, choose):
    """Smallest grid alpha above ``alpha`` whose equal-share weights need no cap.

    In the infeasible regime (a class cannot carry its share of df at the
    leave-one-out alpha) a larger ridge lowers df until equal shares fit, instead
    of leaning on a capped, very large weight. df falls as alpha grows, so the
    search bisects the grid. Keeps the capped solution if no alpha helps.
    """
    grid = alphas[alphas > alpha]
    lo, hi, best = 0, grid.size - 1, None
    while lo <= hi:
        mid = (lo + hi) // 2
        wt = choose(float(grid[mid]))
        if wt.info.get("capped"):
            lo = mid + 1
        else:
            best, hi = (float(grid[mid]), wt), mid - 1
    if best is None:
        return alpha, weighting
    raised = replace(best[1], info={**best[1].info, "alpha_raised_from": float(alpha)})
    return best[0], raised


# ------------------------------------------------------------------------------ layer


@dataclass(frozen=True)
class Layer:
    """The fitted layer in scikit-learn's layout, and what the fit reports."""

    coef: np.ndarray
    intercept: np.ndarray
    alpha: float
    df: float
    class_weight: np.ndarray
    unit_weight: np.ndarray
    W: np.ndarray  # (d, K) raw columns, one per class
    b: np.ndarray  # (K,)


def _average(fits):
    W = np.mean([f.coef for f in fits], axis=0)
    b = np.mean([f.intercept for f in fits], axis=0)
    return W, b


def _logistic_alpha(params, design, plan, oracle, choice, row_w, log):
    """The cross-entropy alpha, and the ALO path's fit ``(W, b, converged)`` at it (the
    final fit: the same problem, already solved) when a path chose it, else None;
    ``log`` shows the path's progress."""
    if plan.logistic_alpha == "fixed":
        return float(params["alpha"]), None
    if plan.logistic_alpha == "tuned" and choice.weighting.alpha is not None:
        return float(choice.weighting.alpha), None
    X, K = oracle.features, design.n_classes
    grid = choice.alphas[::_LOGISTIC_GRID_STEP]
    with log.steps(grid.size, f"cross-entropy alpha, {plan.weighting} weights (ALO)") as tick:
        alpha, path = logistic_alpha_path(X, design.y_idx, K, row_w, grid,
                                          float(design.sample_weight.sum()),
                                          _LOGISTIC_MAX_ITER, _LOGISTIC_TOL, "alo",
                                          patience=_LOGISTIC_PATIENCE,
                                          space=oracle.logistic_rows(), callback=tick)
    i = path["best_index"]
    return float(alpha), (path["coef"][i], path["intercept"][i], bool(path["converged"][i]))


def warn_unconverged(converged, alpha, what="the cross-entropy fit"):
    """A :class:`NotConvergedWarning` when a cross-entropy fit of the layer stopped short of
    its minimiser (never silent: the layer is still returned)."""
    if all(converged):
        return
    why = ("with alpha = 0 the weighted rows are linearly separable, so the "
           "cross-entropy has no minimiser (its coefficients grow without bound); "
           "use alpha > 0 or alpha='auto'" if alpha == 0.0 else
           f"L-BFGS stopped after {_LOGISTIC_MAX_ITER} iterations")
    warnings.warn(f"{what} did not converge at alpha={alpha:.4g}: {why}.",
                  NotConvergedWarning, stacklevel=4)


def fit_layer(params, design, plan, oracle, choice, log=None):
    """Fit the last layer with the chosen weights (and alpha for cross-entropy, its
    path's progress on ``log``, a :class:`lastlayer._progress.PhaseLog`, when given)."""
    weighting = choice.weighting
    unit_w = weighting.weights
    cell_w = unit_w[design.unit_of_cell]
    D, K, J = design, design.n_classes, design.n_cells
    if params["loss"] == "square":
        alpha = float(choice.alpha_sq)
        if weighting.subsets:
            W, b = _average([oracle.solve(np.ones(J), alpha, rows, plan.subset_solver)
                             for rows in weighting.subsets])
            sol = oracle.solve(cell_w, alpha)
        else:
            sol = oracle.solve(cell_w, alpha)
            W, b = sol.coef, sol.intercept
        W, b = oracle.lift(W, b)
    else:
        X, sw = oracle.features, D.sample_weight
        row_w = sw * cell_w[D.cell_idx]
        alpha, path_fit = _logistic_alpha(params, design, plan, oracle, choice, row_w,
                                          log or PhaseLog(0))
        # the objective's n is the sum of the sample weights (docs of the estimator)
        if weighting.subsets:
            fits = [logistic(X[r], D.y_idx[r], K, sw[r], alpha, n_norm=float(sw[r].sum()))
                    for r in weighting.subsets]
            W, b = _average(fits)
            warn_unconverged([f.converged for f in fits], alpha,
                             "a cross-entropy fit of a downsampled subset")
        elif path_fit is not None:  # the path's fit at that alpha, in the span of the rows
            W, b, converged = path_fit
            warn_unconverged([converged], alpha)
        else:  # in the span of the rows (where the penalised minimiser lies)
            Xw, basis = oracle.logistic_rows()
            fit = logistic(Xw, D.y_idx, K, row_w, alpha, n_norm=float(sw.sum()))
            W, b = fit.coef if basis is None else basis @ fit.coef, fit.intercept
            warn_unconverged([fit.converged], alpha)
        sol = oracle.solve(cell_w, choice.alpha_sq)
    cell_mass = np.bincount(D.cell_idx, weights=D.sample_weight, minlength=J) * cell_w
    class_weight = np.bincount(D.cell_class, weights=cell_mass, minlength=K) / D.class_mass
    if K == 2:
        coef, intercept = (W[:, 1] - W[:, 0])[None, :], np.array([b[1] - b[0]])
    else:
        coef, intercept = np.ascontiguousarray(W.T), np.asarray(b, dtype=float).copy()
    return Layer(coef, intercept, alpha, float(sol.df), class_weight, unit_w.copy(), W,
                 np.asarray(b, dtype=float))


# -------------------------------------------------------------------------------- fit


def tuned_score(params, design, plan, oracle, rng, validation):
    """``score(unit_w, alpha)`` for ``tuned``: worst-unit accuracy on the validation
    rows, or on an internal stratified CV (folds dealt round-robin within each cell)."""
    D, K, X = design, design.n_classes, oracle.features

    def layer(cell_w, alpha, rows=None, solver=None):
        if params["loss"] == "square":
            sol = oracle.solve(cell_w, alpha, rows, solver)
            return oracle.lift(sol.coef, sol.intercept)
        r = slice(None) if rows is None else rows
        fit = logistic(X[r], D.cell_class[D.cell_idx[r]], K,
                       D.sample_weight[r] * cell_w[D.cell_idx[r]], alpha,
                       n_norm=float(D.sample_weight[r].sum()))
        return fit.coef, fit.intercept

    def worst(pred_idx, true_idx, units):
        return min(np.mean(pred_idx[units == u] == true_idx[units == u])
                   for u in np.unique(units))

    if validation is not None:
        def score(unit_w, alpha):
            W, b = layer(unit_w[D.unit_of_cell], alpha)
            return worst(np.argmax(validation.X @ W + b, axis=1), validation.y_idx,
                         validation.units)
        return score
    cv, n = params["cv"], X.shape[0]
    if not isinstance(cv, int):
        return _split_score(D, cv, plan, layer, worst, X)
    fold = np.empty(n, dtype=int)
    for j in np.unique(D.cell_idx):
        rows = rng.permutation(np.flatnonzero(D.cell_idx == j))
        fold[rows] = np.arange(rows.size) % cv
    y_all = D.cell_class[D.cell_idx]
    solvers = plan.fold_solvers or (None,) * cv

    def score(unit_w, alpha):
        pred = np.empty(n, dtype=int)
        for f in range(cv):
            test = fold == f
            W, b = layer(unit_w[D.unit_of_cell], alpha, np.flatnonzero(~test), solvers[f])
            pred[test] = np.argmax(X[test] @ W + b, axis=1)
        return worst(pred, y_all, D.unit_labels)
    return score


def _split_score(D, splits, plan, layer, worst, X):
    """``tuned``'s score over given ``(train, test)`` splits: worst-unit accuracy over
    every test row of every split (a row tested twice counts twice)."""
    y_all = D.cell_class[D.cell_idx]
    solvers = plan.fold_solvers or (None,) * len(splits)

    def score(unit_w, alpha):
        pred, true, units = [], [], []
        for (train, test), solver in zip(splits, solvers):
            W, b = layer(unit_w[D.unit_of_cell], alpha, train, solver)
            pred.append(np.argmax(X[test] @ W + b, axis=1))
            true.append(y_all[test])
            units.append(D.unit_labels[test])
        return worst(np.concatenate(pred), np.concatenate(true), np.concatenate(units))
    return score

