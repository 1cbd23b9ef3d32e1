"""Monte Carlo reference for the theory: fit the actual estimator on sampled data.

The simulator is deliberately independent of :mod:`lastlayer.solvers` (it solves the
normal equations or calls ``numpy.linalg.lstsq`` directly) so that it can serve as
a reference for both the theory and the solvers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from .._validation import check_int, check_real

__all__ = ["SimulationResult", "fit_weighted_ridge_reference", "simulate_binary",
           "simulate_multiclass"]


@dataclass(frozen=True)
class SimulationResult:
    """Per-class errors over repeats: mean and standard error of the mean.

    Attributes
    ----------
    errors : ndarray of shape (n_repeats, n_classes)
        Per-repeat, per-class test errors (exact Gaussian errors for the binary
        simulator, Monte Carlo test errors for the multiclass one).
    mean, sem : ndarray of shape (n_classes,)
        Mean over repeats and its standard error (``std(ddof=1) / sqrt(R)``).
    worst_mean, worst_sem, balanced_mean, balanced_sem : float
        The same for the per-repeat worst-class and balanced error.
    """

    errors: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    worst_mean: float
    worst_sem: float
    balanced_mean: float
    balanced_sem: float

    @classmethod
    def from_errors(cls, errors):
        e = np.asarray(errors, dtype=float)
        r = e.shape[0]

        def sem(v):
            return np.std(v, axis=0, ddof=1) / math.sqrt(r) if r > 1 else np.full(np.shape(v)[1:], np.nan)

        worst = e.max(axis=1)
        bal = e.mean(axis=1)
        return cls(e, e.mean(axis=0), sem(e), float(worst.mean()), float(sem(worst)),
                   float(bal.mean()), float(sem(bal)))


def fit_weighted_ridge_reference(X, T, sample_weight, ridge):
    """Reference weighted ridge with an unpenalised intercept.

    Minimises ``(1/n) sum_i s_i ||T_i - W^T x_i - b||^2 + ridge ||W||_F^2`` by
    weighted centring and either the normal equations (``ridge > 0``) or the
    minimum-norm ``numpy.linalg.lstsq`` solution (``ridge == 0``).

    Returns
    -------
    W : ndarray of shape (d, m)
    b : ndarray of shape (m,)
    """
    X = np.asarray(X, dtype=float)
    T = np.asarray(T, dtype=float)
    if T.ndim == 1:
        T = T[:, None]
    s = np.asarray(sample_weight, dtype=float)
    n, d = X.shape
    xbar = s @ X / s.sum()
    tbar = s @ T / s.sum()
    Xc = X - xbar
    Tc = T - tbar
    if ridge > 0:
        if d <= n:
            A = (Xc * s[:, None]).T @ Xc + n * ridge * np.eye(d)
            W = np.linalg.solve(A, (Xc * s[:, None]).T @ Tc)
        else:  # dual form: W = Xc^T (S Xc Xc^T + n ridge I)^{-1} S Tc
            K = Xc @ Xc.T
            W = Xc.T @ np.linalg.solve(s[:, None] * K + n * ridge * np.eye(n), s[:, None] * Tc)
    elif d >= n:
        # Ridgeless and overparameterised: the minimum-norm interpolator, whatever
        # the weights. min ||W|| s.t. X W + 1 b^T = T  <=>  W = X^T A with
        # 1^T A = 0, from the bordered (n + 1) x (n + 1) system.
        G = np.zeros((n + 1, n + 1))
        G[:n, :n] = X @ X.T
        G[:n, n] = G[n, :n] = 1.0
        rhs = np.vstack([T, np.zeros((1, T.shape[1]))])
        sol = np.linalg.solve(G, rhs)
        return X.T @ sol[:n], sol[n]
    else:
        r = np.sqrt(s)[:, None]
        W = np.linalg.lstsq(Xc * r, Tc * r, rcond=None)[0]
    b = tbar - xbar @ W
    return W, b


def _class_counts(priors, n):
    priors = np.asarray(priors, dtype=float)
    counts = np.floor(priors * n).astype(int)
    # Largest remainders get the leftover samples, so counts sum to n exactly.
    rest = n - counts.sum()
    order = np.argsort(-(priors * n - counts))
    counts[order[:rest]] += 1
    if np.any(counts < 1):
        raise ValueError(f"n={n} leaves a class with no samples for priors {priors.tolist()}.")
    return counts


def simulate_binary(minority_prior, dim_ratio, weights, *, ridge=0.0, n=1500,
                    mean_pos=None, mean_neg=None, mean_norm=1.0, repeats=30,
                    seed=0, subsample=None):
    """Sample the binary Gaussian model, fit weighted ridge, return per-class errors.

    Classes: positive (label +1, prior ``minority_prior``) and negative (-1).
    ``x | c ~ N(mu_c, I_d)`` with ``d = round(dim_ratio * n)``. Test errors are
    exact given the fitted ``(w, b)``: ``e_+ = Q((w^T mu_+ + b) / ||w||)`` and
    ``e_- = Q(-(w^T mu_- + b) / ||w||)``, so the only noise is the training sample.

    Parameters
    ----------
    weights : array-like of shape (2,)
        ``(omega_+, omega_-)`` exactly as in the objective of
        :func:`lastlayer.theory.binary_errors`.
    subsample : {None, "downsample"}
        ``"downsample"`` keeps ``min(n_+, n_-)`` samples of each class (random
        majority subset) and fits unweighted: the downsampling baseline of
        docs/theory.md section 5 (:func:`lastlayer.theory.downsample_errors`).
    seed : int
        Seed of ``numpy.random.default_rng``; repeat ``r`` uses the r-th spawned stream.

    Returns
    -------
    SimulationResult with columns (positive, negative).
    """
    pi_pos = check_real(minority_prior, "minority_prior", 0.0, 1.0, closed="neither")
    delta = check_real(dim_ratio, "dim_ratio", 0.0, None, closed="neither")
    ridge = check_real(ridge, "ridge", 0.0, None)
    n = check_int(n, "n", 4)
    repeats = check_int(repeats, "repeats", 1)
    d = max(1, int(round(delta * n)))
    if mean_pos is None:
        mean_pos, mean_neg = np.array([mean_norm]), np.array([-mean_norm])
    mu = np.zeros((2, d))
    mp = np.asarray(mean_pos, float).ravel()
    mn = np.asarray(mean_neg, float).ravel()
    mu[0, : mp.size] = mp
    mu[1, : mn.size] = mn
    n_pos, n_neg = _class_counts([pi_pos, 1 - pi_pos], n)
    if subsample == "downsample":
        # Both classes keep n_min = min(n_+, n_-) samples (docs/theory.md section 5).
        n_pos = n_neg = min(n_pos, n_neg)
    elif subsample is not None:
        raise ValueError(f"subsample must be None or 'downsample'. Got {subsample!r}.")
    omega = np.asarray(weights, float) if subsample is None else np.ones(2)
    y = np.r_[np.zeros(n_pos, int), np.ones(n_neg, int)]
    t = np.where(y == 0, 1.0, -1.0)
    s = omega[y]
    rngs = np.random.default_rng(seed).spawn(repeats)
    errors = np.empty((repeats, 2))
    for r, rng in enumerate(rngs):
        X = mu[y] + rng.standard_normal((y.size, d))
        # With downsampling the objective's 1/n is the kept sample count's.
        W, b = fit_weighted_ridge_reference(X, t, s, ridge)
        w = W[:, 0]
        nw = float(np.linalg.norm(w))
        if nw == 0.0:
            errors[r] = 0.5
            continue
        errors[r, 0] = norm.sf((mu[0] @ w + b[0]) / nw)
        errors[r, 1] = norm.sf(-(mu[1] @ w + b[0]) / nw)
    return SimulationResult.from_errors(errors)


def simulate_multiclass(priors, dim_ratio, weights, *, means, ridge=0.0, n=1500,
                        repeats=20, n_test=4000, seed=0):
    """Sample K Gaussian classes, fit weighted ridge on one-hot targets, score by argmax.

    Parameters
    ----------
    priors : array-like of shape (K,)
    weights : array-like of shape (K,)
        Per-class loss weights ``omega_c``.
    means : array-like of shape (K, m)
        Class means, padded with zeros to dimension ``d = round(dim_ratio * n)``.
    n_test : int
        Test samples per class (fresh each repeat).

    Returns
    -------
    SimulationResult with one column per class (test error = 1 - accuracy).
    """
    priors = np.asarray(priors, float)
    K = priors.size
    delta = check_real(dim_ratio, "dim_ratio", 0.0, None, closed="neither")
    ridge = check_real(ridge, "ridge", 0.0, None)
    d = max(1, int(round(delta * n)))
    M = np.asarray(means, float)
    mu = np.zeros((K, d))
    mu[:, : M.shape[1]] = M
    counts = _class_counts(priors, n)
    y = np.repeat(np.arange(K), counts)
    T = np.eye(K)[y]
    s = np.asarray(weights, float)[y]
    rngs = np.random.default_rng(seed).spawn(repeats)
    errors = np.empty((repeats, K))
    for r, rng in enumerate(rngs):
        X = mu[y] + rng.standard_normal((y.size, d))
        W, b = fit_weighted_ridge_reference(X, T, s, ridge)
        for c in range(K):
            Z = mu[c] + rng.standard_normal((n_test, d))
            errors[r, c] = np.mean(np.argmax(Z @ W + b, axis=1) != c)
    return SimulationResult.from_errors(errors)
