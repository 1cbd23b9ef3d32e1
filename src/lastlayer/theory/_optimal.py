"""Optimal loss weights from the theory (docs/theory.md section 4).

Equal class errors hold exactly when every class carries its target share of the
degrees of freedom: ``n_g a_g = df p*_g`` with ``a_g`` the average leverage of a
class-g sample. With the fixed point of section 2 this gives

    omega_g  proportional to  p*_g / (n_g - df p*_g),

feasible iff ``n_g > df p*_g`` for every g. Balanced targets give
``omega_c ~ 1 / (K n_c - df)``; two classes, ridgeless, give
``omega_+ / omega_- = (2 n_- - d) / (2 n_+ - d)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from .._validation import check_counts, check_probability_vector, check_real
from ._binary import binary_errors

__all__ = [
    "OptimalWeights",
    "optimal_class_weights",
    "optimal_weight_ratio",
    "numerical_optimal_ratio",
    "water_fill_leverage",
    "downsample_errors",
]


@dataclass(frozen=True)
class OptimalWeights:
    """Result of :func:`optimal_class_weights`.

    Attributes
    ----------
    weights : ndarray of shape (n_classes,)
        Loss weights in the order of ``counts``, scaled so the mean weight over
        samples is one (``sum_g n_g omega_g = n``).
    feasible : bool
        Whether finite weights equalise the classes exactly.
    df : float
        Degrees of freedom used (``sum_g n_g a_g``): ``dim (+1)`` ridgeless, found
        self-consistently with the weights when ``ridge > 0``.
    leverage : ndarray of shape (n_classes,)
        Average leverage ``a_g`` of a sample of each class under these weights.
    infeasible_classes : tuple of int
        Classes held at ``max_leverage`` because they cannot carry their share
        (empty when feasible).
    message : str
        Human-readable account of an infeasible or capped case and what was returned.
    capped : bool
        True when some class was held at ``max_leverage`` (always when infeasible).
    """

    weights: np.ndarray
    feasible: bool
    df: float
    leverage: np.ndarray = field(repr=False)
    infeasible_classes: tuple = ()
    message: str = ""
    capped: bool = False

    def as_dict(self):
        return {
            "class_weights": self.weights.tolist(),
            "feasible": bool(self.feasible),
            "df": float(self.df),
            "leverage": self.leverage.tolist(),
            "infeasible_classes": list(self.infeasible_classes),
            "capped": bool(self.capped),
            "message": self.message,
        }


def _weights_from_leverage(priors, a):
    """Weights with average leverages ``a`` and mean weight one.

    ``omega_g k = a_g / (1 - a_g)``; ``sum_g pi_g omega_g = 1`` fixes
    ``k = sum_g pi_g a_g / (1 - a_g)``.
    """
    odds = a / (1.0 - a)
    k = float(priors @ odds)
    return odds / k, k


def water_fill_leverage(counts, target, df, max_leverage):
    """Average leverages giving each unit its share of ``df``, capped.

    Returns ``a_u = min(t p*_u / n_u, max_leverage)`` with ``t`` such that
    ``sum_u n_u a_u = df``: every unit gets its target share ``p*_u`` of the
    degrees of freedom where it can carry it, a unit that cannot is held at
    ``max_leverage`` and the rest is shared by the others in proportion to
    ``p*``. When even ``max_leverage`` for every unit cannot absorb ``df``
    (``df >= max_leverage * n``, close to interpolation, where weights hardly
    matter), every unit gets ``df / n``.
    """
    n_u = np.asarray(counts, dtype=float)
    p = np.asarray(target, dtype=float)
    cap = float(max_leverage)
    if df >= cap * n_u.sum():
        return np.full(n_u.size, df / n_u.sum())
    pos = p > 0
    t_hi = float(np.max(cap * n_u[pos] / p[pos]))

    def total(t):
        return float(np.sum(n_u * np.minimum(t * p / n_u, cap))) - df

    t = brentq(total, 0.0, t_hi, xtol=1e-14 * max(t_hi, 1.0), rtol=1e-15, maxiter=500)
    return np.minimum(t * p / n_u, cap)


def optimal_class_weights(counts, dim, *, ridge=0.0, target=None, fit_intercept=True,
                          max_leverage=0.95):
    """Loss weights that give every class (or group) its target share of the df.

    Parameters
    ----------
    counts : sequence of int, shape (n_classes,)
        Retraining samples per class or group, ``n_g``.
    dim : float >= 0
        Feature dimension ``d`` (or an effective dimension).
    ridge : float >= 0, default=0
        Ridge ``lambda`` of ``(1/n) sum_i omega_{y_i} ||t_i - W^T x_i - b||^2 +
        lambda ||W||_F^2``, with weights at mean one over samples. With
        ``ridge > 0``, ``df`` depends on the weights and is solved for
        self-consistently: ``df / n + lambda k = (d + intercept) / n``.
    target : array-like of shape (n_classes,), optional
        Target mixture ``p*`` (default uniform: balanced classes).
    fit_intercept : bool, default=True
        Count the unpenalised intercept as one more degree of freedom.
    max_leverage : float in (0, 1), default=0.95
        Largest average leverage a class may be given. Ridgeless, no finite
        weights equalise the classes when some ``n_g <= df p*_g``
        (``feasible=False``); with ridge they always exist but may need a class's
        leverage arbitrarily close to one. In both cases the returned weights are
        those of :func:`water_fill_leverage`: a class that cannot carry its share
        is held at leverage ``max_leverage`` (its weight large but finite,
        ``omega_g k = max_leverage / (1 - max_leverage)``), the other classes share
        the remaining degrees of freedom in proportion to ``p*``, and ``capped``
        is True.

    Returns
    -------
    OptimalWeights
    """
    n_g = check_counts(counts).astype(float)
    dim = check_real(dim, "dim", 0.0, None)
    lam = check_real(ridge, "ridge", 0.0, None)
    cap = check_real(max_leverage, "max_leverage", 0.0, 1.0, closed="neither")
    K = n_g.size
    p_star = (np.full(K, 1.0 / K) if target is None
              else check_probability_vector(target, "target", size=K))
    n = n_g.sum()
    pi = n_g / n
    delta = (dim + (1.0 if fit_intercept else 0.0)) / n
    share = p_star / pi

    # Exact (uncapped) equal shares: a_g = s share_g with s = df / n < 1 / max share.
    s_limit = 1.0 / float(share.max())

    def excess(s):  # df / n + lambda k - delta along the exact family
        _, k = _weights_from_leverage(pi, s * share)
        return s + lam * k - delta

    if lam == 0.0:
        s_exact = delta
    else:  # excess -> +inf as s -> s_limit, so a root always exists
        hi = s_limit * (1.0 - 1e-15)
        s_exact = brentq(excess, 1e-12 * hi, hi, xtol=1e-15, rtol=1e-14, maxiter=500) \
            if excess(hi) > 0 else s_limit
    feasible = s_exact < s_limit
    capped = not (feasible and s_exact * share.max() <= cap)
    message = ""
    if not capped:
        a = s_exact * share
        df = s_exact * n
    else:
        # Water-filled leverages; with ridge the df they imply is solved for too.
        def a_of(df):
            return water_fill_leverage(n_g, p_star, df, cap)

        if lam == 0.0:
            df = delta * n
        else:
            def excess_df(df):
                _, k = _weights_from_leverage(pi, a_of(df))
                return df / n + lam * k - delta
            top = cap * n * (1.0 - 1e-12)
            df = brentq(excess_df, 1e-12 * top, top, xtol=1e-12, maxiter=500) \
                if excess_df(top) > 0 else top
        a = a_of(df)
        if df >= cap * n:
            message = (
                f"df={df:.4g} is at least max_leverage * n = {cap * n:.4g}: the fit is close to "
                "interpolation, where the weights have little effect. Returned equal weights.")
        tight = tuple(int(g) for g in np.flatnonzero(n_g <= df * p_star + 1e-9))
        held = tuple(int(g) for g in np.flatnonzero(np.isclose(a, cap)))
        if message:
            pass
        elif not feasible:
            message = (
                "No finite weights equalise the classes: "
                + ", ".join(f"class {g}: n={int(n_g[g])} <= df*p={df * p_star[g]:.4g}"
                            for g in (tight or held))
                + f". Returned weights holding class(es) {list(held)} at average leverage "
                f"{cap:g} (max_leverage); the others share the remaining df.")
        else:
            message = (
                f"Equal shares would need average leverage above {cap:g} for class(es) "
                f"{list(held)}; returned weights holding them at {cap:g} (max_leverage).")
    if np.any(a >= 1.0):  # df >= n: interpolation, weights have no effect
        a = np.full(K, cap)
    weights, _ = _weights_from_leverage(pi, a)
    return OptimalWeights(weights=weights, feasible=bool(feasible), df=float(df),
                          leverage=a, infeasible_classes=() if feasible else
                          tuple(int(g) for g in np.flatnonzero(np.isclose(a, cap))),
                          message=message, capped=bool(capped))


def optimal_weight_ratio(minority_prior, dim_ratio):
    """Closed-form error-equalising ratio ``omega_+ / omega_-`` (binary, ridgeless).

    ``rho* = (2 pi_- - delta) / (2 pi_+ - delta)``, the ratio of priors plus
    ``delta (pi_- - pi_+) / (pi_+ (2 pi_+ - delta))``. Returns ``math.inf`` when
    ``delta >= 2 pi_+`` (no finite weight equalises the errors).
    """
    pi = check_real(minority_prior, "minority_prior", 0.0, 1.0, closed="neither")
    delta = check_real(dim_ratio, "dim_ratio", 0.0, None, closed="neither")
    if delta >= 2.0 * pi or delta >= 2.0 * (1.0 - pi):
        if pi == 0.5:  # both classes saturate together; by symmetry the ratio is 1
            return 1.0
        return math.inf if pi < 0.5 else 0.0
    return (2.0 * (1.0 - pi) - delta) / (2.0 * pi - delta)


def numerical_optimal_ratio(minority_prior, dim_ratio, *, ridge=0.0, objective="worst",
                            mean_norm=1.0, mean_pos=None, mean_neg=None,
                            bounds=(1e-3, 1e4)):
    """Weight ratio minimising the theory's worst-class or balanced error.

    Weights are ``weights_from_ratio`` (mean one over samples). The search is a
    log-spaced grid over ``bounds`` refined by bounded Brent on ``log rho``.

    Returns
    -------
    dict with ``weight_ratio``, ``error`` (the minimised objective),
    ``prediction`` (a :class:`BinaryPrediction`) and ``at_bound`` (True when
    the optimum sits at an end of ``bounds``: the objective is still falling).
    """
    if objective not in ("worst", "balanced"):
        raise ValueError(
            f"The 'objective' parameter must be one of 'worst', 'balanced'. Got {objective!r}.")
    key = "worst_class_error" if objective == "worst" else "balanced_error"
    lo, hi = math.log(bounds[0]), math.log(bounds[1])

    def f(u):
        pred = binary_errors(minority_prior, dim_ratio, weight_ratio=math.exp(u), ridge=ridge,
                             mean_norm=mean_norm, mean_pos=mean_pos, mean_neg=mean_neg)
        return getattr(pred, key)

    grid = np.linspace(lo, hi, 121)
    vals = np.array([f(u) for u in grid])
    i = int(np.argmin(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    if b > a:
        res = minimize_scalar(f, bounds=(a, b), method="bounded", options={"xatol": 1e-9})
        u = res.x if res.fun <= vals[i] else grid[i]
    else:  # pragma: no cover - a grid of one point
        u = grid[i]
    rho = math.exp(u)
    pred = binary_errors(minority_prior, dim_ratio, weight_ratio=rho, ridge=ridge,
                         mean_norm=mean_norm, mean_pos=mean_pos, mean_neg=mean_neg)
    at_bound = bool(u - lo < 0.05 or hi - u < 0.05)
    return {"weight_ratio": rho, "error": getattr(pred, key), "prediction": pred,
            "at_bound": at_bound}


def downsample_errors(minority_prior, dim_ratio, *, ridge=0.0, mean_norm=1.0,
                      mean_pos=None, mean_neg=None):
    """Theory for downsampling both classes to ``n_+`` samples (docs/theory.md section 5).

    The balanced subset has ``2 n_+`` samples, so ``delta' = delta / (2 pi_+)``,
    priors 1/2 and equal weights; the ridge keeps its value in the subset's own
    ``(1 / n')`` objective.
    """
    pi = check_real(minority_prior, "minority_prior", 0.0, 1.0, closed="neither")
    delta = check_real(dim_ratio, "dim_ratio", 0.0, None, closed="neither")
    n_min_share = min(pi, 1.0 - pi)
    return binary_errors(0.5, delta / (2.0 * n_min_share), weights=(1.0, 1.0), ridge=ridge,
                         mean_norm=mean_norm, mean_pos=mean_pos, mean_neg=mean_neg)
