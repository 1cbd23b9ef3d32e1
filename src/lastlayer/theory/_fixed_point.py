"""The effective-weight fixed point (docs/theory.md section 2).

For class priors ``pi_c``, loss weights ``omega_c``, ridge ``lambda`` and
``delta = d / n``, the scalar ``k > 0`` solves

    sum_c pi_c omega_c / (1 + omega_c k) + lambda = delta / k.

The map ``k -> k * (sum_c pi_c omega_c / (1 + omega_c k) + lambda)`` is strictly
increasing from 0, so the root is unique whenever it exists: always for
``lambda > 0``, and for ``lambda = 0`` exactly when ``delta < 1`` (below
interpolation).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq

__all__ = ["solve_k", "effective_weights", "average_leverage"]


def solve_k(priors, weights, dim_ratio, ridge=0.0):
    """Solve the fixed point of docs/theory.md section 2 for ``k``.

    Parameters
    ----------
    priors : array-like of shape (n_classes,)
        Class priors ``pi_c`` (positive, summing to one).
    weights : array-like of shape (n_classes,)
        Loss weights ``omega_c`` (positive).
    dim_ratio : float
        ``delta = d / n`` (positive).
    ridge : float, default=0.0
        Ridge ``lambda >= 0`` of the objective
        ``(1/n) sum_i omega_{y_i} ||t_i - W^T x_i - b||^2 + lambda ||W||_F^2``.

    Returns
    -------
    k : float
        The root, or ``math.inf`` when ``ridge == 0`` and ``dim_ratio >= 1``
        (the interpolation regime, in which the weights do not matter).
    """
    pi = np.asarray(priors, dtype=float)
    w = np.asarray(weights, dtype=float)
    delta = float(dim_ratio)
    lam = float(ridge)
    if lam == 0.0 and delta >= 1.0:
        return math.inf

    # Work in u = log k for a well-scaled bracket.
    def g(u):
        k = math.exp(u)
        wk = w * k
        return float(np.sum(pi * wk / (1.0 + wk)) + lam * k - delta)

    # Small k: g ~ k (sum pi w + lambda) - delta; large k: g -> (1 or inf) - delta.
    lo = math.log(delta / (float(np.sum(pi * w)) + lam)) - 1.0
    hi = lo + 2.0
    while g(hi) < 0.0:
        hi += 2.0
        if hi > lo + 400:  # pragma: no cover - guarded by the early return above
            return math.inf
    while g(lo) > 0.0:
        lo -= 2.0
    u = brentq(g, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=500)
    return math.exp(u)


def effective_weights(weights, k):
    """Effective weights ``omega_bar_c = omega_c / (1 + omega_c k)``."""
    w = np.asarray(weights, dtype=float)
    if math.isinf(k):
        return np.zeros_like(w)
    return w / (1.0 + w * k)


def average_leverage(weights, k):
    """Average leverage ``a_c = omega_c k / (1 + omega_c k)`` of a class-c sample."""
    w = np.asarray(weights, dtype=float)
    if math.isinf(k):
        return np.ones_like(w)
    return w * k / (1.0 + w * k)
