"""Optimal loss weights from the theory (theory.md section 4).

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
from ._binary import binary_errors, weights_from_ratio

__all__ = [
    "OptimalWeights",
    "optimal_class_weights",
    "optimal_weight_ratio",
    "numerical_optimal_ratio",
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
        Indices g with ``n_g <= df p*_g`` (empty when feasible).
    message : str
        Human-readable account of an infeasible case and what was returned.
    """

    weights: np.ndarray
    feasible: bool
    df: float
    leverage: np.ndarray = field(repr=False)
    infeasible_classes: tuple = ()
    message: str = ""

    def as_dict(self):
        return {
            "class_weights": self.weights.tolist(),
            "feasible": bool(self.feasible),
            "df": float(self.df),
            "leverage": self.leverage.tolist(),
            "infeasible_classes": list(self.infeasible_classes),
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
        Infeasible case: no finite weights equalise the classes when some
        ``n_g <= df p*_g``. We then return the closed form at the largest df for
        which every class's average leverage is at most ``max_leverage``: the most
        constrained class gets leverage ``max_leverage`` (weight ratio bounded by
        roughly ``max_leverage / (1 - max_leverage)`` times the feasible ones'),
        the class ordering of the weights is kept and nothing is infinite.

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
    # s = df / n; a_g(s) = s p*_g / pi_g; feasible s < min_g pi_g / p*_g.
    share = np.divide(p_star, pi)
    s_limit = float(np.min(np.divide(1.0, share, out=np.full(K, np.inf), where=share > 0)))
    s_cap = cap * s_limit

    def lhs(s):
        a = s * share
        _, k = _weights_from_leverage(pi, a)
        return s + lam * k

    if lam == 0.0:
        s_needed = delta
    elif lhs(s_cap) <= delta:
        s_needed = math.inf  # even capped leverage does not use up the dimension
    else:
        s_needed = brentq(lambda s: lhs(s) - delta, 1e-15 * s_cap, s_cap,
                          xtol=1e-15, rtol=1e-13, maxiter=500)
    feasible = s_needed < s_limit
    infeasible = ()
    message = ""
    if s_needed < s_cap:
        s = s_needed
    else:
        s = s_cap
        if not feasible:
            df_needed = s_needed * n
            infeasible = tuple(int(g) for g in np.flatnonzero(n_g <= df_needed * p_star + 1e-12))
            detail = ", ".join(
                f"class {g}: n={int(n_g[g])} <= df*p={df_needed * p_star[g]:.4g}"
                for g in infeasible) if math.isfinite(df_needed) else "all classes"
            message = (
                f"No finite weights equalise the classes: df={df_needed:.4g} exceeds "
                f"what the smallest class can carry ({detail}). Returned the closed form "
                f"at df={s * n:.4g}, where the most constrained class has average "
                f"leverage {cap:g} (max_leverage)."
            )
    a = s * share
    weights, _ = _weights_from_leverage(pi, a)
    return OptimalWeights(weights=weights, feasible=bool(feasible), df=float(s * n),
                          leverage=a, infeasible_classes=infeasible, message=message)


def optimal_weight_ratio(minority_prior, dim_ratio):
    """Closed-form error-equalising ratio ``omega_+ / omega_-`` (binary, ridgeless).

    ``rho* = (2 pi_- - delta) / (2 pi_+ - delta)``, the ratio of priors plus
    ``delta (pi_- - pi_+) / (pi_+ (2 pi_+ - delta))``. Returns ``math.inf`` when
    ``delta >= 2 pi_+`` (no finite weight equalises the errors).
    """
    pi = check_real(minority_prior, "minority_prior", 0.0, 1.0, closed="neither")
    delta = check_real(dim_ratio, "dim_ratio", 0.0, None, closed="neither")
    if delta >= 2.0 * pi or delta >= 2.0 * (1.0 - pi):
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
    """Theory for downsampling both classes to ``n_+`` samples (theory.md section 5).

    The balanced subset has ``2 n_+`` samples, so ``delta' = delta / (2 pi_+)``,
    priors 1/2 and equal weights; the ridge keeps its value in the subset's own
    ``(1 / n')`` objective.
    """
    pi = check_real(minority_prior, "minority_prior", 0.0, 1.0, closed="neither")
    delta = check_real(dim_ratio, "dim_ratio", 0.0, None, closed="neither")
    n_min_share = min(pi, 1.0 - pi)
    return binary_errors(0.5, delta / (2.0 * n_min_share), weights=(1.0, 1.0), ridge=ridge,
                         mean_norm=mean_norm, mean_pos=mean_pos, mean_neg=mean_neg)
