"""Leave-one-out and GCV along an alpha path: one block kernel for every data source.

For the ridge of :mod:`lastlayer.solvers` with fixed cell weights, the exact
leave-one-out residual of row ``i`` is ``e_i / (1 - h_ii)``. With the rows projected
on the eigenvectors of the weighted centred Gram (or kernel), ``h_ii`` and ``e_i``
for a whole grid of alphas are cheap per row: :func:`loo_block` computes them for a
block of rows and a block of alphas, and serves the in-memory path
(:func:`loo_path`), the streaming pass and the dask tasks (:func:`loo_partial`).
:func:`gcv_path` needs the statistics alone. No input checks here.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg

from .ridge import row_spectrum
from .stats import EPS, WORK_ELEMS, block_rows, cell_squares, centre_stats, noise_tol

__all__ = ["LooPlan", "LooSpectrum", "add_partials", "argmin_prefer_last", "centred_eigh",
           "gcv_decisions", "gcv_decisions_many", "gcv_path", "loo_block", "loo_decisions",
           "loo_from_fit", "loo_partial", "loo_path", "loo_plan", "loo_spectrum"]


def loo_block(U, resid, base, UtT, F):
    """Leave-one-out terms of a block of weighted rows for a block of alphas.

    Parameters
    ----------
    U : (rows, r)
        ``sqrt(v_i) diag(lam)^{-1/2} Q^T (x_i - mu)``: the rows in the orthonormal
        eigenbasis of the weighted centred Gram (or kernel).
    resid : (rows, m)
        ``sqrt(v_i)(t_i - tbar) - U_i (U^T T~)``: the part of the targets no alpha fits.
    base : (rows,)
        ``v_i / V``, the intercept's share of the leverage.
    UtT : (r, m)
        ``U^T T~`` over all rows.
    F : (r, L)
        Shrinkage factors ``lam / (lam + alpha n)``.

    Returns
    -------
    E : (rows, m, L)
        Weighted full-fit residuals ``resid + U diag(1 - F) UtT``.
    safe : (rows, L)
        ``1 - h_ii`` where it is above round-off, else 1.
    ok : (rows, L)
        Where ``1 - h_ii`` is above round-off.
    sq : (rows, L)
        ``||e_i||^2 / (1 - h_ii)^2``.
    """
    r, m = UtT.shape
    L = F.shape[1]
    h = base[:, None] + (U * U) @ F
    coefs = ((1.0 - F)[:, None, :] * UtT[:, :, None]).reshape(r, m * L)
    E = resid[:, :, None] + (U @ coefs).reshape(-1, m, L)
    one_minus_h = 1.0 - h
    ok = one_minus_h > 1e3 * EPS
    safe = np.where(ok, one_minus_h, 1.0)
    sq = np.einsum("imk,imk->ik", E, E) / safe**2
    return E, safe, ok, sq


def loo_path(rows, alphas, gram=None, return_decision=False):
    """:func:`lastlayer.solvers.ridge_loo_path` on :func:`lastlayer._core.ridge.weighted_rows`."""
    U, lam = row_spectrum(rows, gram)
    na, r = U.shape
    m = rows.Tt.shape[1]
    UtT = U.T @ rows.Tt  # (r, m)
    resid_perp = rows.Tt - U @ UtT  # part of the targets no alpha can fit
    base = rows.v / rows.V
    L = alphas.shape[0]
    loo = np.empty(L)
    df = np.empty(L)
    decision = np.empty((L, rows.X.shape[0], m)) if return_decision else None
    if return_decision and not np.all(rows.active):
        # predictions of rows without weight: tbar + (x - mu)^T Z^T U g U^T T~
        P_in = ((rows.X[~rows.active] - rows.mu) @ rows.Z.T) @ U  # (n_inactive, r)
    block = max(1, int(4e6 // max(na * m, 1)))
    for lo in range(0, L, block):
        al = alphas[lo : lo + block]
        denom = lam[:, None] + al[None, :] * rows.n  # (r, Lb)
        F = lam[:, None] / denom  # shrinkage factors
        E, safe, ok, sq = loo_block(U, resid_perp, base, UtT, F)
        err = sq.sum(axis=0) / rows.V
        err[~ok.all(axis=0)] = np.inf
        loo[lo : lo + al.size] = err
        df[lo : lo + al.size] = 1.0 + F.sum(axis=0)
        if return_decision:
            Rl = E / (np.sqrt(rows.v)[:, None, None] * safe[:, None, :])
            Rl[np.broadcast_to(~ok[:, None, :], Rl.shape)] = np.inf
            full = np.empty((al.size, rows.X.shape[0], m))
            full[:, rows.active, :] = (rows.T[rows.active][:, :, None] - Rl).transpose(
                2, 0, 1
            )
            if not np.all(rows.active):
                for k in range(al.size):
                    g = 1.0 / denom[:, k]
                    full[k, ~rows.active, :] = rows.tbar + P_in @ (g[:, None] * UtT)
            decision[lo : lo + al.size] = full
    out = {"alphas": alphas, "loo_mse": loo, "df": df}
    if return_decision:
        out["loo_decision"] = decision
    return out


def argmin_prefer_last(values, alphas):
    """Index of the smallest value; ties go to the largest alpha."""
    vals = np.where(np.isfinite(values), values, np.inf)
    best = vals.min()
    cand = np.flatnonzero(vals == best)
    return int(cand[np.argmax(alphas[cand])])


class LooPlan(NamedTuple):
    """Everything a block needs to add its rows' leave-one-out terms."""

    Qs: np.ndarray  # (d, r) eigenvectors / sqrt(lam) (the eigenvectors: see scale)
    mu: np.ndarray  # (d,)
    tbar: np.ndarray  # (m,)
    T: np.ndarray  # (J, m)
    omega: np.ndarray  # (J,)
    V: float
    UtT: np.ndarray  # (r, m)
    F: np.ndarray  # (r, L) shrinkage factors lam / (lam + alpha n)
    # (r,) 1 / sqrt(lam) when Qs holds the eigenvectors themselves (float64 rows: the
    # projections are scaled instead of a scaled d x r copy), else None
    scale: np.ndarray | None = None


class LooSpectrum(NamedTuple):
    """The eigendecomposition behind every leave-one-out quantity at one set of cell
    weights: the centred statistics and eigenpairs of their Gram matrix (all of them:
    :func:`centred_eigh`; the kept ones: :func:`loo_spectrum`). Reused for every
    alpha grid, GCV and the decisions."""

    cen: object  # stats.Centred
    lam: np.ndarray  # (r,) eigenvalues, ascending
    Q: np.ndarray  # (d, r) their eigenvectors


def centred_eigh(stats, omega, T):
    """The centred statistics at cell weights ``omega`` and every eigenpair of their
    Gram matrix ``(cen, lam, Q)``, ascending: the one ``d x d`` factorisation behind
    :func:`loo_spectrum` and :func:`gcv_path` (``cen.C`` is not kept: the
    eigensolver overwrites it)."""
    cen = centre_stats(stats, omega, T)
    # C is exactly symmetric: its transpose is the same matrix in Fortran order, which
    # LAPACK overwrites in place (a C-ordered array would be copied first)
    lam, Q = scipy.linalg.eigh(cen.C.T, check_finite=False, overwrite_a=True)
    return LooSpectrum(cen._replace(C=None), lam, Q)  # C was overwritten: not kept


def loo_spectrum(stats, omega, T, n_active, full=None):
    """The eigendecomposition of the weighted centred Gram at cell weights ``omega``
    with the eigenvalues at round-off level dropped, for :func:`loo_plan`; ``full``
    (:func:`centred_eigh` of the same weights) saves the factorisation."""
    d = stats.n_features
    if d > n_active:
        raise ValueError(
            f"The streaming leave-one-out solves the primal problem and needs n_features "
            f"<= the number of weighted rows. Got n_features = {d} and {n_active} rows; "
            f"with fewer rows than features the data fits in memory: use "
            f"lastlayer.solvers.ridge_loo_path.")
    cen, lam, Q = full if full is not None else centred_eigh(stats, omega, T)
    keep = lam > noise_tol(max(n_active, d), max(float(lam[-1]), 0.0))
    first = int(np.argmax(keep)) if keep.any() else lam.size  # ascending: a suffix
    return LooSpectrum(cen, lam[first:], Q[:, first:])  # views, no copy of Q


def _shrinkage(cen, lam, Q, alphas):
    """``sqrt(lam)``, ``U^T T~ = diag(lam)^{-1/2} Q^T rhs`` (r, m) and the shrinkage
    factors ``lam / (lam + alpha n)`` (r, L) of an eigendecomposition."""
    sq = np.sqrt(lam)
    UtT = (Q.T @ cen.rhs) / sq[:, None]
    return sq, UtT, lam[:, None] / (lam[:, None] + alphas[None, :] * cen.n)


def loo_plan(stats, omega, T, alphas, n_active, spectrum=None, dtype=np.float64):
    """The :class:`LooPlan` of an alpha grid and the degrees of freedom along it;
    ``spectrum`` (:func:`loo_spectrum` of the same weights) saves the factorisation.
    ``Qs`` is written in ``dtype`` (the dtype the rows will be projected in: the
    float64 quotient rounded once, no float64 ``d x r`` copy beside it); for float64
    rows it is the eigenvectors themselves, and the projections are scaled by
    ``scale`` (no copy at all)."""
    cen, lam, Q = spectrum if spectrum is not None else loo_spectrum(stats, omega, T,
                                                                    n_active)
    sq, UtT, F = _shrinkage(cen, lam, Q, alphas)
    Qs, scale = _projector(Q, sq, dtype)
    return (LooPlan(Qs, cen.mu, cen.tbar, T, omega, cen.V, UtT, F, scale),
            1.0 + F.sum(axis=0))


def _projector(Q, sq, dtype):
    """``(Qs, scale)`` projecting rows in ``dtype`` on ``Q diag(sq)^{-1}``: float64,
    ``Q`` itself and ``scale = 1 / sq`` for the projections (no ``d x r`` copy);
    otherwise the quotient written once in ``dtype`` and ``scale`` None."""
    if np.dtype(dtype) == np.float64:
        return Q, 1.0 / sq
    return np.divide(Q, sq, out=np.empty(Q.shape, dtype=dtype), casting="same_kind"), None


def loo_partial(X, cells, s, plan, dtype=np.float64):
    """Per-alpha sums of ``||e_i||^2 / (1 - h_ii)^2`` over a block's weighted rows,
    and whether any row had ``h_ii`` numerically one (one streaming block, one dask
    task, or the in-memory rows of :meth:`lastlayer._fit.RidgeOracle.loo_alpha`).

    ``dtype=float32`` (float32 features): each sub-block is shifted by the weighted
    mean in float32 and projected on the eigenvectors with a float32 product (half
    the time of float64); the projections are then accurate to about ``1e-7``
    relative to the spread of the rows, as the float32 Gram statistics they come
    from. No float64 copy of ``X`` is made either way (sub-blocks of ``WORK_ELEMS``).
    """
    L = plan.F.shape[1]
    sq_sum = np.zeros(L)
    bad = np.zeros(L, dtype=bool)
    cells = np.asarray(cells, dtype=np.intp)
    v_all = plan.omega[cells] if s is None else s * plan.omega[cells]
    r, m = plan.UtT.shape
    d = plan.Qs.shape[0]
    # alphas per loo_block call: its coefficient block (r, m * l_step) within the
    # workspace; rows per call: their projections (rows, max(d, r)) and residuals
    # (rows, m, l_step) too. Many rows per call keep the (rows, r) @ (r, m * l_step)
    # product compute-bound (it was 10 rows at d = 2048 with 100 targets: every call
    # re-read the coefficient block, 60 s of memory traffic).
    l_step = max(1, min(L, WORK_ELEMS // max(r * m, 1)))
    step = block_rows(X.shape[0], max(d, r, m * l_step))
    dtype = np.dtype(dtype)
    Qs, mu = plan.Qs.astype(dtype, copy=False), plan.mu.astype(dtype)
    for lo in range(0, X.shape[0], step):
        v = v_all[lo:lo + step]
        act = v > 0
        if not np.any(act):
            continue
        Xa = np.asarray(X[lo:lo + step])
        if not act.all():
            Xa = Xa[act]
        v = v[act]
        c = cells[lo:lo + step][act]
        sv = np.sqrt(v)
        U = np.asarray(np.subtract(Xa, mu, dtype=dtype) @ Qs, dtype=np.float64)
        if plan.scale is not None:
            U *= plan.scale
        U *= sv[:, None]
        resid = sv[:, None] * (plan.T[c] - plan.tbar) - U @ plan.UtT
        base = v / plan.V
        for a in range(0, L, l_step):
            _, _, ok, sq = loo_block(U, resid, base, plan.UtT, plan.F[:, a:a + l_step])
            sq_sum[a:a + ok.shape[1]] += sq.sum(axis=0)
            bad[a:a + ok.shape[1]] |= ~ok.all(axis=0)
    return sq_sum, bad


def add_partials(*parts):
    """Sum the outputs of :func:`loo_partial` (a tree-sum combiner)."""
    return sum(p[0] for p in parts), np.logical_or.reduce([p[1] for p in parts])


def gcv_path(stats, omega, T, alphas, return_coef=True, return_cell_leverage=False,
             full=None):
    """:func:`lastlayer.paths.alpha_path` without the checks; ``full``
    (:func:`centred_eigh` of the same weights) saves the factorisation."""
    cen, lam, Q = full if full is not None else centred_eigh(stats, omega, T)
    rt = Q.T @ cen.rhs  # (d, m)
    rt2 = np.einsum("km,km->k", rt, rt)
    wN = omega * stats.weight_sums
    tss = float(wN @ np.einsum("jm,jm->j", T, T) - cen.V * (cen.tbar @ cen.tbar))
    n_fit = float(stats.weight_sums[omega > 0].sum())

    denom = lam[None, :] + alphas[:, None] * cen.n  # (L, d)
    keep = denom > cen.tol
    g = np.zeros_like(denom)
    g[keep] = 1.0 / denom[keep]
    df = 1.0 + (g * lam[None, :]).sum(axis=1)
    rss = tss - (g * (2.0 - lam[None, :] * g)) @ rt2
    rss = np.maximum(rss, 0.0)
    mse = rss / cen.V
    with np.errstate(divide="ignore", invalid="ignore"):
        gcv = np.where(df < n_fit * (1.0 - 1e3 * EPS), mse / (1.0 - df / n_fit) ** 2, np.inf)
    out = {"alphas": alphas, "df": df, "mse": mse, "gcv": gcv, "n_fit": n_fit}
    if return_coef:
        W = np.einsum("ik,lk,km->lim", Q, g, rt, optimize=True)  # (L, d, m)
        out["coef"] = W
        out["intercept"] = cen.tbar[None, :] - np.einsum("lim,i->lm", W, cen.mu)
    if return_cell_leverage:
        diag = cell_squares(stats, cen.mu, Q)
        out["cell_leverage"] = omega[None, :] * (
            stats.weight_sums[None, :] / cen.V + g @ diag.T)
    return out


def loo_from_fit(t, fit, h, v):
    """Leave-one-out decisions ``t_i - (t_i - f_i) / (1 - h_i)`` of rows with targets
    ``t``, fit ``f`` and leverages ``h``: ``inf`` where ``1 - h_i`` is at round-off
    level, the fit itself where the row weight ``v_i`` is zero."""
    ok = 1.0 - h > 1e3 * EPS
    loo = t - (t - fit) / np.where(ok, 1.0 - h, 1.0)[:, None]
    loo[~ok] = np.inf
    return np.where((v > 0)[:, None], loo, fit)


def loo_decisions(X, cells, omega, T, s, alpha, stats, spectrum=None, dtype=np.float64):
    """Exact leave-one-out decisions ``t_i - e_i / (1 - h_ii)`` (n, m) of the ridge at
    one ``alpha`` when ``d <=`` the weighted rows, from the eigendecomposition of
    :func:`loo_spectrum` and the rows in blocks.

    The same quantity as :func:`loo_path` with ``return_decision`` (the same spectrum
    truncation), without an ``n x d`` float64 copy of the rows: each block is centred
    and projected on its own, in ``dtype`` (float32 for float32 features, as
    :func:`loo_partial`: half the time, projections accurate to about ``1e-7``
    relative to the spread of the rows). ``spectrum`` (:func:`loo_spectrum` of
    ``omega``, e.g. the one that chose ``alpha``) saves the ``d x d``
    eigendecomposition. Rows without weight get the full fit's prediction; rows with
    ``h_ii`` numerically one get ``inf``. Cost ``O(n d (d + m))``.
    """
    n_active = int(np.count_nonzero(s * omega[cells] > 0))
    dtype = np.dtype(dtype)
    cen, lam, Q = spectrum if spectrum is not None else loo_spectrum(stats, omega, T,
                                                                    n_active)
    # loo_plan's quantities at one alpha: W = Q diag(1 / (lam + alpha n)) Q^T rhs
    # (d, m) for the fit and Q diag(lam)^{-1/2} for the projections, written in dtype
    # (float64 rows: Q itself, the projections scaled instead; no d x r copy)
    sq, UtT, F = _shrinkage(cen, lam, Q, np.array([float(alpha)]))
    F = F[:, 0]
    m = T.shape[1]
    W = (Q @ ((F / sq)[:, None] * UtT)).astype(dtype, copy=False)
    Q_x, scale = _projector(Q, sq, dtype)
    mu = cen.mu.astype(dtype)
    n, d = X.shape
    out = np.empty((n, m))
    step = block_rows(n, d)
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        Xs = np.subtract(np.asarray(X[lo:hi]), mu, dtype=dtype)
        fit = np.asarray(Xs @ W, dtype=np.float64)
        fit += cen.tbar
        Z = np.asarray(Xs @ Q_x, dtype=np.float64)
        del Xs
        if scale is not None:
            Z *= scale
        Z *= Z  # in place: the projections are not needed again
        c = cells[lo:hi]
        v = s[lo:hi] * omega[c]
        out[lo:hi] = loo_from_fit(T[c], fit, v / cen.V + v * (Z @ F), v)
    return out


def gcv_decisions(X, cells, omega, T, s, W, b, df):
    """Leave-one-out decisions with every leverage replaced by its weighted average,
    ``t_i - (t_i - f_i) / (1 - v_i df / V)`` (n, m): generalised cross-validation's
    approximation of :func:`loo_decisions` (``h_ii`` of order ``d / n``; the two agree
    to that order). ``f_i = W^T x_i + b`` is the fit ``(W, b)`` with ``df`` degrees of
    freedom (intercept included) at cell weights ``omega``; rows without weight get
    ``f_i``. Cost ``O(n d m)``, against ``O(n d^2)`` for the exact ``h_ii``.
    """
    return gcv_decisions_many(X, cells, T, s, [(omega, W, b, df)])[0]


def gcv_decisions_many(X, cells, T, s, fits):
    """:func:`gcv_decisions` of several fits ``(omega, W, b, df)`` in one pass over the
    rows, one product with their coefficients side by side: the pass costs about as
    much for a few fits as for one (``X`` is read once; the product is a few targets
    wide)."""
    n, d = X.shape
    vs = [s * omega[cells] for omega, _, _, _ in fits]
    hs = [v * (df / v.sum()) for v, (_, _, _, df) in zip(vs, fits)]
    edges = np.cumsum([0] + [W.shape[1] for _, W, _, _ in fits])
    Wd = np.hstack([W for _, W, _, _ in fits]).astype(X.dtype, copy=False)
    outs = [np.empty((n, T.shape[1])) for _ in fits]
    step = block_rows(n, d)
    for lo in range(0, n, step):
        hi = min(lo + step, n)
        F = np.asarray(np.asarray(X[lo:hi]) @ Wd, dtype=np.float64)
        t = T[cells[lo:hi]]
        for k, (_, _, b, _) in enumerate(fits):
            fit = F[:, edges[k]:edges[k + 1]] + b
            outs[k][lo:hi] = loo_from_fit(t, fit, hs[k][lo:hi], vs[k][lo:hi])
    return outs
