"""Weighting schemes: one function per scheme, one registry (:data:`WEIGHTINGS`).

Every scheme maps a :class:`WeightingProblem` (per-unit counts, the target mixture,
and a ridge oracle's leverages) to a :class:`Weighting`: one loss weight per *unit*
(a class, or a group when group weights are asked for), scaled so that the mean
weight over samples is one (``sum_u n_u omega_u = n``), which fixes the scale the
ridge sees (docs/theory.md section 1).

Adding a scheme is adding one function and one entry in :data:`WEIGHTINGS`. Explicit
weights (a dict ``{label: weight}`` or an array in unit order) go through the same
entry point, :func:`compute_weighting`, which normalises every form of the
``weighting`` parameter.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ._core.stats import gram_diagonals
from ._validation import check_real, check_unit_values
from .dimension import DIMENSIONS, SPECTRAL_DIMENSIONS
from .exceptions import NotConvergedWarning
from .theory import optimal_class_weights, water_fill_leverage

__all__ = [
    "WEIGHTINGS",
    "Weighting",
    "WeightingProblem",
    "compute_weighting",
    "downsample_sizes",
    "normalise_weights",
    "optimal_method",
]


@dataclass
class WeightingProblem:
    """What a weighting scheme may look at.

    Attributes
    ----------
    unit_counts : ndarray of shape (U,)
        Samples (sum of sample weights) per weighting unit.
    target : ndarray of shape (U,)
        Target mixture over units (sums to one; uniform = balanced).
    unit_of_cell : ndarray of shape (J,)
        Unit index of each solver cell (cells are classes, or (class, group) pairs).
    n_features : int
        Feature dimension ``d``.
    alpha : float
        Ridge of the (1/n)-scaled objective the weights will be used with.
    leverage : callable, optional
        ``leverage(cell_weights) -> (cell_leverage, df)``: per-cell sums of the
        weighted hat-matrix diagonal and its trace at ``alpha``, for the
        data-driven scheme. The estimator passes a ridge oracle's bound method
        (:meth:`lastlayer._fit.RidgeOracle.leverage_at`); problems are never
        mutated: a new ``alpha`` is a new problem (:func:`dataclasses.replace`).
    X, unit_labels : ndarray, optional
        Features and per-row unit index, for schemes that look at the data
        (``optimal_theory``'s dimension estimate, ``downsample``'s subsets).
    spectrum : ndarray, optional
        Eigenvalues of the feature covariance (used instead of ``X`` for the
        spectral dimension estimates when given).
    stats, cell_targets : optional
        Per-cell sufficient statistics (:class:`lastlayer.solvers.SufficientStats`)
        and target rows; with two units they let ``optimal`` solve on a weight path
        (:class:`lastlayer.paths.TwoUnitWeightPath`) instead of iterating.
    score : callable, optional
        ``score(unit_weights, alpha) -> float`` (higher is better), for ``tuned``.
    random_state : numpy Generator
    unit_names : ndarray of shape (U,), optional
        Labels of the units (classes or groups), for explicit weights given as a
        dict keyed by label.
    """

    unit_counts: np.ndarray
    target: np.ndarray
    unit_of_cell: np.ndarray
    n_features: int
    alpha: float = 0.0
    leverage: Callable | None = None
    X: np.ndarray | None = None
    unit_labels: np.ndarray | None = None
    spectrum: np.ndarray | None = None
    stats: object | None = None
    cell_targets: np.ndarray | None = None
    score: Callable | None = None
    random_state: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))
    unit_names: np.ndarray | None = None


@dataclass
class Weighting:
    """Result of a scheme.

    Attributes
    ----------
    weights : ndarray of shape (U,)
        Loss weight per unit, mean one over samples.
    feasible : bool
        False when the scheme could not reach its goal (``optimal``: no finite
        weights equalise the units' shares of the degrees of freedom).
    df : float or None
        Degrees of freedom the scheme used, when it used any.
    subsets : list of ndarray, optional
        Row indices of the balanced subsets to fit and average (``downsample``).
    alpha : float or None
        A ridge the scheme chose itself (``tuned``), else None.
    info : dict
        Scheme-specific diagnostics (JSON-ready).
    path : TwoUnitWeightPath or None
        The weight path the weights were read off (``optimal`` with two units), at
        the problem's alpha: its factorisation also gives the fit's leave-one-out
        decisions (:meth:`lastlayer.paths.TwoUnitWeightPath.loo_decisions`).
    """

    weights: np.ndarray
    feasible: bool = True
    df: float | None = None
    subsets: list | None = None
    alpha: float | None = None
    info: dict = field(default_factory=dict)
    path: object = field(default=None, repr=False, compare=False)


def normalise_weights(weights, counts):
    """Scale ``weights`` so that ``sum_u counts_u weights_u = sum_u counts_u``."""
    w = np.asarray(weights, dtype=float)
    c = np.asarray(counts, dtype=float)
    return w * (c.sum() / float(c @ w))


def _importance(problem):
    return problem.target / problem.unit_counts


def weighting_none(problem):
    """Unweighted ERM: every sample weighs one."""
    return Weighting(np.ones_like(problem.unit_counts, dtype=float))


def weighting_balanced(problem):
    """Ratio of priors (importance weights ``p*_u / n_u``).

    With the uniform target this is scikit-learn's ``class_weight="balanced"``,
    ``n / (K n_u)``, which already has mean one over samples.
    """
    return Weighting(normalise_weights(_importance(problem), problem.unit_counts))


def weighting_sqrt(problem):
    """Square root of the ratio of priors: ``(p*_u / n_u)^(1/2)``."""
    return Weighting(normalise_weights(np.sqrt(_importance(problem)), problem.unit_counts))


def weighting_power(problem, power=1.5):
    """Beyond the ratio of priors: ``omega_u ~ (p*_u / n_u)^power`` (``power = 1`` is
    ``balanced``, 0.5 ``sqrt``). With ``power > 1`` small units get more than their
    share of the loss; on long tails at high d, where the test-set oracle of the
    benchmark suite chose powers 1.25-1.5 (docs/results.md)."""
    b = check_real(power, "power", 0.0, None)
    return Weighting(normalise_weights(_importance(problem) ** b, problem.unit_counts),
                     info={"power": b})


def weighting_effective_number(problem, beta=0.999):
    """Class-balanced loss of Cui et al. (2019): ``omega_u ~ p*_u (1 - beta) / (1 - beta^n_u)``.

    ``beta -> 0`` gives no weighting, ``beta -> 1`` the ratio of priors.
    """
    b = check_real(beta, "beta", 0.0, 1.0, closed="left")
    n_u = problem.unit_counts
    eff = (1.0 - b ** n_u) / (1.0 - b) if b > 0 else np.ones_like(n_u)
    w = problem.target * len(n_u) / eff
    return Weighting(normalise_weights(w, n_u), info={"beta": b})


def weighting_upsample(problem):
    """Upsampling: repeat each unit's samples ``round(max_u (n_u/p*_u) p*_u / n_u)`` times.

    Repeating rows is the same objective as integer weights; with the mean-one
    scale this is the ratio of priors rounded to whole repeats.
    """
    ratio = _importance(problem)
    pos = ratio > 0  # a unit of target share 0 is not repeated at all (weight 0)
    reps = np.where(pos, np.maximum(np.rint(ratio / ratio[pos].min()), 1.0), 0.0)
    return Weighting(normalise_weights(reps, problem.unit_counts),
                     info={"repeats": reps.astype(int).tolist()})


def downsample_sizes(rows_per_unit, target):
    """Rows per unit of the balanced subsets of ``downsample``: as many as the data
    allow while following the ``target`` mixture (at least one for a positive share)."""
    p = np.asarray(target, dtype=float)
    keep = p > 0
    scale = np.min(rows_per_unit[keep] / p[keep])
    take = np.where(keep, np.floor(scale * p + 1e-9), 0).astype(int)
    take[keep] = np.maximum(take[keep], 1)
    return take


def weighting_downsample(problem, n_subsets=10):
    """Downsampling as in DFR: fit on ``n_subsets`` random subsets that follow the
    target mixture with as many rows as the data allow, and average the layers.

    Returns unit weights of one and the subsets' row indices.
    """
    if problem.unit_labels is None:
        raise ValueError("weighting='downsample' needs the per-row unit labels.")
    labels = problem.unit_labels
    take = downsample_sizes(np.bincount(labels, minlength=problem.unit_counts.size),
                            problem.target)
    rng = problem.random_state
    index = [np.flatnonzero(labels == u) for u in range(problem.unit_counts.size)]
    subsets = [
        np.sort(np.concatenate([rng.choice(index[u], take[u], replace=False)
                                for u in range(take.size) if take[u] > 0]))
        for _ in range(int(n_subsets))
    ]
    return Weighting(np.ones_like(problem.unit_counts, dtype=float), subsets=subsets,
                     info={"rows_per_unit": take.tolist(), "n_subsets": int(n_subsets)})


def _effective_dimension(problem, dim):
    """``(d_eff, fit_intercept)`` for the closed forms: the dimension named by ``dim``
    (an estimator of :data:`lastlayer.dimension.DIMENSIONS`, ``"d"``, ``"df"``) or a
    number; ``fit_intercept`` is False for ``"df"`` (the trace counts the intercept)."""
    if not isinstance(dim, str):
        return check_real(dim, "dim", 0.0, None), True
    if dim == "d":
        return float(problem.n_features), True
    if dim == "df":
        if problem.leverage is None:
            raise ValueError("dim='df' needs the solver's leverage hook.")
        w0 = weighting_balanced(problem).weights
        return float(problem.leverage(w0[problem.unit_of_cell])[1]), False
    if dim in DIMENSIONS:
        if problem.spectrum is not None:
            return float(SPECTRAL_DIMENSIONS[dim](problem.spectrum)), True
        if problem.X is not None:
            return float(DIMENSIONS[dim](problem.X)), True
        raise ValueError(f"dim={dim!r} needs the features or their spectrum.")
    raise ValueError(
        "The 'dim' parameter of optimal_theory must be one of "
        f"{sorted([*DIMENSIONS, 'd', 'df'])} or a number. Got {dim!r} instead.")


def weighting_optimal_theory(problem, dim="pca99", max_leverage=0.95):
    """Closed form of docs/theory.md section 4 with an effective dimension.

    ``omega_u ~ p*_u / (n_u - d_eff p*_u)`` with ``d_eff`` from ``dim``:
    ``"pca99"`` (the paper's heuristic), ``"participation_ratio"``, ``"df"`` (the
    trace of the hat matrix of the balanced fit, intercept included), ``"d"`` (the
    raw feature dimension) or a number. Ridgeless form: the dimension stands in for
    the degrees of freedom.
    """
    d_eff, fit_intercept = _effective_dimension(problem, dim)
    opt = optimal_class_weights(np.maximum(np.rint(problem.unit_counts), 1).astype(int), d_eff,
                                target=problem.target, fit_intercept=fit_intercept,
                                max_leverage=max_leverage)
    w = normalise_weights(opt.weights, problem.unit_counts)
    return Weighting(w, feasible=opt.feasible, df=opt.df,
                     info={"dim": dim, "effective_dimension": d_eff, "message": opt.message})


def optimal_method(n_units, has_statistics, target):
    """How ``optimal`` solves: ``"two_unit_path"`` (root-finding on the weight path,
    two units with positive targets and sufficient statistics at hand) or
    ``"iteration"`` (the leverage fixed point through the oracle)."""
    if n_units == 2 and has_statistics and np.all(np.asarray(target) > 0):
        return "two_unit_path"
    return "iteration"


def weighting_optimal(problem, max_leverage=0.95, tol=1e-6, max_iter=100, method="auto"):
    """Data-driven optimal weights: equal shares of the actual degrees of freedom.

    Chooses weights so that each unit's sum of weighted leverages is its target
    share of their total, ``L_u = p*_u df`` (docs/theory.md section 4): with per-cell
    Gram matrices and ``A = sum_j omega_j G~_j + alpha n R``, ``L_u = sum_{j in u}
    omega_j tr(A^{-1} G~_j)``. No latent dimension is needed.

    Iteration: from the current leverages ``a_u = L_u / n_u`` read off
    ``k_u = a_u / ((1 - a_u) omega_u)`` (the fixed point's ``k``, one per unit for
    general covariance) and set ``omega_u = a*_u / ((1 - a*_u) k_u)`` with
    ``a*_u = df p*_u / n_u``; rescale to mean one; repeat until the largest gap
    ``|a_u - a*_u|`` is below ``tol`` (usually 8-25 steps). A proposed step that
    reverses the previous one (in log weights, negative cosine) while the gap has not
    halved overshoots, and the fraction of it taken is halved; while the proposals
    keep their direction (cosine above one half) the fraction grows by half again, up
    to the full step. Undamped,
    the iteration cycled between two points for ever on 60 of the 220 fits of the
    selection suite's tasks with more than two units (6 of 10 on dominoes at
    n = 100, 8 of 10 on the frozen 10-class long tail at n = 100), returning whichever
    point the last iteration reached; damped, all 220 converge in at most 49 steps.
    ``info["converged"]`` says whether the gap reached ``tol``; if it did not in
    ``max_iter`` steps, a :class:`NotConvergedWarning` says so.

    Infeasible case (``n_u <= df p*_u`` for some u; ridgeless, no finite weights
    equalise): the target leverages are water-filled
    (:func:`lastlayer.theory.water_fill_leverage`), so a unit that cannot carry
    its share is held at average leverage ``max_leverage`` and the others share
    the rest of the actual df; ``feasible=False``. The same cap applies when
    equal shares would need a leverage above ``max_leverage`` (with ridge).

    ``method``: ``"two_unit_path"``, ``"iteration"`` or ``"auto"``
    (:func:`optimal_method`); the estimator passes the method its plan resolved.
    """
    cap = check_real(max_leverage, "max_leverage", 0.0, 1.0, closed="neither")
    n_u = problem.unit_counts
    p = problem.target
    cells = problem.unit_of_cell
    if method == "auto":
        method = optimal_method(n_u.size, problem.stats is not None, p)
    if method == "two_unit_path":
        return _optimal_two_units(problem, cap)
    if problem.leverage is None:
        raise ValueError("weighting='optimal' needs the solver's leverage hook.")
    # Start from the closed form with the raw dimension (exact for isotropic features).
    w = weighting_optimal_theory(problem, dim="d", max_leverage=max_leverage).weights
    history = []
    step = 1.0  # damping: the fraction of the proposed step taken (in log weights)
    previous = None  # the previous proposed step (log weights, common scale removed)
    pos = p > 0  # a unit of target 0 keeps weight 0 (its k_u is not needed)
    for it in range(1, max_iter + 1):
        cell_lev, df = problem.leverage(w[cells])
        L = np.bincount(cells, weights=cell_lev, minlength=n_u.size)
        a_target = water_fill_leverage(n_u, p, df, cap)
        gap = float(np.max(np.abs(L / n_u - a_target)))
        history.append(gap)
        if gap < tol:
            break
        a = np.clip(L / n_u, 1e-12, 1.0 - 1e-12)
        k_u = np.ones_like(a)
        k_u[pos] = a[pos] / ((1.0 - a[pos]) * w[pos])
        w_new = np.where(pos, a_target / ((1.0 - a_target) * k_u), 0.0)
        proposed = np.log(w_new[pos]) - np.log(w[pos])
        proposed -= proposed.mean()  # the normalisation's common factor is no step
        if previous is not None:
            norms = float(np.linalg.norm(proposed) * np.linalg.norm(previous))
            cos = float(proposed @ previous) / norms if norms > 0 else 0.0
            # a step that reverses the last one without halving the gap overshoots
            # (undamped, the iteration can cycle between two points for ever): halve
            # it; a steady direction: lengthen it again
            if cos < 0.0 and gap > 0.5 * history[-2]:
                step = max(step / 2.0, 1.0 / 64.0)
            elif cos > 0.5:
                step = min(1.0, 1.5 * step)
        previous = proposed
        if step < 1.0:
            w_new[pos] = w[pos] ** (1.0 - step) * w_new[pos] ** step
        w_new = normalise_weights(w_new, n_u)
        if np.allclose(w_new, w, rtol=1e-13, atol=0):
            break
        w = w_new
    feasible = bool(np.all(n_u[pos] > df * p[pos]))
    capped = bool(np.any(np.isclose(a_target, cap)))
    converged = bool(history[-1] < tol)
    info = {"iterations": it, "leverage_gap": history[-1], "shares": (L / df).tolist(),
            "capped": capped, "converged": converged}
    if not converged:
        warnings.warn(
            f"The 'optimal' weights did not converge in {it} iterations at "
            f"alpha={problem.alpha:.4g}: "
            f"the units' average leverages are up to {history[-1]:.3g} from their "
            f"targets (tolerance {tol:g}). The weights of the last iteration are used.",
            NotConvergedWarning, stacklevel=2)
    if capped:
        info["message"] = (
            ("No finite weights give every unit its share" if not feasible else
             "Equal shares would need a leverage above max_leverage")
            + f" of df={df:.4g}: unit(s) {np.flatnonzero(np.isclose(a_target, cap)).tolist()} "
            f"held at average leverage {cap:g}; the others share the rest.")
    return Weighting(w, feasible=feasible, df=float(df), info=info)


def _optimal_two_units(problem, cap):
    """``optimal`` for two units: root-finding on the weight path.

    One generalised eigendecomposition makes every weight ratio cost O(d)
    (:meth:`lastlayer.paths.TwoUnitWeightPath.equal_share_ratio`); the fixed point
    and the capping rule are those of the iteration in :func:`weighting_optimal`.
    """
    from .paths import TwoUnitWeightPath

    path = TwoUnitWeightPath(problem.stats, problem.unit_of_cell, problem.cell_targets,
                             problem.alpha)
    rho, feasible, out = path.equal_share_ratio(target=problem.target, max_leverage=cap,
                                                return_info=True)
    w = normalise_weights(path.unit_weights(rho), problem.unit_counts)
    info = {"weight_ratio": rho, "shares": np.asarray(out["shares"]).tolist(),
            "capped": bool(out["capped"]), "solver": "two_unit_path"}
    if out["capped"]:
        held = np.flatnonzero(np.isclose(out["target_leverage"], cap)).tolist()
        info["message"] = (
            ("No finite weights give every unit its share" if not feasible else
             "Equal shares would need a leverage above max_leverage")
            + f" of df={out['df']:.4g}: unit(s) {held} held at average leverage {cap:g}; "
            "the others share the rest.")
    return Weighting(w, feasible=feasible, df=float(out["df"]), info=info, path=path)


def _unit_separation(problem):
    """Debiased half-distance between the two units' means in units of the pooled
    within-unit noise (:func:`lastlayer.theory.estimate_mean_norm`, from the
    statistics: sums and Gram traces per cell)."""
    st, unit = problem.stats, problem.unit_of_cell
    N = np.bincount(unit, weights=st.weight_sums, minlength=2)
    sums = np.stack([st.sums[unit == u].sum(axis=0) for u in (0, 1)])
    sq = np.bincount(unit, weights=gram_diagonals(st).sum(axis=1), minlength=2)
    means = sums / N[:, None]
    within = float((sq - N * np.einsum("ui,ui->u", means, means)).sum())
    d = st.n_features
    v = within / (max(N.sum() - 2.0, 1.0) * d)
    diff = means[0] - means[1]
    D = float(diff @ diff) / v - d * (1.0 / N[0] + 1.0 / N[1]) if v > 0 else 0.0
    return 0.5 * math.sqrt(max(D, 0.0))


def weighting_optimal_logistic(problem, dim="pca99", objective="worst"):
    """Cross-entropy theory weights for two units (docs/theory.md, "Cross-entropy").

    The weight ratio that minimises the worst-unit error (``objective="worst"``;
    ``"equalize"`` or ``"balanced"`` also) of ridgeless weighted logistic regression
    on two Gaussian classes (:func:`lastlayer.theory.logistic_class_weights`), with
    ``d/n`` from the effective dimension ``dim`` (as ``optimal_theory``) and the
    mean separation estimated from the data (a debiased distance between the unit
    means over the pooled noise, as :func:`lastlayer.theory.estimate_mean_norm`).
    Past the separability threshold the weights do not matter and are equal
    (``feasible=False``). Isotropic-Gaussian theory: on real features it is a
    heuristic, one of the candidates ``weighting="auto"`` compares.
    """
    if problem.unit_counts.size != 2 or problem.stats is None:
        raise ValueError("weighting='optimal_logistic' needs exactly two classes (or groups) "
                         "and the sufficient statistics.")
    from .theory import logistic_class_weights

    d_eff, _ = _effective_dimension(problem, dim)
    sep = _unit_separation(problem)
    counts = np.maximum(np.rint(problem.unit_counts), 2).astype(int)
    if sep <= 0 or d_eff <= 0:
        return Weighting(np.ones(2), feasible=False,
                         info={"mean_norm": sep, "effective_dimension": d_eff,
                               "message": "no measurable separation: equal weights"})
    try:
        out = logistic_class_weights(counts, d_eff, sep, objective=objective)
    except RuntimeError as err:  # the fixed point failed near the threshold
        return Weighting(normalise_weights(_importance(problem), problem.unit_counts),
                         feasible=False, info={"mean_norm": sep, "effective_dimension": d_eff,
                                               "message": f"theory failed ({err}); balanced"})
    w = normalise_weights(out.weights, problem.unit_counts)
    return Weighting(w, feasible=bool(out.feasible), info={
        "mean_norm": sep, "effective_dimension": d_eff, "weight_ratio": out.weight_ratio,
        "separable": out.separable, "message": out.message})


def weighting_tuned(problem, powers=None, alphas=None):
    """The expensive baseline: grid search on validation data or internal CV.

    Searches the power family ``omega_u ~ (p*_u / n_u)^beta`` (``beta = 0`` is
    no weighting, 1 the ratio of priors) jointly with ``alphas`` (default: only
    the problem's alpha), maximising ``problem.score(unit_weights, alpha)``.
    """
    if problem.score is None:
        raise ValueError("weighting='tuned' needs a score hook (validation data or CV).")
    powers = np.linspace(0.0, 2.0, 9) if powers is None else np.asarray(powers, float)
    alphas = [problem.alpha] if alphas is None else list(alphas)
    imp = _importance(problem)
    best = (-math.inf, None, None)
    table = []
    for beta in powers:
        w = normalise_weights(imp**beta, problem.unit_counts)
        for a in alphas:
            s = float(problem.score(w, a))
            table.append({"power": float(beta), "alpha": float(a), "score": s})
            if s > best[0]:
                best = (s, w, (float(beta), float(a)))
    score, w, (beta, a) = best
    return Weighting(w, alpha=a, info={"power": beta, "alpha": a, "score": score,
                                       "grid": table})


WEIGHTINGS = {
    "none": weighting_none,
    "balanced": weighting_balanced,
    "sqrt": weighting_sqrt,
    "power": weighting_power,
    "effective_number": weighting_effective_number,
    "upsample": weighting_upsample,
    "downsample": weighting_downsample,
    "optimal_theory": weighting_optimal_theory,
    "optimal": weighting_optimal,
    "optimal_logistic": weighting_optimal_logistic,
    "tuned": weighting_tuned,
}


def weighting_explicit(problem, weights):
    """Weights given by the user: a dict ``{label: weight}`` (labels missing from it
    weigh 1) or an array in unit order; positive, scaled to mean one over samples."""
    names = problem.unit_names
    if names is None:
        names = np.arange(problem.unit_counts.size)
    w = check_unit_values(weights, names, "weighting", 1.0)
    if np.any(w <= 0):
        raise ValueError(f"The 'weighting' weights must be positive. Got {w.tolist()!r} "
                         f"instead.")
    return Weighting(normalise_weights(w, problem.unit_counts))


def compute_weighting(spec, problem, **options):
    """Weights for ``problem`` from any form of the ``weighting`` parameter.

    ``spec`` is a name in :data:`WEIGHTINGS` (run with ``options``), or explicit
    weights: a dict ``{label: weight}`` or an array in unit order
    (:func:`weighting_explicit`).
    """
    if not isinstance(spec, str):
        if isinstance(spec, dict) or np.ndim(spec) == 1:
            return weighting_explicit(problem, spec)
    elif spec in WEIGHTINGS:
        return WEIGHTINGS[spec](problem, **options)
    raise ValueError(
        f"The 'weighting' parameter must be one of {sorted(WEIGHTINGS)} or a dict of "
        f"per-class weights. Got {spec!r} instead.")
