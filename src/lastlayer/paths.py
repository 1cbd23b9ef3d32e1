"""Weight paths and ridge paths from sufficient statistics, without another data pass.

Every function here works on the per-cell statistics of
:func:`lastlayer.solvers.sufficient_statistics` and solves the objective of
:func:`lastlayer.solvers.solve_ridge`,

.. math::

    \\min_{W, b}\\; \\frac{1}{n} \\sum_i s_i \\, \\omega_{c(i)}
        \\lVert T_{c(i)} - W^\\top x_i - b \\rVert^2 + \\alpha \\lVert W \\rVert_F^2,
    \\qquad n = \\sum_i s_i,

with an unpenalised intercept, for many values of one parameter after a single
``O(d^3)`` factorisation:

:class:`TwoUnitWeightPath`
    The loss-weight ratio ``rho = omega_1 / omega_0`` between two weighting units
    (two classes, or two groups), weights at mean one over samples. One generalised
    symmetric eigendecomposition makes every ``rho`` cost ``O(d)`` for the per-unit
    leverage sums (the quantities the optimal weighting of docs/theory.md section 4
    equalises) and ``O(d^2 m)`` for the coefficients.
:func:`alpha_path`
    The ridge strength: one eigendecomposition of the weighted centred Gram matrix,
    then coefficients, degrees of freedom and generalised cross-validation (GCV)
    for every alpha, all from the statistics (a stats-only alpha criterion for
    data that does not fit in memory; the exact leave-one-out error needs one more
    pass over the rows, :func:`lastlayer.outofcore.streaming_loo_path`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.optimize import brentq

from ._core.loo import argmin_prefer_last, gcv_path, loo_from_fit
from ._core.ridge import RidgeSolution
from ._core.stats import (
    EPS,
    block_rows,
    cell_squares,
    noise_tol,
    pack_lower,
    packed_matrix,
    symmetric_update,
    weighted_gram,
    well_conditioned_cholesky,
)
from ._validation import (
    check_alphas,
    check_cell_rows,
    check_cell_targets,
    check_cell_weights,
    check_probability_vector,
    check_real,
    check_rhos,
    check_stats,
    check_unit_of_cell,
)
from .solvers import DEFAULT_RIDGE_ALPHAS
from .theory import water_fill_leverage

__all__ = ["TwoUnitWeightPath", "alpha_path", "select_alpha_gcv"]



# --------------------------------------------------------------------------------------
# Two-unit weight path
# --------------------------------------------------------------------------------------

#: Above this many bytes of divide and conquer's ``2 p^2`` workspace (the size of a pass
#: over the rows' workspace, :data:`lastlayer._core.stats.WORK_ELEMS`), the two-unit
#: path's eigensolver is MRRR with its Cholesky factor made anew after it (``2 p^2``
#: floats at most instead of ``3.5 p^2``, about 4% of a 5,000 x 2,048 default fit
#: more); below it, divide and conquer (faster: 0.13 s against MRRR's 0.19 s on a
#: path's matrix at p = 1,000, 0.97 s against 1.24 s at p = 2,049; one thread, a
#: one-off timing described in docs/performance.md, "Sixth round").
LEAN_EIGEN_BYTES = 2**24


def _unit_gram(stats, sel, shift, out=None):
    """The Gram matrix of the rows of the cells ``sel``, shifted by ``shift`` (a new
    array, or written into ``out``, e.g. the corner of an augmented matrix)."""
    Gc = weighted_gram(stats, sel.astype(np.float64), out=out)  # symmetric, not shifted
    # G - s shift^T - shift s^T + N shift shift^T = G - (u shift^T + shift u^T),
    # u = s - N shift / 2: one rank-2 update in place (no d x d temporary)
    u = stats.sums[sel].sum(axis=0) - 0.5 * stats.weight_sums[sel].sum() * shift
    return symmetric_update(Gc, -1.0, u, shift)


def _unit_moments(stats, unit, T, shift):
    """Sums of the rows shifted by ``shift`` per unit, and the right-hand sides
    ``P_u = sum_{j in u} [m_j - N_j shift; N_j] T_j^T``."""
    N = stats.weight_sums
    sums_c = stats.sums - N[:, None] * shift  # (J, d) shifted first moments
    sums_u = [sums_c[unit == u].sum(axis=0) for u in (0, 1)]
    rhs_u = [
        np.vstack([sums_c[unit == u].T @ T[unit == u], (N[unit == u] @ T[unit == u])[None, :]])
        for u in (0, 1)
    ]
    return sums_u, rhs_u


def _augmented_unit(stats, sel, shift, sums, count):
    """:func:`_augmented` of :func:`_unit_gram`, the Gram matrix written straight into
    the ``(p, p)`` array (packed statistics: no ``d x d`` temporary beside it)."""
    d = stats.n_features
    Gt = np.empty((d + 1, d + 1))
    _unit_gram(stats, sel, shift, out=Gt[:-1, :-1])
    return _border(Gt, sums, count)


def _augmented(gram, sums, count):
    """``[[G, s], [s^T, N]]``, written into a new ``(p, p)`` array."""
    p = gram.shape[0] + 1
    Gt = np.empty((p, p))
    Gt[:-1, :-1] = gram
    return _border(Gt, sums, count)


def _border(Gt, sums, count):
    """The last row and column of the augmented ``Gt``: ``[s; N]``."""
    Gt[:-1, -1] = Gt[-1, :-1] = sums
    Gt[-1, -1] = count
    return Gt


def _row_span(C_tot, d, n_rows, alpha):
    """Orthonormal basis of the span of the centred rows when it is not all of R^d
    (fewer rows than d + 1, or ridgeless with collinear features), else None."""
    if not (d + 1 > n_rows or (alpha == 0.0 and well_conditioned_cholesky(C_tot) is None)):
        return None
    lam_c, Q = scipy.linalg.eigh(C_tot, check_finite=False)
    scale = max(float(lam_c[-1]), float(np.abs(np.diag(C_tot)).max()), 0.0)
    keep = lam_c > noise_tol(max(d, n_rows), scale)
    if not np.any(keep):
        raise ValueError("Every feature is constant over the rows: there is nothing to fit.")
    return Q[:, keep]


def _generalised_eigh(aug, alpha, n_u, total=None):
    """``B_1 V = (B_0 + B_1) V diag(lam)`` with ``B_u = G~_u + alpha n_u R``.

    ``aug`` (the two augmented unit Grams) is overwritten and let go. The reduction to
    a standard problem is done here in place (Cholesky ``S = U^T U``,
    ``C = U^{-T} B_1 U^{-1}`` in ``aug[1]``'s memory, then ``V = U^{-1} Z``), where
    scipy's ``eigh(a, b)`` also allocates the eigenvectors and a scaled copy of them.

    Without ``total``: divide and conquer with the eigenvectors ``Z`` written over
    ``C`` and ``U`` kept packed meanwhile, ``3.5 p^2`` floats at most (``C``, the
    eigensolver's ``2 p^2`` workspace, half of ``U``). ``total``: a callable that
    builds ``G~_0 + G~_1`` again; then MRRR (``O(p)`` workspace, ``Z`` beside ``C``,
    about 1.3x the time) and ``U`` not kept but factored anew afterwards: ``2 p^2``
    at most, for one more ``p^3 / 3`` Cholesky (the factor then differs from the
    first in the last bits, as ``V``'s rounding does)."""
    p = aug[0].shape[0]
    diag = np.arange(p - 1), np.arange(p - 1)  # R: the identity but the intercept
    B1 = aug[1]
    B1[diag] += alpha * n_u[1]
    S = aug[0]
    S[diag] += alpha * n_u[0]
    S += B1
    dsc = 1.0 / np.sqrt(np.diag(S))  # Jacobi scaling: same V, better conditioned
    for M in (B1, S):
        M *= dsc[:, None]
        M *= dsc[None, :]
    # the transposes are Fortran-ordered, so LAPACK works in their memory (C-ordered
    # arrays would be copied first); the upper triangle of the transpose is the lower
    # triangle of the array, the one filled above
    U = _scaled_factor(S)
    C, info = scipy.linalg.lapack.dsygst(B1.T, U, itype=1, lower=0, overwrite_a=1)
    # while the eigenvectors are made, the factor is kept packed, half of S's memory
    # (or not at all: total): U is Fortran-ordered, so its upper triangle is the lower
    # triangle of the C-ordered U.T
    Up = None if total is not None else pack_lower(U.T, np.empty(p * (p + 1) // 2))
    aug[0] = aug[1] = None
    del S, U, M, B1  # M: the scaling loop's last matrix, S
    if total is None:
        # divide and conquer, the eigenvectors written over C: faster than MRRR on this
        # spectrum (eigenvalues in [0, 1], clustered at the ends)
        lam, Z, info = scipy.linalg.lapack.dsyevd(C, compute_v=1, lower=0, overwrite_a=1)
    else:
        # MRRR: its workspace is O(p) where divide and conquer's is 2 p^2 (which is
        # 1.3x faster at p = 2,049: 0.97 s against 1.24 s)
        lam, Z, _, _, info = scipy.linalg.lapack.dsyevr(C, compute_v=1, lower=0,
                                                        overwrite_a=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"the eigensolver failed (info={info})")
    if Up is not None:
        del C  # divide and conquer wrote Z over it
        U = packed_matrix(Up, p).T  # Fortran-ordered, the same upper triangle dtrsm reads
        del Up
    else:
        del C
        S = total()
        S[diag] += alpha * (n_u[0] + n_u[1])
        S *= dsc[:, None]
        S *= dsc[None, :]
        U = _scaled_factor(S)
        del S
    Vs = scipy.linalg.blas.dtrsm(1.0, U, Z, side=0, lower=0, trans_a=0, diag=0,
                                 overwrite_b=1)
    Vs *= dsc[:, None]
    return lam, Vs


def _scaled_factor(S):
    """The upper Cholesky factor of C-ordered symmetric ``S`` in ``S``'s memory
    (Fortran-ordered; its strict lower triangle is left as it was)."""
    U, info = scipy.linalg.lapack.dpotrf(S.T, lower=0, clean=0, overwrite_a=1)
    if info != 0:
        raise ValueError(
            "The equally weighted problem is singular (the weighted Gram matrix of "
            "the augmented features is not positive definite); use alpha > 0.")
    return U


def _gains(lam, rhos):
    """``1 / (1 + (rho - 1) lam)`` of shape (n_rhos, p) for the path's eigenvalues."""
    return 1.0 / (1.0 + (np.asarray(rhos)[:, None] - 1.0) * lam[None, :])


def _unit_leverage(lam, E, rho):
    """``(L, df)`` of :meth:`TwoUnitWeightPath.leverage` from the path's eigenvalues
    ``lam`` and ``E = diag(V^T G~_u V)`` (2, p)."""
    g = _gains(lam, [rho])[0]
    L = np.array([g @ E[0], rho * (g @ E[1])])
    return L, float(L.sum())


class TwoUnitWeightPath:
    """Ridge fits along the weight ratio between two units, from one factorisation.

    The cells (classes, or (class, group) pairs) are split into two weighting units
    ``u = 0, 1``. For a ratio ``rho > 0`` the cells of unit 0 get weight ``c`` and
    those of unit 1 get ``c rho``, with ``c = n / (n_0 + rho n_1)`` (``n_u`` the sum
    of sample weights in unit ``u``), so that the mean weight over samples is one
    (:func:`lastlayer.weights.normalise_weights`). The fit minimises

    .. math::

        \\frac{1}{n} \\sum_i s_i \\, \\omega_{u(i)}(\\rho)
            \\lVert T_{c(i)} - W^\\top x_i - b \\rVert^2 + \\alpha \\lVert W \\rVert_F^2,
        \\qquad \\omega(\\rho) = c(\\rho)\\,(1, \\rho),

    exactly as :func:`lastlayer.solvers.solve_ridge` with those cell weights.

    Method
    ------
    In augmented coordinates ``x~ = [x - m, 1]`` (``m`` the overall mean, a shift
    that changes nothing but the conditioning) the normal matrix is
    ``A(rho) = c [B_0 + rho B_1]`` with ``B_u = G~_u + alpha n_u R`` (``G~_u`` the
    augmented Gram of unit ``u``, ``R`` the identity with a zero for the intercept),
    and the right-hand side is ``c [P_0 + rho P_1]``: the factor ``c`` cancels. One
    generalised symmetric eigendecomposition ``B_1 V = (B_0 + B_1) V diag(lam)``,
    ``V^T (B_0 + B_1) V = I``, ``lam`` in ``[0, 1]``, gives

    .. math::

        (B_0 + \\rho B_1)^{-1} = V \\operatorname{diag}\\big(1 / (1 + (\\rho - 1)
            \\lambda)\\big) V^\\top ,

    well defined for every ``rho > 0`` whenever the equally weighted problem is
    (``B_0 + B_1`` positive definite) -- even when one unit alone is singular
    (``alpha = 0`` with fewer than ``d + 1`` rows in it). The per-unit leverage sums
    ``L_u = omega_u tr(A^{-1} G~_u)`` then cost ``O(d)`` per ``rho`` through the
    precomputed ``diag(V^T G~_u V)`` (``lam - alpha n_1 diag(V^T R V)`` for unit 1),
    and the coefficients ``O(d^2 m)``.

    When the features are rank-deficient (``d + 1`` above the number of rows, or
    collinear columns) the problem is first restricted to the span of the centred
    rows; this is exact (the ridge solution and the hat matrix live there) and,
    with ``alpha = 0``, gives the minimum-norm ``W`` of :func:`solve_ridge`.

    Parameters
    ----------
    stats : SufficientStats
        Per-cell statistics (:func:`lastlayer.solvers.sufficient_statistics`).
    unit_of_cell : array-like of int of shape (n_cells,)
        Unit (0 or 1) of each cell; both units need positive sample weight.
    cell_targets : array-like of shape (n_cells, n_targets) or (n_cells,)
        Target row ``T_j`` of each cell.
    alpha : float
        Ridge strength in ``[0, inf)`` of the (1/n)-scaled objective.

    Attributes
    ----------
    unit_counts : ndarray of shape (2,)
        ``n_u``.
    eigenvalues : ndarray of shape (p,)
        ``lam`` (``p = d + 1``, or rank + 1 after the restriction).
    reduced : bool
        Whether the problem was restricted to the span of the centred rows.

    Notes
    -----
    Cost: ``O(J d^2 + d^3)`` once (the shifted unit statistics and one generalised
    eigendecomposition), then ``O(d)`` per ``rho`` for :meth:`leverage`,
    ``O(d^2 m)`` for :meth:`solve`. The per-cell leverages of :meth:`solve` need
    ``diag(V^T G~_j V)`` for every cell, computed once on first use
    (``O(J d^3)``; free when every unit is a single cell).
    """

    def __init__(self, stats, unit_of_cell, cell_targets, alpha):
        stats = check_stats(stats)
        J, d = stats.n_cells, stats.n_features
        self._unit = check_unit_of_cell(unit_of_cell, J)
        T = check_cell_targets(cell_targets, J)
        self.alpha = check_real(alpha, "alpha", low=0)
        N = stats.weight_sums
        n_u = np.bincount(self._unit, weights=N, minlength=2)
        if np.any(n_u <= 0):
            raise ValueError(
                "The 'unit_of_cell' parameter must give both units a positive sum of "
                f"sample weights. Got unit sums {n_u.tolist()!r} instead."
            )
        self.unit_counts = n_u
        self.n = float(n_u.sum())
        self._stats, self._T = stats, T
        self._d, self._m = d, T.shape[1]

        # Shift to the overall (sample-weighted) mean: better conditioned, exact.
        shift = stats.sums.sum(axis=0) / self.n
        self._shift = shift
        sums_u, rhs_u = _unit_moments(stats, self._unit, T, shift)
        n_rows = int(stats.n_rows.sum())
        basis = grams_u = None
        if d + 1 > n_rows or self.alpha == 0.0:  # the rows may not span R^d
            grams_u = [_unit_gram(stats, self._unit == u, shift) for u in (0, 1)]
            basis = _row_span(grams_u[0] + grams_u[1], d, n_rows, self.alpha)
        if basis is not None:
            grams_u = [basis.T @ G @ basis for G in grams_u]
            sums_u = [basis.T @ s for s in sums_u]
            rhs_u = [np.vstack([basis.T @ P[:-1], P[-1:]]) for P in rhs_u]
        total = None
        if grams_u is not None:
            aug = [_augmented(grams_u[u], sums_u[u], n_u[u]) for u in (0, 1)]
            del grams_u
        else:  # each unit's Gram written into its augmented matrix
            aug = [_augmented_unit(stats, self._unit == u, shift, sums_u[u], n_u[u])
                   for u in (0, 1)]

            if 16 * (d + 1) ** 2 > LEAN_EIGEN_BYTES:
                def total():  # both units' augmented Gram, for the factor after MRRR
                    return _augmented_unit(stats, np.ones(J, dtype=bool), shift,
                                           sums_u[0] + sums_u[1], self.n)
        self.reduced = basis is not None
        self._basis = basis
        self._r = aug[0].shape[0] - 1
        lam, V = _generalised_eigh(aug, self.alpha, n_u, total)  # overwrites aug
        del aug
        self.eigenvalues = np.clip(lam, 0.0, 1.0)
        self._V = V
        self._Y = [V.T @ P for P in rhs_u]  # (p, m) each
        rdiag = np.einsum("ik,ik->k", V[:-1], V[:-1])  # diag(V^T R V)
        # diag(V^T G~_u V) from V^T B_1 V = diag(lam), V^T B_0 V = I - diag(lam)
        self._E = np.vstack([
            (1.0 - self.eigenvalues) - self.alpha * n_u[0] * rdiag,
            self.eigenvalues - self.alpha * n_u[1] * rdiag,
        ])
        self._cell_diag = None

    # ------------------------------------------------------------------ helpers
    def _check_rho(self, rho):
        return check_real(rho, "rho", low=0, closed="neither")

    def unit_weights(self, rho):
        """Loss weights ``c (1, rho)`` of the two units, mean one over samples."""
        rho = self._check_rho(rho)
        c = self.n / (self.unit_counts[0] + rho * self.unit_counts[1])
        return np.array([c, c * rho])

    def cell_weights(self, rho):
        """Loss weight of every cell at ratio ``rho`` (for :func:`solve_ridge`)."""
        return self.unit_weights(rho)[self._unit]

    def _cell_diagonals(self):
        if self._cell_diag is None:
            if np.array_equal(np.bincount(self._unit, minlength=2), [1, 1]):
                D = self._E[self._unit]
            else:
                # diag(V^T G~_j V) of the cells' augmented Gram matrices
                # [[B^T G^c_j B, B^T s_j], [s_j^T B, N_j]] (B the basis, if any)
                Q = self._V[:-1] if self._basis is None else self._basis @ self._V[:-1]
                D = cell_squares(self._stats, self._shift, Q, self._V[-1])
            self._cell_diag = D
        return self._cell_diag

    # ------------------------------------------------------------------ public
    def leverage(self, rho):
        """Per-unit sums of the weighted leverages and their total at ratio ``rho``.

        Returns
        -------
        unit_leverage : ndarray of shape (2,)
            ``L_u = omega_u tr(A^{-1} G~_u)``, the sum of the hat-matrix diagonal
            over the rows of unit ``u`` (equal to the sums of
            ``solve_ridge(...).cell_leverage`` over the unit's cells).
        df : float
            ``L_0 + L_1``, the trace of the hat matrix (intercept included).
        """
        return _unit_leverage(self.eigenvalues, self._E, self._check_rho(rho))

    def solve(self, rho):
        """The ridge fit at ratio ``rho``, as :func:`lastlayer.solvers.solve_ridge`.

        Returns
        -------
        RidgeSolution
            ``coef`` (d, m), ``intercept`` (m,), ``df``, ``cell_leverage`` (J,) and
            ``solver="two_unit_path"``.
        """
        rho = self._check_rho(rho)
        g = _gains(self.eigenvalues, [rho])[0]
        theta = self._V @ (g[:, None] * (self._Y[0] + rho * self._Y[1]))
        W, b = self._unshift(theta)
        lev = np.where(self._unit == 1, rho, 1.0) * (self._cell_diagonals() @ g)
        return RidgeSolution(W, b, float(lev.sum()), lev, "two_unit_path")

    def loo_decisions(self, X, cells, sample_weight, rho, dtype=np.float64):
        """Exact leave-one-out decisions ``t_i - e_i / (1 - h_ii)`` (n, m) of the fit
        at ratio ``rho`` (the quantity of :func:`lastlayer._core.loo.loo_decisions`)
        from this path's factorisation: no other eigendecomposition.

        ``X`` (n, d) are the rows the statistics came from (in blocks, projected in
        ``dtype``), ``cells`` their cells, ``sample_weight`` their sample weights.
        With ``A(rho)^{-1} = V diag(g) V^T / c`` (class docstring), row ``i`` of
        unit ``u`` has ``h_ii = s_i (1 or rho) sum_k (V^T x~_i)_k^2 g_k``. Rows without
        weight get the fit; rows with ``h_ii`` numerically one get ``inf``.
        Cost ``O(n d p)``.
        """
        rho = self._check_rho(rho)
        X, cells, sample_weight = check_cell_rows(X, cells, sample_weight, self._d,
                                                  self._unit.size)
        g = _gains(self.eigenvalues, [rho])[0]
        theta = self._V @ (g[:, None] * (self._Y[0] + rho * self._Y[1]))  # (p, m)
        # the fit's and the projections' coefficients on the rows, in dtype (V itself,
        # no copy, for float64 rows without a basis)
        if self._basis is not None:  # rows -> coordinates of the span, then augmented
            T_x = (self._basis @ theta[:-1]).astype(dtype, copy=False)
            V_x = (self._basis @ self._V[:-1]).astype(dtype, copy=False)
        else:
            T_x = theta[:-1].astype(dtype, copy=False)
            V_x = self._V[:-1].astype(dtype, copy=False)
        shift = self._shift.astype(dtype)
        rel = np.where(self._unit == 1, rho, 1.0)  # omega_u / c per cell
        out = np.empty((X.shape[0], self._m))
        step = block_rows(X.shape[0], X.shape[1])
        for lo in range(0, X.shape[0], step):
            hi = min(lo + step, X.shape[0])
            Xs = np.subtract(np.asarray(X[lo:hi]), shift, dtype=dtype)
            fit = np.asarray(Xs @ T_x, dtype=np.float64)
            fit += theta[-1]  # the intercept row, in float64
            Z = np.asarray(Xs @ V_x, dtype=np.float64)
            del Xs
            Z += self._V[-1]
            Z *= Z  # in place: the projections are not needed again
            c = cells[lo:hi]
            v = sample_weight[lo:hi] * rel[c]
            out[lo:hi] = loo_from_fit(self._T[c], fit, v * (Z @ g), v)
        return out

    def _unshift(self, theta):
        """``W, b`` from augmented ``theta`` of shape (p, m), or (p, L, m) for a path."""
        W = theta[:-1]
        if self._basis is not None:
            W = np.tensordot(self._basis, W, axes=1)
        b = theta[-1] - np.tensordot(self._shift, W, axes=1)
        return W, b

    def path(self, rhos, *, return_coef=False):
        """Degrees of freedom, leverage shares (and coefficients) along ``rhos``.

        Parameters
        ----------
        rhos : array-like of shape (n_rhos,)
            Positive weight ratios ``omega_1 / omega_0``.
        return_coef : bool, default=False
            Also return the coefficients (``O(n_rhos d^2 m)`` time,
            ``n_rhos d m`` memory).

        Returns
        -------
        dict
            ``"rhos"`` (L,); ``"unit_weights"`` (L, 2) at mean one over samples;
            ``"unit_leverage"`` (L, 2) the sums ``L_u``; ``"df"`` (L,);
            ``"shares"`` (L, 2) ``L_u / df``; ``"average_leverage"`` (L, 2)
            ``L_u / n_u``; with ``return_coef`` also ``"coef"`` (L, d, m) and
            ``"intercept"`` (L, m).
        """
        rhos = check_rhos(rhos)
        G = _gains(self.eigenvalues, rhos)
        L = np.column_stack([G @ self._E[0], rhos * (G @ self._E[1])])
        df = L.sum(axis=1)
        c = self.n / (self.unit_counts[0] + rhos * self.unit_counts[1])
        out = {
            "rhos": rhos,
            "unit_weights": np.column_stack([c, c * rhos]),
            "unit_leverage": L,
            "df": df,
            "shares": L / df[:, None],
            "average_leverage": L / self.unit_counts[None, :],
        }
        if return_coef:
            # theta_k = V diag(g_k) (Y_0 + rho_k Y_1) for every k: one (p, p) x (p, L m)
            # product instead of L matrix-vector products
            Y0, Y1 = self._Y[0][:, None, :], self._Y[1][:, None, :]
            Z = G.T[:, :, None] * (Y0 + rhos[None, :, None] * Y1)  # (p, L, m)
            W, b = self._unshift(np.tensordot(self._V, Z, axes=1))
            out["coef"] = np.ascontiguousarray(W.transpose(1, 0, 2))  # (L, d, m)
            out["intercept"] = b
        return out

    def equal_share_ratio(self, target=(0.5, 0.5), max_leverage=0.95, *, return_info=False):
        """Weight ratio giving each unit its target share of the degrees of freedom.

        Solves ``L_u(rho) = p*_u df(rho)`` (docs/theory.md section 4: equal shares <=>
        equal errors) by root-finding in ``log rho``; the unit-1 share is
        increasing in ``rho``, from 0 (``rho -> 0``) to its largest value
        (``rho -> inf``). Capping follows :func:`lastlayer.weights.weighting_optimal`
        (the same fixed point, found directly): the target average leverages are
        ``water_fill_leverage(n_u, p*, df(rho), max_leverage)``, so when equal
        shares would need a unit's average leverage above ``max_leverage`` (or no
        finite ratio gives them), that unit is held at ``max_leverage`` and the other
        carries the rest of the df.

        Parameters
        ----------
        target : array-like of shape (2,), default=(0.5, 0.5)
            Target shares ``p*`` (normalised to sum to one; both positive).
        max_leverage : float in (0, 1), default=0.95
            Largest average leverage a unit may be given.
        return_info : bool, default=False
            Also return a dict of diagnostics.

        Returns
        -------
        rho : float
            The ratio ``omega_1 / omega_0``; the weights are
            :meth:`unit_weights` ``(rho)``.
        feasible : bool
            False when no finite weights give the shares (``n_u <= df p*_u`` for a
            unit, the criterion of ``weighting_optimal``).
        info : dict, only with ``return_info``
            ``"unit_weights"``, ``"unit_leverage"``, ``"df"``, ``"shares"``,
            ``"capped"`` (a unit held at ``max_leverage``), ``"target_leverage"``.
        """
        p = check_probability_vector(target, "target", size=2)
        if np.any(p <= 0):
            raise ValueError(
                "The 'target' parameter must give both units a positive share. Got "
                f"{p.tolist()!r} instead.")
        cap = check_real(max_leverage, "max_leverage", 0.0, 1.0, closed="neither")
        n_u = self.unit_counts

        lam, E = self.eigenvalues, self._E

        # not a closure over self: scipy's root finders keep the function in a
        # reference cycle, which would hold this path's p x p arrays until the next
        # garbage collection
        def excess(t):  # increasing in t = log rho; zero at the water-filled target
            L, df = _unit_leverage(lam, E, float(np.exp(t)))
            a = water_fill_leverage(n_u, p, df, cap)
            return L[1] - n_u[1] * a[1]

        t0 = float(np.log(n_u[0] * p[1] / (n_u[1] * p[0])))  # ratio of priors
        _, df0 = self.leverage(float(np.exp(t0)))
        if df0 >= (1.0 - 1e-9) * float(self._stats.n_rows.sum()):
            # Interpolation (every leverage one): the weights change nothing; keep
            # the ratio of priors.
            t = t0
        else:
            lo, hi = t0 - 1.0, t0 + 1.0
            f_lo, f_hi = excess(lo), excess(hi)
            limit = 80.0  # |log rho| <= 80: rho in [1e-35, 1e35]
            while f_lo > 0 and lo > -limit:
                lo -= 2.0 * (hi - lo)
                f_lo = excess(lo)
            while f_hi < 0 and hi < limit:
                hi += 2.0 * (hi - lo)
                f_hi = excess(hi)
            if f_lo > 0:
                t = lo
            elif f_hi < 0:
                t = hi
            else:
                t = brentq(excess, lo, hi, xtol=1e-12, rtol=4 * EPS, maxiter=500)
        rho = float(np.exp(t))
        L, df = self.leverage(rho)
        feasible = bool(np.all(n_u > df * p))
        if not return_info:
            return rho, feasible
        a = water_fill_leverage(n_u, p, df, cap)
        info = {
            "unit_weights": self.unit_weights(rho),
            "unit_leverage": L,
            "df": df,
            "shares": L / df,
            "target_leverage": a,
            "capped": bool(np.any(np.isclose(a, cap))),
        }
        return rho, feasible, info


# --------------------------------------------------------------------------------------
# Alpha path with GCV
# --------------------------------------------------------------------------------------


def alpha_path(stats, cell_weights, cell_targets, alphas, *, return_coef=True,
               return_cell_leverage=False):
    """Ridge coefficients, degrees of freedom and GCV for many alphas, from statistics.

    For the objective of :func:`lastlayer.solvers.solve_ridge` with fixed cell
    weights, one eigendecomposition ``C = Q diag(lam) Q^T`` of the weighted centred
    Gram matrix gives, for every alpha, ``W = Q diag(1 / (lam + alpha n)) Q^T r``
    (``r`` the weighted centred cross-moment; eigenvalues with
    ``lam + alpha n`` at the round-off level are pseudo-inverted to zero, i.e. the
    minimum-norm ``W``, as ``solve_ridge(..., solver="eigh")``), the intercept
    ``b = tbar - W^T mu``, the trace of the weighted hat matrix
    ``df = 1 + sum_k lam_k / (lam_k + alpha n)`` and the weighted residual sum of
    squares expanded with the Gram matrices,

    .. math::

        \\mathrm{RSS} = \\sum_i v_i \\lVert t_i - W^\\top x_i - b \\rVert^2
          = \\sum_i v_i \\lVert t_i - \\bar t \\rVert^2
            - \\sum_k g_k (2 - \\lambda_k g_k) \\lVert (Q^\\top r)_k \\rVert^2,
        \\qquad g_k = 1 / (\\lambda_k + \\alpha n),

    (``v_i = s_i omega_{c(i)}``, ``V = sum_i v_i``), hence generalised
    cross-validation

    .. math::

        \\mathrm{GCV}(\\alpha) = \\frac{\\mathrm{RSS} / V}
            {(1 - \\mathrm{df} / n_{\\mathrm{fit}})^2},

    with ``n_fit`` the sum of the sample weights of the rows that carry weight
    (the number of such rows without sample weights). This is GCV of the
    symmetric weighted hat matrix ``H = D^{1/2} X~ A^{-1} X~^T D^{1/2}``: the
    weighted mean squared residual over ``(1 - tr(H) / n)^2``, the rotation-invariant
    approximation of the exact leave-one-out error of
    :func:`lastlayer.solvers.ridge_loo_path`, needing no pass over the rows.

    Parameters
    ----------
    stats : SufficientStats
    cell_weights : array-like of shape (n_cells,)
        Loss weights ``omega_j >= 0``.
    cell_targets : array-like of shape (n_cells, n_targets) or (n_cells,)
    alphas : array-like of shape (n_alphas,)
        Non-negative ridge strengths.
    return_coef : bool, default=True
        Return ``"coef"`` (n_alphas, d, m) and ``"intercept"`` (n_alphas, m).
    return_cell_leverage : bool, default=False
        Return ``"cell_leverage"`` (n_alphas, J), as ``solve_ridge`` (costs
        ``O(J d^3)`` once).

    Returns
    -------
    dict
        ``"alphas"``, ``"df"``, ``"mse"`` (weighted mean squared training residual
        ``RSS / V``), ``"gcv"`` (``inf`` where ``df >= n_fit``), ``"n_fit"`` and the
        optional arrays above. Arrays are in the order of ``alphas``.

    Notes
    -----
    Cost ``O(J d^2 + d^3)`` once plus ``O(d m)`` per alpha (``O(d^2 m)`` with the
    coefficients). The RSS is a difference of Gram-matrix quantities: its relative
    accuracy is about ``eps * TSS / RSS`` (plus the centring loss described in
    :func:`lastlayer.solvers.sufficient_statistics`), ample unless the fit is
    nearly perfect.
    """
    stats = check_stats(stats)
    omega = check_cell_weights(cell_weights, stats.n_cells)
    T = check_cell_targets(cell_targets, stats.n_cells)
    alphas = check_alphas(alphas)
    return gcv_path(stats, omega, T, alphas, return_coef, return_cell_leverage)


def select_alpha_gcv(stats, cell_weights, cell_targets, alphas=None):
    """Ridge strength minimising GCV, from the statistics alone (no pass over rows).

    Evaluates :func:`alpha_path` on ``alphas`` (default ``np.logspace(-6, 2, 41)``,
    as :func:`lastlayer.solvers.select_alpha_loo`) and returns the minimiser of
    ``"gcv"``; ties go to the larger alpha.

    Returns
    -------
    best_alpha : float
    path : dict
        The output of :func:`alpha_path` (without coefficients) plus
        ``"best_index"``.
    """
    alphas = DEFAULT_RIDGE_ALPHAS.copy() if alphas is None else alphas
    path = alpha_path(stats, cell_weights, cell_targets, alphas, return_coef=False)
    best = argmin_prefer_last(path["gcv"], path["alphas"])
    path["best_index"] = best
    return float(path["alphas"][best]), path
