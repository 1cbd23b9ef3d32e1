"""Cross-entropy dynamics of a last layer on fixed features (issue 13, part 2).

Full-batch gradient descent (or Adam) from ``W = 0, b = 0`` on

.. math::

    L(W, b) = \\frac{1}{n} \\sum_i r_i \\Big(\\log \\sum_k e^{z_{ik}} - z_{i y_i}\\Big)
        + \\alpha \\lVert W \\rVert_F^2,\\qquad z_i = W^\\top x_i + b,

with row weights ``r_i = s_i omega_{y_i}`` (the convention of
:func:`lastlayer.solvers.solve_logistic`, ``n = sum_i s_i``), recording per-class
curves at chosen steps. Optionally the row weights are recomputed at every step from
the current losses (instance-level loss-based reweighting):
``r_i(t) ~ s_i omega_{y_i} exp(l_i(t) / tau)``, rescaled so that ``sum_i r_i(t)`` stays
``sum_i s_i omega_{y_i}`` (the weights are treated as constants in the gradient).

On separable data with ``alpha = 0``, GD on the (weighted) cross-entropy converges in
direction to the hard-margin multiclass SVM on the augmented features ``[x, 1]``
(Soudry et al. 2018; the bias is part of the norm because GD treats it like any
other coordinate), whatever the fixed weights: :func:`max_margin` computes that
direction, so the weights only change the path.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

from ._validation import check_real

__all__ = ["logistic_gd", "max_margin", "cosine"]


def _lse(Z):
    zmax = Z.max(axis=1, keepdims=True)
    return (zmax + np.log(np.exp(Z - zmax).sum(axis=1, keepdims=True)))[:, 0]


def cosine(A, B):
    """Cosine between two arrays viewed as vectors (broadcast over a leading step axis)."""
    A = np.asarray(A, dtype=float)
    B = np.asarray(B, dtype=float)
    a = A.reshape(A.shape[0], -1) if A.ndim == 3 else A.reshape(1, -1)
    b = B.reshape(B.shape[0], -1) if B.ndim == 3 else B.reshape(1, -1)
    num = (a * b).sum(-1)
    den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out if out.size > 1 else float(out[0])


def _per_class(values, codes, K):
    out = np.full(K, np.nan)
    for k in range(K):
        rows = codes == k
        if rows.any():
            out[k] = values[rows].mean()
    return out


def logistic_gd(X, y, n_classes=None, *, class_weights=None, sample_weight=None, lr, steps,
                alpha=0.0, optimizer="gd", tau=None, X_test=None, y_test=None,
                betas=(0.9, 0.999), eps=1e-8, record_coef=False):
    """Full-batch GD or Adam on the weighted softmax cross-entropy, curves at ``steps``.

    Parameters
    ----------
    X : array (n, d); y : int array (n,) of class codes in ``[0, n_classes)``.
    class_weights : array (K,), optional
        ``omega`` (default ones); not rescaled here.
    sample_weight : array (n,), optional
    lr : float
        Step size (Adam: its learning rate).
    steps : increasing non-negative integers
        Steps at which to record (the run stops at the last one).
    alpha : float
        Ridge on ``W``.
    optimizer : {"gd", "adam"}
    tau : float, optional
        Temperature of the loss-based instance reweighting (None: fixed weights).
    X_test, y_test : optional held-out rows and codes.
    record_coef : bool
        Also return ``coef`` (S, d+1, K), the stacked ``[W; b]``.

    Returns
    -------
    dict with ``steps``, ``train_class_accuracy`` (S, K), ``train_class_loss``
    (S, K, unweighted mean cross-entropy per class), ``test_class_accuracy`` (S, K)
    with test rows, ``norm`` (S,) the norm of ``[W; b]``, ``minority_weight_share``
    (S,) the fraction of the total row weight on the smallest class, and ``coef``.
    """
    X = np.asarray(X, dtype=np.float64)
    n_rows, d = X.shape
    y = np.asarray(y, dtype=np.intp)
    K = int(n_classes or y.max() + 1)
    steps = np.asarray(steps, dtype=np.int64)
    if steps.ndim != 1 or steps.size < 1 or np.any(steps < 0) or np.any(np.diff(steps) < 0):
        raise ValueError("steps must be increasing non-negative integers")
    lr = check_real(lr, "lr", low=0, closed="neither")
    alpha = check_real(alpha, "alpha", low=0)
    if optimizer not in ("gd", "adam"):
        raise ValueError(f"optimizer must be 'gd' or 'adam'; got {optimizer!r}")
    omega = np.ones(K) if class_weights is None else np.asarray(class_weights, float)
    sw = np.ones(n_rows) if sample_weight is None else np.asarray(sample_weight, float)
    base = sw * omega[y]
    n = float(sw.sum())
    Xa = np.hstack([X, np.ones((n_rows, 1))])
    Xt = None if X_test is None else np.hstack([np.asarray(X_test, float),
                                                np.ones((len(X_test), 1))])
    rows = np.arange(n_rows)
    smallest = int(np.argmin(np.bincount(y, minlength=K)))
    Theta = np.zeros((d + 1, K))
    m1 = np.zeros_like(Theta)
    m2 = np.zeros_like(Theta)
    rec = {"train_class_accuracy": [], "train_class_loss": [], "norm": [],
           "minority_weight_share": []}
    if Xt is not None:
        rec["test_class_accuracy"] = []
    coefs = []
    j = 0
    t = 0
    while j < steps.size:
        Z = Xa @ Theta
        lse = _lse(Z)
        loss_i = lse - Z[rows, y]
        if tau is None:
            r = base
        else:
            e = np.exp((loss_i - loss_i.max()) / tau)
            r = base * e
            r *= base.sum() / r.sum()
        while j < steps.size and steps[j] == t:
            pred = Z.argmax(1)
            rec["train_class_accuracy"].append(_per_class(pred == y, y, K))
            rec["train_class_loss"].append(_per_class(loss_i, y, K))
            rec["norm"].append(float(np.linalg.norm(Theta)))
            rec["minority_weight_share"].append(float(r[y == smallest].sum() / r.sum()))
            if Xt is not None:
                pt = (Xt @ Theta).argmax(1)
                rec["test_class_accuracy"].append(_per_class(pt == y_test, y_test, K))
            if record_coef:
                coefs.append(Theta.copy())
            j += 1
        if j >= steps.size:
            break
        G = np.exp(Z - lse[:, None])
        G[rows, y] -= 1.0
        grad = Xa.T @ (G * r[:, None]) / n
        grad[:-1] += 2.0 * alpha * Theta[:-1]
        t += 1
        if optimizer == "gd":
            Theta -= lr * grad
        else:
            m1 = betas[0] * m1 + (1 - betas[0]) * grad
            m2 = betas[1] * m2 + (1 - betas[1]) * grad * grad
            mh = m1 / (1 - betas[0] ** t)
            vh = m2 / (1 - betas[1] ** t)
            Theta -= lr * mh / (np.sqrt(vh) + eps)
    out = {"steps": steps.tolist()}
    for key, val in rec.items():
        out[key] = np.asarray(val)
    if record_coef:
        out["coef"] = np.asarray(coefs)
    return out


def max_margin(X, y, n_classes=None, *, max_iter=20000, tol=1e-10):
    """Hard-margin multiclass SVM on ``[x, 1]`` (bias in the norm), through its dual.

    ``min ||Theta||_F^2`` subject to ``(theta_{y_i} - theta_k)^T [x_i, 1] >= 1`` for
    every ``k != y_i``: the limit direction of GD on the cross-entropy of separable
    data from zero. The dual ``max_{lam >= 0} sum lam - ||A^* lam||^2 / 2`` is solved
    with L-BFGS-B. Returns ``(Theta, min_margin)`` with ``Theta`` of shape (d+1, K)
    (``min_margin`` close to 1 when solved; far below 1 or a huge norm means the data
    are not separable or the solver stopped early).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.intp)
    K = int(n_classes or y.max() + 1)
    n = X.shape[0]
    Xa = np.hstack([X, np.ones((n, 1))])
    rows = np.arange(n)
    mask = np.ones((n, K), bool)
    mask[rows, y] = False

    def theta_of(lam):
        L = np.zeros((n, K))
        L[mask] = lam
        M = -L
        M[rows, y] = L.sum(1)
        return Xa.T @ M

    def margins(Theta):
        Z = Xa @ Theta
        return (Z[rows, y][:, None] - Z)[mask]

    def f(lam):
        Theta = theta_of(lam)
        val = 0.5 * np.sum(Theta * Theta) - lam.sum()
        return val, margins(Theta) - 1.0

    x0 = np.full(n * (K - 1), 1e-3)
    res = minimize(f, x0, jac=True, method="L-BFGS-B", bounds=[(0, None)] * x0.size,
                   options={"maxiter": max_iter, "maxfun": 2 * max_iter, "ftol": tol,
                            "gtol": tol})
    Theta = theta_of(res.x)
    return Theta, float(margins(Theta).min())
