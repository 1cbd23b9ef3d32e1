"""Unconstrained-features model of training dynamics under class imbalance (issue 13, part 3).

The small-scale model of Zhao & Thrampoulidis ("Why loss re-weighting works if you
stop early"): the features are free parameters trained jointly with the classifier.
Here: per-sample features ``H = [h_1 .. h_n]`` (d x n) and classifier ``W`` (K x d),
no bias, one-hot targets, small random initialisation (entries ``N(0, init^2)``),
full-batch GD with step ``lr`` on

.. math::

    \\frac{1}{n}\\sum_i \\omega_{y_i}\\, \\ell(W h_i, y_i),\\qquad
    \\ell = \\lVert e_y - z \\rVert^2 \\ \\text{(square)}\\ \\text{or}\\
    \\log\\textstyle\\sum_k e^{z_k} - z_y \\ \\text{(cross-entropy)}.

``collapsed=True`` uses one feature per class instead (``h_i = h_{y_i}``, the
class-level model), i.e. the loss ``(1/n) sum_k n_k omega_k l(W h_k, k)``.

Spectral picture (square loss, derived in docs/dynamics.md): near the small
initialisation the dynamics are linear, ``dW = (2/n) A H^T``, ``dH = (2/n) W^T A``
with the weighted label matrix ``A = Y D`` (``Y`` the K x n one-hot matrix,
``D = diag(omega_{y_i})``); the component along the k-th singular pair grows like
``exp(2 lr sigma_k t / n)`` and the class output ``p_k`` (mean of ``(W h_i)_k`` over
class k) follows a logistic curve with rate ``4 lr sigma_k / n``. For one-hot labels
the singular values are per class: ``sigma_k = omega_k sqrt(n_k)`` (per-sample
features) or ``omega_k n_k`` (collapsed). Classes are therefore learned in the order
of ``sigma_k``: under ERM majorities first; with ``omega_k ~ 1/n_k`` the collapsed
model learns every class at the same time, the per-sample model the minorities
*first*; ``omega_k ~ n_k^{-1/2}`` equalises the per-sample model.
"""

from __future__ import annotations

import numpy as np

__all__ = ["label_singular_values", "ufm_gd"]


def label_singular_values(counts, class_weights=None, *, loss="square", collapsed=False):
    """Singular values of the weighted label matrix that drives the early dynamics.

    Square loss: ``A = Y D`` (one-hot ``Y``); cross-entropy: the gradient at zero
    uses the centred targets, ``A = (Y - 1/K) D``. Per-sample columns (``n``) or one
    column per class weighted by ``n_k`` (``collapsed``). Returns the K singular
    values in class order for the square loss (they are per class) and sorted
    descending for the cross-entropy.
    """
    counts = np.asarray(counts, dtype=float)
    K = counts.size
    w = np.ones(K) if class_weights is None else np.asarray(class_weights, float)
    if loss == "square":
        return w * (counts if collapsed else np.sqrt(counts))
    Y = np.eye(K) - 1.0 / K
    if collapsed:
        A = Y * (w * counts)[None, :]
    else:
        cols = np.repeat(np.arange(K), counts.astype(int))
        A = Y[:, cols] * w[cols][None, :]
    return np.linalg.svd(A, compute_uv=False)


def ufm_gd(counts, *, dim=16, class_weights=None, loss="square", lr, steps, init=1e-3,
           seed=0, collapsed=False):
    """GD on the unconstrained-features model; per-class curves at every step.

    Returns a dict with ``accuracy`` (T+1, K) per-class training accuracy,
    ``class_output`` (T+1, K) the mean over class k of ``(W h_i)_k`` (square loss:
    the fraction of the target learned), ``separated_step`` (K,) the first step from
    which every sample of the class is classified correctly for the rest of the run
    (-1 if never), ``half_step`` (K,) the first step with ``class_output >= 1/2``
    (square loss) and the final loss.
    """
    counts = np.asarray(counts, dtype=int)
    K = counts.size
    n = int(counts.sum())
    y = np.repeat(np.arange(K), counts)
    w = np.ones(K) if class_weights is None else np.asarray(class_weights, float)
    rng = np.random.default_rng(seed)
    m = K if collapsed else n
    W = init * rng.normal(size=(K, dim))
    H = init * rng.normal(size=(dim, m))
    col = np.arange(K) if collapsed else y
    cw = (w * counts) if collapsed else w[y]  # weight of each column in the sum
    Y = np.eye(K)[:, col]
    T = int(steps)
    acc = np.empty((T + 1, K))
    out = np.empty((T + 1, K))
    for t in range(T + 1):
        Z = W @ H  # (K, m)
        pred = Z.argmax(0)
        correct = (pred == col).astype(float)
        if collapsed:
            acc[t] = correct
            out[t] = Z[np.arange(K), np.arange(K)]
        else:
            acc[t] = np.bincount(y, weights=correct, minlength=K) / counts
            out[t] = np.bincount(y, weights=Z[y, np.arange(n)], minlength=K) / counts
        if t == T:
            break
        if loss == "square":
            R = (Z - Y) * cw[None, :] * (2.0 / n)  # dLoss/dZ
        else:
            P = np.exp(Z - Z.max(0, keepdims=True))
            P /= P.sum(0, keepdims=True)
            R = (P - Y) * cw[None, :] / n
        gW = R @ H.T
        gH = W.T @ R
        W -= lr * gW
        H -= lr * gH
    sep = np.full(K, -1)
    half = np.full(K, -1)
    for k in range(K):
        bad = np.flatnonzero(acc[:, k] < 1.0)
        if bad.size == 0:
            sep[k] = 0
        elif bad[-1] < T:
            sep[k] = bad[-1] + 1
        hit = np.flatnonzero(out[:, k] >= 0.5)
        if hit.size:
            half[k] = hit[0]
    return {"accuracy": acc, "class_output": out, "separated_step": sep, "half_step": half,
            "counts": counts.tolist(), "class_weights": w.tolist(), "loss": loss,
            "collapsed": collapsed, "lr": lr, "init": init, "dim": dim, "seed": seed}
