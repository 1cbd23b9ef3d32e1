"""Weighted multinomial logistic regression, its approximate and exact leave-one-out.

Objective: :func:`lastlayer.solvers.solve_logistic`. No input checks here: the
checked entry points are :func:`lastlayer.solvers.solve_logistic` and
:func:`lastlayer.solvers.logistic_alpha_alo`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg
from scipy.optimize import minimize

from .loo import argmin_prefer_last
from .stats import EPS, block_rows, fill_lower_from_upper

#: :func:`_class_block_hat` gives way to the explicit Hessian when its capacitance's
#: reciprocal condition number is below this. Above it the two methods' blocks agree
#: to at most ``4e-10 / rcond`` of their largest entry; on 4,000 random problems with
#: rows at least the columns (as after the row space) and random, often saturated,
#: probabilities to 1.4e-7; on the three worst, against a 40-digit inverse, the
#: explicit Hessian is up to 8.6e-8 off and the class blocks 2.3e-7
#: (benchmarks/alo_hat_accuracy.py). On fitted models (the suite's draws) the
#: leave-one-out logits agree to 1.4e-9.
HAT_RCOND = 1e-6

__all__ = ["LogisticSolution", "Preconditioner", "alo_cross_entropy", "alo_logits",
           "augment", "exact_loo_cross_entropy", "hat_flops", "hat_method", "logistic",
           "logistic_alpha_path", "logistic_loss_grad", "logsumexp_rows", "preconditioner",
           "row_space", "separates"]


class LogisticSolution(NamedTuple):
    """Result of :func:`solve_logistic`.

    Attributes
    ----------
    coef : ndarray of shape (n_features, n_classes)
    intercept : ndarray of shape (n_classes,)
        Centred to sum to zero (the softmax is invariant to a common shift).
    n_iter : int
    converged : bool
    objective : float
        Value of the (1/n)-scaled objective at the solution.
    """

    coef: np.ndarray
    intercept: np.ndarray
    n_iter: int
    converged: bool
    objective: float


def logsumexp_rows(Z):
    zmax = Z.max(axis=1, keepdims=True)
    return (zmax + np.log(np.exp(Z - zmax).sum(axis=1, keepdims=True)))[:, 0]


def logistic_loss_grad(theta, Xa, y, r, alpha, n_norm, K):
    """Objective and gradient of the (1/n)-scaled penalised multinomial loss.

    ``theta`` is the row-major flattening of the (d+1, K) matrix ``[W; b]``.
    ``alpha``: the penalty ``alpha ||W||_F^2``, or an array of one ``alpha_a`` per
    row of ``W`` for ``sum_a alpha_a ||W_a||^2`` (the diagonal penalty of the
    preconditioned coordinates of :func:`logistic`).
    """
    Theta = theta.reshape(-1, K)
    Z = Xa @ Theta
    lse = logsumexp_rows(Z)
    rows = np.arange(Z.shape[0])
    loss = r @ (lse - Z[rows, y]) / n_norm
    W = Theta[:-1]
    per_row = np.ndim(alpha) == 1
    f = loss + (float(alpha @ np.sum(W * W, axis=1)) if per_row else alpha * np.sum(W * W))
    G = np.exp(Z - lse[:, None])
    G[rows, y] -= 1.0
    G *= r[:, None]
    grad = Xa.T @ G / n_norm
    grad[:-1] += 2.0 * (alpha[:, None] if per_row else alpha) * W
    return f, grad.ravel()


def augment(X):
    return np.hstack([X, np.ones((X.shape[0], 1))])


class Preconditioner(NamedTuple):
    """The rows of a cross-entropy fit in the eigenbasis of their weighted covariance
    (:func:`preconditioner`): ``Y = (X - mu) V``, ``lam`` the eigenvalues of
    ``(X - mu)^T R (X - mu) / n_norm`` and ``c`` the softmax curvature at zero."""

    mu: np.ndarray  # (d,) r-weighted mean of the rows
    V: np.ndarray  # (d, d) eigenvectors
    lam: np.ndarray  # (d,) eigenvalues
    Y: np.ndarray  # (n, d) centred rows in the eigenbasis
    c: float  # (1/K)(1 - 1/K)


def preconditioner(X, r, n_norm, K):
    """:class:`Preconditioner` of rows ``X`` with weights ``r``: one ``d x d``
    eigendecomposition, shared by every alpha (and by refits on subsets of the rows,
    for which it is still a good, if not exact, preconditioner)."""
    mu = (r @ X) / r.sum()
    Xc = X - mu
    lam, V = scipy.linalg.eigh((Xc * r[:, None]).T @ Xc / n_norm, check_finite=False)
    return Preconditioner(mu, V, np.maximum(lam, 0.0), Xc @ V, (1.0 / K) * (1.0 - 1.0 / K))


def _scales(pre, alpha):
    """Per-direction scales ``1 / sqrt(c lam_k + 2 alpha)``: the Hessian of the
    objective at zero is then the identity on the coefficients' directions."""
    h = pre.c * pre.lam + 2.0 * alpha
    floor = max(float(h.max()), np.finfo(float).tiny) * 1e-12
    return 1.0 / np.sqrt(np.maximum(h, floor))


def logistic(X, y, K, r, alpha, max_iter=1000, tol=1e-8, init=None, n_norm=None,
             pre=None):
    """:func:`lastlayer.solvers.solve_logistic` on checked inputs.

    ``init`` is None or a pair ``(coef (d, K), intercept (K,))`` of checked shapes;
    ``n_norm`` the normaliser (default the number of rows); ``pre`` a
    :func:`preconditioner` whose ``Y`` holds the rows of ``X`` (built from ``X``, or
    from a superset with ``Y`` cut to these rows), computed here when None.

    L-BFGS runs in preconditioned coordinates: ``W = V diag(s) G`` and
    ``b = b' - mu^T W`` with ``s_k = 1 / sqrt(c lam_k + 2 alpha)``, where the
    Hessian at zero is the identity (the rows' covariance otherwise makes it as
    ill-conditioned as the features: hundreds to thousands of iterations). The
    objective and its minimiser are those of :func:`logistic_loss_grad` with ``alpha``;
    L-BFGS minimises it with the per-row penalty ``alpha s_k^2`` on ``G``.
    """
    n_norm = X.shape[0] if n_norm is None else n_norm
    if pre is None and X.shape[1] > X.shape[0]:
        # wide: solve in the span of the rows, where the penalised minimiser lies
        # (an n x n problem; its preconditioner costs n^3, not d^3)
        Xw, basis = row_space(X)
        if basis is not None:
            start = None if init is None else (basis.T @ np.asarray(init[0], float), init[1])
            sol = logistic(Xw, y, K, r, alpha, max_iter, tol, start, n_norm)
            return sol._replace(coef=basis @ sol.coef)
    d = X.shape[1]
    if pre is None:
        pre = preconditioner(X, r, float(n_norm), K)
    Y = pre.Y
    s = _scales(pre, alpha)
    theta0 = np.zeros((d + 1, K))
    if init is not None:
        W0, b0 = np.asarray(init[0], dtype=float), np.asarray(init[1], dtype=float)
        theta0[:-1] = (pre.V.T @ W0) / s[:, None]
        theta0[-1] = b0 + pre.mu @ W0
    Ya = np.empty((Y.shape[0], d + 1))  # [Y diag(s), 1] written once, no temporary
    np.multiply(Y, s, out=Ya[:, :-1])
    Ya[:, -1] = 1.0
    res = minimize(
        logistic_loss_grad,
        theta0.ravel(),
        args=(Ya, y, r, alpha * s * s, float(n_norm), K),
        jac=True,
        method="L-BFGS-B",
        options={
            "maxiter": max_iter, "gtol": tol, "ftol": 64 * EPS, "maxfun": 4 * max_iter,
        },
    )
    Theta = res.x.reshape(d + 1, K)
    W = pre.V @ (s[:, None] * Theta[:-1])
    b = Theta[-1] - pre.mu @ W
    b -= b.mean()
    grad_ok = np.max(np.abs(res.jac)) <= max(10 * tol, 1e-7)
    converged = bool(res.status == 0 or (res.status != 1 and grad_ok))
    if alpha == 0.0 and converged and separates(X, y, r, W, b):
        # every weighted row on its side: scaling (W, b) up lowers the loss further,
        # so this point is not a minimiser (there is none); L-BFGS stopped only because
        # the loss became too flat to measure
        converged = False
    return LogisticSolution(W, b, int(res.nit), converged, float(res.fun))


def separates(X, y, r, W, b):
    """Whether ``(W, b)`` puts every row of positive weight ``r_i`` strictly on its
    class's side (its logit above every other): then the unpenalised cross-entropy has
    no minimiser (its infimum 0 is approached along ``t (W, b)``, ``t -> inf``)."""
    act = r > 0
    Z = X[act] @ W + b
    yi = y[act]
    true = Z[np.arange(yi.size), yi]
    Z[np.arange(yi.size), yi] = -np.inf
    return bool(np.all(true > Z.max(axis=1)))


def alo_cross_entropy(Xa, y, r, alpha, n_norm, K, Theta, return_logits=False, hat="auto"):
    """Approximate leave-one-out cross-entropy (Rad & Maleki 2020) at ``Theta``.

    One Newton step from the full fit towards the fit without row ``i``:
    ``z_i^{(-i)} = z_i + M_i (I - r_i L_i M_i)^{-1} r_i g_i`` with
    ``g_i = p_i - e_{y_i}``, ``L_i = diag(p_i) - p_i p_i^T`` and
    ``M_i = J_i H^{-1} J_i^T`` the (K, K) block of the inverse Hessian of the
    unnormalised objective seen by row ``i``, from one factorisation of ``H`` (two
    classes: :func:`_binary_hat`) or, where cheaper (:func:`hat_method`), from one
    factorisation per class and an ``n``-row capacitance (:func:`_class_block_hat`).

    The data Hessian vanishes on every "common shift" direction
    ``Theta -> Theta + u 1^T`` (``L_i 1 = 0``), so ``H`` is block-diagonal between
    those directions and their complement; the common block only moves each
    ``z_i^{(-i)}`` by a constant vector, to which the softmax is blind. Everything
    is therefore computed in an orthonormal basis ``E`` of ``1^perp`` (K - 1
    columns), which also removes the intercept's null direction.

    Returns the weighted mean ALO and training cross-entropies, and with
    ``return_logits`` also the approximate leave-one-out logits ``z^{(-i)}`` (n, K).
    ``hat``: "auto" (:func:`hat_method`), "hessian" or "class_blocks" (more than two
    classes; both give the same blocks up to rounding).
    """
    n = Xa.shape[0]
    Z = Xa @ Theta
    lse = logsumexp_rows(Z)
    P = np.exp(Z - lse[:, None])
    rows = np.arange(n)
    E = scipy.linalg.null_space(np.ones((1, K)))  # (K, K-1), orthonormal
    k1 = K - 1
    Ep = P @ E
    EdE = (P @ (E[:, :, None] * E[:, None, :]).reshape(K, k1 * k1)).reshape(n, k1, k1)
    Lr = EdE - Ep[:, :, None] * Ep[:, None, :]  # E^T (diag(p) - p p^T) E
    if k1 == 1:
        m = _binary_hat(Xa, r * Lr[:, 0, 0], 2.0 * alpha * n_norm)
        M = None if m is None else m[:, None, None]
    elif (hat_method(n, Xa.shape[1], K) if hat == "auto" else hat) == "class_blocks":
        M = _class_block_hat(Xa, r, P, E, alpha, n_norm)
    else:
        M = None
    if M is None:  # also the fallback of the other two
        M = _hat_blocks(Xa, r, Lr, alpha, n_norm)
    G = P.copy()
    G[rows, y] -= 1.0
    A = np.eye(k1)[None] - r[:, None, None] * (Lr @ M)
    u = np.linalg.solve(A, (r[:, None] * (G @ E))[:, :, None])
    Zloo = Z + (M @ u)[:, :, 0] @ E.T
    ce = logsumexp_rows(Zloo) - Zloo[rows, y]
    train_ce = lse - Z[rows, y]
    out = float(r @ ce / r.sum()), float(r @ train_ce / r.sum())
    return (*out, Zloo) if return_logits else out


def _binary_hat(Xa, w, pen):
    """``x_i^T H^{-1} x_i`` for ``H = Xa^T diag(w) Xa + pen I`` (intercept column
    unpenalised, ``w >= 0``): one ``?syrk`` and one triangular solve with the rows
    (``c^T z_i = x_i``, ``||z_i||^2``), half the flops of forming the inverse and
    multiplying by it. None when the Cholesky factorisation fails."""
    p1 = Xa.shape[1]
    c = _weighted_factor(Xa, np.maximum(w, 0.0), pen)
    if c is None:
        return None
    # the solve a block of rows at a time (no n x p solution beside the rows)
    out = np.empty(Xa.shape[0])
    step = block_rows(Xa.shape[0], p1)
    for lo in range(0, Xa.shape[0], step):
        Zt = scipy.linalg.blas.dtrsm(1.0, c, Xa[lo:lo + step].T, side=0, lower=0,
                                     trans_a=1)
        out[lo:lo + step] = np.einsum("ij,ij->j", Zt, Zt)
    return out


def _weighted_factor(Xa, w, pen, last=0.0):
    """The upper Cholesky factor of ``Xa^T diag(w) Xa + pen I_W`` (no penalty on the
    last, intercept, column, which gets ``last`` instead), or None when the
    factorisation fails: one ``?syrk``, the factor in its output's memory."""
    Xs = Xa * np.sqrt(w)[:, None]
    H = scipy.linalg.blas.dsyrk(1.0, Xs.T, trans=0, lower=0)  # upper of Xs^T Xs
    del Xs
    idx = np.arange(Xa.shape[1] - 1)
    H[idx, idx] += pen
    H[-1, -1] += last
    c, info = scipy.linalg.lapack.dpotrf(H, lower=0, clean=1, overwrite_a=1)
    return c if info == 0 else None


def hat_flops(n, p1, K):
    """Estimated flops of the hat blocks of :func:`alo_cross_entropy` for ``n`` rows,
    ``p1`` columns (intercept included) and ``K > 2`` classes, by method:
    ``"hessian"`` (:func:`_hat_blocks`: build the ``p1 (K-1)``-wide Hessian from
    ``K (K-1) / 2`` weighted Grams, invert it, read each row's block off the inverse)
    and ``"class_blocks"`` (:func:`_class_block_hat`)."""
    q = p1 * (K - 1)
    m = n + K - 1
    return {
        "hessian": 2.0 * n * q * q + q**3,
        "class_blocks": K * (2.0 * n * p1 * p1 + p1**3 / 3.0 + 2.0 * p1 * m * m
                             + 2.0 * n * p1 * m) + m**3 / 3.0 + 2.0 * n * K * K * m,
    }


def hat_method(n, p1, K):
    """The cheaper method of :func:`hat_flops` (ties: the explicit Hessian)."""
    f = hat_flops(n, p1, K)
    return "class_blocks" if f["class_blocks"] < f["hessian"] else "hessian"


def _class_block_hat(Xa, r, P, E, alpha, n_norm):
    """The hat blocks ``M_i`` of :func:`alo_cross_entropy` without the
    ``p1 (K-1)``-wide Hessian; None where a factorisation fails or is too
    ill-conditioned to trust (the caller then forms the Hessian).

    In the full ``K``-class coordinates the Hessian is class-block-diagonal less a
    rank-``n`` term: ``H = B - U U^T`` with ``B_k = Xa^T diag(r p_k) Xa + 2 alpha
    n_norm I_W`` and ``u_i = sqrt(r_i) (x_i (x) p_i)`` (``L_i = diag(p_i) - p_i p_i^T``).
    ``H`` is singular on the common intercept shift, which ``E`` projects away; any
    inverse on the common-shift directions gives the same ``E^T N_i E``, so the
    intercepts get ``tau`` in every ``B_k`` and lose it again on ``1^perp`` (``K - 1``
    more columns): ``G = (B' - V V^T)^{-1}``, ``V = [U, sqrt(tau) (e (x) E)]``, by
    Woodbury with the positive definite capacitance ``D = I - V^T B'^{-1} V``:
    ``N_i = diag_k(x_i^T B'_k^{-1} x_i) + Q_i D^{-1} Q_i^T``. Cost
    :func:`hat_flops`: ``K`` factorisations of ``p1 x p1`` and one of
    ``(n + K - 1)``, instead of one of ``p1 (K-1)``. The subtraction in ``D`` loses
    precision when the probabilities saturate; below a reciprocal condition number
    of ``HAT_RCOND`` the explicit Hessian is used instead. Memory: ``2 K p1 (n + K)``
    numbers for the factors' solves and the ``Q_i`` of a block of rows at a time.
    """
    n, p1 = Xa.shape
    K = P.shape[1]
    m = n + K - 1
    pen = 2.0 * alpha * n_norm
    if not pen > 0.0:
        return None  # no penalty: the common shifts of the coefficients are null too
    tau = float(r.sum()) / K  # the intercept's curvature with uniform probabilities
    sr = np.sqrt(r)
    Y = np.empty((K, p1, n))  # c_k^{-T} Xa^T, with B'_k = c_k^T c_k
    Z = np.zeros((K, p1, m))  # c_k^{-T} V_k (class k's rows of V)
    for k in range(K):
        c = _weighted_factor(Xa, r * P[:, k], pen, tau)
        if c is None:
            return None
        Y[k] = scipy.linalg.blas.dtrsm(1.0, c, Xa.T, side=0, lower=0, trans_a=1)
        np.multiply(Y[k], sr * P[:, k], out=Z[k, :, :n])
        Z[k, -1, n:] = np.sqrt(tau) / c[-1, -1] * E[k]  # c_k^{-T} e is e / c_k[-1, -1]
    Zs = Z.reshape(K * p1, m)
    D = scipy.linalg.blas.dsyrk(-1.0, Zs.T, trans=0, lower=0)  # upper of -V^T B'^-1 V
    D[np.arange(m), np.arange(m)] += 1.0
    # the 1-norm of the symmetric D from its upper triangle: column j's sum is the
    # triangle's column j plus its row j, the diagonal counted once
    A = np.abs(np.triu(D))
    anorm = float((A.sum(axis=0) + A.sum(axis=1) - A.diagonal()).max())
    del A
    L, info = scipy.linalg.lapack.dpotrf(D, lower=0, clean=1, overwrite_a=1)  # D's memory
    if info != 0:
        return None
    rcond, info = scipy.linalg.lapack.dpocon(L, anorm)
    if info != 0 or not rcond > HAT_RCOND:
        return None
    for k in range(K):
        Z[k] = scipy.linalg.blas.dtrsm(1.0, L, Z[k], side=1, lower=0)  # Z_k L^{-1}
    N = np.empty((n, K, K))
    step = block_rows(n, K * m)  # Q_i = (Y_k[:, i]^T Z_k L^{-1})_k, (K, m) a row
    for lo in range(0, n, step):
        Q = np.matmul(Y[:, :, lo:lo + step].transpose(0, 2, 1), Z).transpose(1, 0, 2)
        N[lo:lo + step] = np.matmul(Q, Q.transpose(0, 2, 1))
    N[:, np.arange(K), np.arange(K)] += np.einsum("kai,kai->ik", Y, Y)
    return np.matmul(np.matmul(E.T[None], N), E[None])


def _hat_blocks(Xa, r, Lr, alpha, n_norm):
    """``M_i = J_i H^{-1} J_i^T`` (n, k1, k1) of :func:`alo_cross_entropy` from the
    explicit inverse of the ``p1 (K-1)``-wide Hessian in the coordinates of ``E``
    (the pseudo-inverse when the probabilities saturate)."""
    n, p1 = Xa.shape
    k1 = Lr.shape[1]
    # Hessian of sum_i r_i CE_i + alpha n_norm ||W||^2 on 1^perp; (a, k) -> a*k1 + k
    H = np.empty((p1, k1, p1, k1))
    for k in range(k1):
        for l in range(k, k1):
            blk = Xa.T @ (Xa * (r * Lr[:, k, l])[:, None])
            H[:, k, :, l] = blk
            if l != k:
                H[:, l, :, k] = blk.T
    H = H.reshape(p1 * k1, p1 * k1)
    idx = np.arange((p1 - 1) * k1)
    H[idx, idx] += 2.0 * alpha * n_norm
    H = 0.5 * (H + H.T)
    c, info = scipy.linalg.lapack.dpotrf(H, lower=0, clean=1)
    if info == 0:
        Hinv, info = scipy.linalg.lapack.dpotri(c, lower=0)
    if info == 0:
        Hinv = fill_lower_from_upper(Hinv)
    else:  # saturated probabilities: fall back to the pseudo-inverse
        Hinv = np.linalg.pinv(H, hermitian=True)
    Hinv = Hinv.reshape(p1, k1, p1, k1)
    M = np.empty((n, k1, k1))
    for k in range(k1):
        for l in range(k, k1):
            M[:, k, l] = np.einsum("ia,ia->i", Xa @ Hinv[:, k, :, l], Xa)
            M[:, l, k] = M[:, k, l]
    return M


def exact_loo_cross_entropy(X, y, K, r, alpha, n_norm, sol, max_iter, tol):
    """Leave-one-out cross-entropy by refitting without each weighted row.

    Each refit keeps the full-data normaliser ``n_norm`` (penalty fixed, as in the
    ALO and ridge conventions) and is warm-started from the full fit ``sol``.
    """
    n = X.shape[0]
    ce = np.zeros(n)
    keep = np.ones(n, dtype=bool)
    pre = preconditioner(X, r, n_norm, K)  # of all rows: good for every refit
    for i in np.flatnonzero(r > 0):
        keep[i] = False
        s_i = logistic(X[keep], y[keep], K, r[keep], alpha, max_iter, tol, sol, n_norm,
                       pre._replace(Y=pre.Y[keep]))
        keep[i] = True
        z = X[i] @ s_i.coef + s_i.intercept
        ce[i] = logsumexp_rows(z[None])[0] - z[y[i]]
    z = X @ sol.coef + sol.intercept
    train_ce = logsumexp_rows(z) - z[np.arange(n), y]
    return float(r @ ce / r.sum()), float(r @ train_ce / r.sum())



def row_space(X):
    """``(X @ Q, Q)`` with ``Q`` an orthonormal basis of the row space of ``X`` when
    ``d > n`` (the penalised solution lies there), else ``(X, None)``."""
    n, d = X.shape
    if d <= n:
        return X, None
    _, sv, Vt = np.linalg.svd(X, full_matrices=False)
    keep = sv > max(n, d) * EPS * sv[0]
    keep[0] = True
    basis = Vt[keep].T
    return X @ basis, basis


def alo_logits(X, y, K, r, alpha, n_norm, W, b, space=None):
    """Approximate leave-one-out logits (n, K) of the fit ``(W, b)`` at ``alpha``;
    ``space``: :func:`row_space` of ``X``, when already computed."""
    Xw, basis = row_space(X) if space is None else space
    Wr = W if basis is None else basis.T @ W
    Theta = np.vstack([Wr, b])
    return alo_cross_entropy(augment(Xw), y, r, alpha, n_norm, K, Theta, return_logits=True)[2]


def logistic_alpha_path(X, y, K, r, alphas, n_norm, max_iter, tol, method, patience=None,
                        space=None, callback=None):
    """:func:`lastlayer.solvers.logistic_alpha_alo` on checked inputs.

    With ``patience`` the path, which runs from the largest alpha down, stops once
    the leave-one-out cross-entropy has risen above its running minimum at
    ``patience`` alphas in a row (the smaller alphas, whose fits are the slowest,
    are then left out: their entries are ``nan``). Exact for a unimodal curve.
    ``space``: :func:`row_space` of ``X``, when already computed. ``callback``: called
    with no arguments after each alpha (progress).
    """
    n, d = X.shape
    Xw, basis = row_space(X) if space is None else space
    Xa = augment(Xw)
    L = alphas.shape[0]
    alo = np.empty(L)
    train = np.empty(L)
    n_iter = np.empty(L, dtype=np.int64)
    conv = np.empty(L, dtype=bool)
    coefs = np.empty((L, d, K))
    intercepts = np.empty((L, K))
    alo[:], train[:], coefs[:], intercepts[:] = np.nan, np.nan, np.nan, np.nan
    n_iter[:], conv[:] = 0, False
    sol, worse, running = None, 0, np.inf
    pre = preconditioner(Xw, r, float(n_norm), K)  # one eigendecomposition for the path
    for i in np.argsort(-alphas, kind="stable"):
        if patience is not None and worse >= patience:
            break
        sol = logistic(Xw, y, K, r, float(alphas[i]), max_iter, tol, sol, n_norm, pre)
        if method == "alo":
            Theta = np.vstack([sol.coef, sol.intercept])
            alo[i], train[i] = alo_cross_entropy(Xa, y, r, alphas[i], n_norm, K, Theta)
        else:
            alo[i], train[i] = exact_loo_cross_entropy(
                Xw, y, K, r, float(alphas[i]), n_norm, sol, max_iter, tol
            )
        n_iter[i], conv[i] = sol.n_iter, sol.converged
        coefs[i] = sol.coef if basis is None else basis @ sol.coef
        intercepts[i] = sol.intercept
        worse = worse + 1 if alo[i] > running else 0
        running = min(running, alo[i])
        if callback is not None:
            callback()
    best = argmin_prefer_last(alo, alphas)
    path = {
        "alphas": alphas,
        "loo_ce": alo,
        "train_ce": train,
        "n_iter": n_iter,
        "converged": conv,
        "coef": coefs,
        "intercept": intercepts,
        "best_index": best,
        "method": method,
    }
    return float(alphas[best]), path
