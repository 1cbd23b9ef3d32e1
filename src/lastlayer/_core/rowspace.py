"""The span of the rows: an exact ``r``-dimensional copy of a problem with ``n < d``.

Every ridge fit of :mod:`lastlayer.solvers` (any cell weights, any alpha, any subset
of the rows, with an unpenalised intercept) has its coefficients in the span of the
centred rows ``x_i - c``, whatever the shift ``c``: the gradient of the objective in
``W`` is a combination of the rows, and the intercept absorbs the shift. With an
orthonormal basis ``Q`` (d, r) of that span, the problem on the coordinates
``y_i = Q^T (x_i - c)`` is the same problem: the same fitted values, leverages,
leave-one-out residuals and degrees of freedom, and ``W = Q W_r``,
``b = b_r - W^T c``. When ``n < d`` this replaces every ``d x d`` factorisation of a
fit by an ``r x r`` one (``r < n``).

One eigendecomposition of the sample-weighted centred kernel
``K = S^{1/2} X_c X_c^T S^{1/2}`` (``X_c = X - 1 c^T``, ``c`` the sample-weighted
mean, ``S = diag(s)``) gives the basis without forming it:
``Q = X_c^T S^{1/2} U diag(lam)^{-1/2}`` and, for a row with ``s_i > 0``,
``y_i = s_i^{-1/2} U_i diag(lam)^{1/2}``. Its eigenvalues over ``sum s`` are the
nonzero eigenvalues of the sample-weighted feature covariance.

Cost: ``n^2 d`` for the kernel (in the features' dtype: float32 features give a
float32 kernel, as the float32 Gram products of :mod:`lastlayer._core.stats`) and
one ``n x n`` symmetric eigendecomposition in float64. Memory: one shifted copy of
``X`` in its dtype while the kernel is formed, then ``O(n^2)``. No input checks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg

from .stats import block_rows, noise_tol

__all__ = ["RowSpace", "lift", "project", "row_space", "weighted_mean"]


class RowSpace(NamedTuple):
    """An orthonormal basis ``Q = (X - c)^T M`` of the span of the centred rows.

    ``M`` (n, r) is not stored: its row ``i`` is ``s_i y_i / lam`` (zero for rows
    without weight), read off the coordinates a block at a time (:meth:`M_rows`)."""

    X: np.ndarray       # (n, d) the rows (not copied)
    shift: np.ndarray   # (d,) c, float64
    weights: np.ndarray  # (n,) s, float64
    coords: np.ndarray  # (n, r) float64, y_i = Q^T (x_i - c)
    eigenvalues: np.ndarray  # (r,) of the sample-weighted centred kernel, descending

    @property
    def n_features(self):
        return self.X.shape[1]

    def M_rows(self, lo, hi):
        """Rows ``lo:hi`` of ``M``: ``M = S^{1/2} U diag(lam)^{-1/2}`` and, where
        ``s_i > 0``, ``y_i = s_i^{-1/2} U_i diag(lam)^{1/2}``, so ``M_i = s_i y_i / lam``."""
        return self.coords[lo:hi] * (self.weights[lo:hi, None] / self.eigenvalues[None, :])


def weighted_mean(X, s):
    """``sum_i s_i x_i / sum_i s_i`` in float64, reading ``X`` in row blocks."""
    total = np.zeros(X.shape[1])
    step = block_rows(X.shape[0], X.shape[1])
    for lo in range(0, X.shape[0], step):
        total += s[lo:lo + step] @ np.asarray(X[lo:lo + step], dtype=np.float64)
    return total / float(s.sum())


def _kernel(X, c):
    """``(X - c)(X - c)^T`` in float64, the product in ``X``'s dtype (``?syrk``)."""
    Xs = X - c.astype(X.dtype)
    syrk = scipy.linalg.blas.get_blas_funcs("syrk", dtype=Xs.dtype)
    up = syrk(1.0, Xs, trans=0, lower=0)  # upper triangle; the strict lower one is zero
    del Xs
    K = up.astype(np.float64)
    del up
    K += K.T
    K[np.diag_indices_from(K)] *= 0.5
    return K


def row_space(X, s):
    """The span of the rows with positive sample weight, centred at their mean.

    ``X`` (n, d) float32 or float64, ``s`` (n,) non-negative sample weights with a
    positive sum. Directions with kernel eigenvalue at round-off level are dropped
    (:func:`lastlayer._core.stats.noise_tol`), as the dual solver does. Memory: the
    shifted copy of ``X`` while the kernel is formed, then about three ``n x n``
    float64 arrays (the kernel, overwritten by the eigensolver, its eigenvectors and
    the coordinates), and after it the coordinates alone.
    """
    n, d = X.shape
    c = weighted_mean(X, s)
    K = _kernel(X, c)
    pos = s > 0
    K_zero = K[~pos] if not np.all(pos) else None  # kernel rows of zero-weight rows
    sq = np.sqrt(s)
    K *= sq[:, None]
    K *= sq[None, :]
    lam, U = scipy.linalg.eigh(K, check_finite=False, overwrite_a=True)
    del K
    keep = lam > noise_tol(max(n, d), max(float(lam[-1]), 0.0))
    first = int(np.argmax(keep)) if keep.any() else lam.size  # ascending: a suffix
    lam, U = lam[first:][::-1], U[:, first:][:, ::-1]  # views
    coords = U * np.sqrt(lam)[None, :]
    coords[pos] /= sq[pos, None]
    if K_zero is not None:
        coords[~pos] = K_zero @ (U * (sq[:, None] / np.sqrt(lam)[None, :]))  # K_zero M
    return RowSpace(X, c, np.asarray(s, dtype=np.float64), coords, lam)


def lift(space, W_r, b_r):
    """``W = Q W_r`` (d, m) and ``b = b_r - W^T c`` from the coordinates' fit."""
    X, c = space.X, space.shift
    W = np.zeros((X.shape[1], W_r.shape[1]))
    step = block_rows(X.shape[0], X.shape[1])
    for lo in range(0, X.shape[0], step):
        a = space.M_rows(lo, lo + step) @ W_r  # W = (X - c)^T M W_r
        block = np.subtract(X[lo:lo + step], c, dtype=np.float64)  # one float64 block
        W += block.T @ a
    return W, b_r - W.T @ c


def project(space, Z):
    """Coordinates ``Q^T (z - c)`` of other rows ``Z`` (n_z, d) in the basis."""
    X, c = space.X, space.shift
    Zc = np.asarray(Z, dtype=np.float64) - c
    out = np.zeros((Zc.shape[0], space.coords.shape[1]))
    step = block_rows(X.shape[0], X.shape[1])
    for lo in range(0, X.shape[0], step):
        block = np.subtract(X[lo:lo + step], c, dtype=np.float64)
        out += (Zc @ block.T) @ space.M_rows(lo, lo + step)
    return out
