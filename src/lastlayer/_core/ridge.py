"""Weighted ridge kernels: primal from sufficient statistics, dual in the n x n kernel.

Objective and conventions: :mod:`lastlayer.solvers` (module docstring). No input
checks here; :func:`lastlayer.solvers.solve_ridge` and
:func:`lastlayer.solvers.solve_ridge_dual` check and call these.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import scipy.linalg

from .stats import (cell_leverage, centre_stats, fill_lower_from_upper, noise_tol,
                    well_conditioned_cholesky)

__all__ = ["RIDGE_SOLVERS", "RidgeSolution", "Rows", "ridge", "ridge_dual", "row_spectrum",
           "solve_cholesky", "solve_eigh", "weighted_rows"]


class RidgeSolution(NamedTuple):
    """Result of every ridge solver.

    Attributes
    ----------
    coef : ndarray of shape (n_features, n_targets)
        ``W``.
    intercept : ndarray of shape (n_targets,)
        ``b``.
    df : float
        Trace of the weighted hat matrix, intercept included (``d + 1`` ridgeless
        with full-rank centred features).
    cell_leverage : ndarray of shape (n_cells,)
        Sum over the rows of each cell of the leverage ``h_ii``
        (``omega_j tr(A^+ G~_j)``); sums to ``df``.
    solver : str
        The path actually taken: ``"cholesky"``, ``"eigh"`` or ``"dual"``.
    """

    coef: np.ndarray
    intercept: np.ndarray
    df: float
    cell_leverage: np.ndarray
    solver: str


#: Solvers accepted by :func:`solve_ridge`.
RIDGE_SOLVERS = ("auto", "cholesky", "eigh")


def solve_cholesky(cen, alpha):
    """Cholesky of ``C + alpha n I``; None when it fails or is ill-conditioned.
    Works in ``cen.C``'s memory: ``cen.C`` is lost either way."""
    A = cen.C
    A[np.diag_indices_from(A)] += alpha * cen.n
    c = well_conditioned_cholesky(A, cen.tol, overwrite=True)
    if c is None:
        return None
    W = scipy.linalg.cho_solve((c, False), cen.rhs, check_finite=False)
    # the inverse from the factor (dpotri: a third of the flops of solving for I), in
    # the factor's memory, its upper triangle copied onto the lower one in place
    inv, info = scipy.linalg.lapack.dpotri(c, lower=False, overwrite_c=1)
    if info != 0:
        return None
    return W, fill_lower_from_upper(inv)


def solve_eigh(cen, alpha):
    """Spectral solve of ``C + alpha n I`` with a pseudo-inverse (minimum norm)."""
    lam, Q = scipy.linalg.eigh(cen.C, check_finite=False)
    denom = lam + alpha * cen.n
    keep = denom > cen.tol
    g = np.zeros_like(denom)
    g[keep] = 1.0 / denom[keep]
    W = Q @ (g[:, None] * (Q.T @ cen.rhs))
    B = (Q * g) @ Q.T
    return W, B


RIDGE_PATHS = {"cholesky": solve_cholesky, "eigh": solve_eigh}


def ridge(stats, omega, alpha, T, solver="auto"):
    """:func:`lastlayer.solvers.solve_ridge` without the checks."""
    cen = centre_stats(stats, omega, T)
    used = "cholesky" if solver == "auto" else solver
    out = RIDGE_PATHS[used](cen, alpha)  # Cholesky overwrites cen.C (one d x d less)
    if out is None:
        cen = centre_stats(stats, omega, T)
        if solver == "cholesky":
            warnings.warn(
                "Cholesky factorisation failed or is ill-conditioned (alpha="
                f"{alpha:g}); fell back to the 'eigh' solver (minimum-norm solution).",
                UserWarning,
                stacklevel=3,
            )
        used = "eigh"
        out = solve_eigh(cen, alpha)
    W, B = out
    b = cen.tbar - W.T @ cen.mu
    lev = cell_leverage(stats, omega, cen, B)
    return RidgeSolution(W, b, float(lev.sum()), lev, used)


class Rows(NamedTuple):
    Z: np.ndarray  # (n_active, d) sqrt(v)-weighted centred features
    Tt: np.ndarray  # (n_active, m) sqrt(v)-weighted centred targets
    v: np.ndarray  # (n_active,)
    cells: np.ndarray  # (n_active,)
    active: np.ndarray  # (n,) bool, v > 0
    mu: np.ndarray
    tbar: np.ndarray
    V: float
    n: float
    X: np.ndarray
    T: np.ndarray  # (n, m) target of every row


def weighted_rows(X, cells, omega, T, s):
    """Centred, sqrt(weight)-scaled rows of the ridge problem (checked inputs)."""
    v_all = s * omega[cells]
    V = float(v_all.sum())
    if not V > 0:
        raise ValueError(
            "The 'cell_weights' parameter must give a positive total weight "
            "sum_i s_i omega_{c(i)}. Got 0 instead."
        )
    active = v_all > 0
    Trow = T[cells]
    mu = (v_all @ X) / V
    tbar = (v_all @ Trow) / V
    v = v_all[active]
    sq = np.sqrt(v)[:, None]
    Z = sq * (X[active] - mu)
    Tt = sq * (Trow[active] - tbar)
    return Rows(Z, Tt, v, cells[active], active, mu, tbar, V, float(s.sum()), X, Trow)


def row_spectrum(rows, gram=None):
    """Orthonormal ``U`` (n_active, r) and eigenvalues ``lam`` (r,) of ``Z Z^T``.

    One eigendecomposition: of the d x d Gram ``Z^T Z`` when ``d <= n_active``
    (then ``U = Z Q / sqrt(lam)``; ``gram`` passes ``Z^T Z`` when it is known,
    e.g. from sufficient statistics), else of the kernel ``Z Z^T``. Numerically
    zero eigenvalues are dropped.
    """
    Z = rows.Z
    na, d = Z.shape
    if d <= na:
        lam, Q = scipy.linalg.eigh(Z.T @ Z if gram is None else gram, check_finite=False)
        keep = lam > noise_tol(max(na, d), max(lam[-1], 0.0))
        lam = lam[keep]
        U = (Z @ Q[:, keep]) / np.sqrt(lam)
    else:
        lam, U = scipy.linalg.eigh(Z @ Z.T, check_finite=False)
        keep = lam > noise_tol(max(na, d), max(lam[-1], 0.0))
        lam, U = lam[keep], U[:, keep]
    return U, lam


def ridge_dual(rows, n_cells, alpha):
    """:func:`lastlayer.solvers.solve_ridge_dual` on :func:`weighted_rows` output."""
    J = n_cells
    lam, U = scipy.linalg.eigh(rows.Z @ rows.Z.T, check_finite=False)
    # directions with lam = 0 satisfy Z^T u = 0: they change neither W nor h
    keep = lam > noise_tol(max(rows.Z.shape), max(lam[-1], 0.0))
    lam, U = lam[keep], U[:, keep]
    denom = lam + alpha * rows.n
    dual = U @ ((U.T @ rows.Tt) / denom[:, None])
    W = rows.Z.T @ dual
    b = rows.tbar - W.T @ rows.mu
    h = rows.v / rows.V + (U**2) @ (lam / denom)
    lev = np.bincount(rows.cells, weights=h, minlength=J)
    return RidgeSolution(W, b, float(lev.sum()), lev, "dual")
