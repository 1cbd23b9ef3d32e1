"""Asymptotic per-class errors of weighted ridge on two Gaussian classes.

Model (docs/theory.md sections 1 and 3): ``x | y = c ~ N(mu_c, I_d)``, targets +1 for
the positive (minority) class and -1 for the negative class, ``n_c = pi_c n``,
``d / n -> delta``. The fitted layer minimises

    (1/n) sum_i omega_{y_i} (t_i - w^T x_i - b)^2 + lambda ||w||^2

with an unpenalised intercept ``b``. Only inner products of the means enter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm

from .._validation import check_real
from ._fixed_point import average_leverage, effective_weights, solve_k

__all__ = ["BinaryPrediction", "binary_errors", "symmetric_means", "weights_from_ratio"]


@dataclass(frozen=True)
class BinaryPrediction:
    """Theory's prediction for one binary configuration.

    Attributes
    ----------
    error_pos, error_neg : float
        Test error of the positive (minority) and negative class.
    worst_class_error, balanced_error : float
        ``max`` and mean of the two.
    k : float
        Root of the fixed point (``inf`` in the ridgeless interpolation regime).
    effective_weights : ndarray of shape (2,)
        ``omega_bar_c`` for (pos, neg), scaled by ``k`` in the interpolation regime
        (where they all tend to ``1/k``).
    effective_priors : ndarray of shape (2,)
        ``p_c = pi_c omega_bar_c / S``.
    leverage : ndarray of shape (2,)
        Average leverage ``a_c`` of a sample of each class.
    df_ratio : float
        Degrees of freedom per sample, ``sum_c pi_c a_c = df / n``.
    alpha : float
        Scale of the in-span weights ``w_par = alpha (mu_+ - mu_-)``.
    intercept : float
        Asymptotic intercept ``b``.
    sigma : float
        Norm of the noise component of ``w``.
    """

    error_pos: float
    error_neg: float
    worst_class_error: float
    balanced_error: float
    k: float
    effective_weights: np.ndarray = field(repr=False)
    effective_priors: np.ndarray = field(repr=False)
    leverage: np.ndarray = field(repr=False)
    df_ratio: float
    alpha: float
    intercept: float
    sigma: float

    def as_dict(self):
        """JSON-ready dict of every field."""
        out = {}
        for key, value in self.__dict__.items():
            out[key] = value.tolist() if isinstance(value, np.ndarray) else float(value)
        return out


def symmetric_means(mean_norm, dim=1):
    """Antipodal means ``mu_+ = -mu_- = mean_norm * e_1`` as arrays of length ``dim``."""
    mu = np.zeros(dim)
    mu[0] = mean_norm
    return mu, -mu


def weights_from_ratio(minority_prior, weight_ratio):
    """Loss weights (pos, neg) with ratio ``rho`` and mean weight over samples 1.

    The normalisation ``pi_+ omega_+ + pi_- omega_- = 1`` fixes the scale that the
    ridge sees (docs/theory.md section 1).
    """
    pi = float(minority_prior)
    rho = float(weight_ratio)
    scale = pi * rho + (1.0 - pi)
    return np.array([rho / scale, 1.0 / scale])


def check_means(mean_pos, mean_neg, mean_norm):
    """The two class means: given both, or antipodal of norm ``mean_norm`` (default 1)."""
    if mean_pos is None and mean_neg is None:
        s = 1.0 if mean_norm is None else check_real(mean_norm, "mean_norm", 0.0, None)
        mean_pos, mean_neg = symmetric_means(s)
    elif mean_pos is None or mean_neg is None:
        raise ValueError("Pass both 'mean_pos' and 'mean_neg', or neither.")
    mu_p = np.asarray(mean_pos, dtype=float).ravel()
    mu_n = np.asarray(mean_neg, dtype=float).ravel()
    if mu_p.shape != mu_n.shape or not (np.all(np.isfinite(mu_p)) and np.all(np.isfinite(mu_n))):
        raise ValueError("'mean_pos' and 'mean_neg' must be finite and of one length.")
    return mu_p, mu_n


def binary_errors(minority_prior, dim_ratio, weights=None, *, weight_ratio=None,
                  ridge=0.0, mean_pos=None, mean_neg=None, mean_norm=None):
    """Predict the per-class test errors of weighted ridge (docs/theory.md section 3).

    Parameters
    ----------
    minority_prior : float in (0, 1)
        Prior ``pi_+`` of the positive class (need not be below 1/2).
    dim_ratio : float > 0
        ``delta = d / n``.
    weights : array-like of shape (2,), optional
        Loss weights ``(omega_+, omega_-)`` exactly as in the objective. Their scale
        matters only when ``ridge > 0``.
    weight_ratio : float > 0, optional
        Alternative to ``weights``: ``rho = omega_+ / omega_-``, normalised with
        :func:`weights_from_ratio`. Default 1 when neither is given.
    ridge : float >= 0, default=0
    mean_pos, mean_neg : array-like, optional
        Class means (any common length). Default: ``symmetric_means(mean_norm)``.
    mean_norm : float, optional
        Norm of the antipodal means when ``mean_pos``/``mean_neg`` are not given.

    Returns
    -------
    BinaryPrediction
    """
    pi_pos = check_real(minority_prior, "minority_prior", 0.0, 1.0, closed="neither")
    delta = check_real(dim_ratio, "dim_ratio", 0.0, None, closed="neither")
    lam = check_real(ridge, "ridge", 0.0, None)
    if weights is not None and weight_ratio is not None:
        raise ValueError("Pass either 'weights' or 'weight_ratio', not both.")
    if weights is None:
        rho = 1.0 if weight_ratio is None else check_real(
            weight_ratio, "weight_ratio", 0.0, None, closed="neither")
        omega = weights_from_ratio(pi_pos, rho)
    else:
        omega = np.asarray(weights, dtype=float).ravel()
        if omega.shape != (2,) or not np.all(np.isfinite(omega)) or np.any(omega <= 0):
            raise ValueError(
                "The 'weights' parameter must be two positive finite floats "
                f"(omega_pos, omega_neg). Got {np.asarray(weights).tolist()!r} instead."
            )
    mu_p, mu_n = check_means(mean_pos, mean_neg, mean_norm)

    pi = np.array([pi_pos, 1.0 - pi_pos])
    t = np.array([1.0, -1.0])
    dvec = mu_p - mu_n
    D = float(dvec @ dvec)
    m = np.array([mu_p @ dvec, mu_n @ dvec])  # mu_c^T Delta
    k = solve_k(pi, omega, delta, lam)

    if math.isinf(k):
        # Ridgeless interpolation (delta >= 1): every omega_bar_c -> 1/k, so the
        # weights drop out; lambda/S -> delta - 1 (docs/theory.md section 2 limit).
        wbar = np.ones(2)
        p = pi.copy()
        c0 = delta
    else:
        wbar = effective_weights(omega, k)
        S = float(pi @ wbar)
        p = pi * wbar / S
        c0 = 1.0 + lam / S
    alpha = 2.0 * p[0] * p[1] / (c0 + p[0] * p[1] * D)
    b = (p[0] - p[1]) - alpha * float(p @ m)
    # E r_c^2 = (t_c - b - mu_c^T w_par)^2 + ||w_par||^2
    er2 = (t - b - alpha * m) ** 2 + alpha**2 * D
    if math.isinf(k):
        if delta == 1.0:
            sigma2 = math.inf
        else:
            sigma2 = float(pi @ er2) / (delta - 1.0)
        lev = np.ones(2)
        df_ratio = 1.0
    else:
        q = pi * omega**2 / (1.0 + omega * k) ** 2
        sigma2 = float(q @ er2) / (delta / k**2 - q.sum())
        lev = average_leverage(omega, k)
        df_ratio = float(pi @ lev)
    N = math.sqrt(alpha**2 * D + sigma2)
    if math.isinf(N):
        e_pos = e_neg = 0.5
    else:
        e_pos = float(norm.sf((p[0] - p[1] + alpha * p[1] * D) / N))
        e_neg = float(norm.sf((p[1] - p[0] + alpha * p[0] * D) / N))
    return BinaryPrediction(
        error_pos=e_pos,
        error_neg=e_neg,
        worst_class_error=max(e_pos, e_neg),
        balanced_error=0.5 * (e_pos + e_neg),
        k=k,
        effective_weights=wbar,
        effective_priors=p,
        leverage=lev,
        df_ratio=df_ratio,
        alpha=alpha,
        intercept=b,
        sigma=math.sqrt(sigma2),
    )
