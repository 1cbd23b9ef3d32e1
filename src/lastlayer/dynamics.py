"""Training dynamics of a last layer on fixed features: what loss weights do over time.

Square loss: exact gradient descent
-----------------------------------
Rows ``x_i`` (features used as given), labels ``y_i`` in ``[0, K)``, one-hot targets
``t_i = e_{y_i}``, row weights ``v_i = s_i omega_{y_i}`` (sample weight times class
weight), ``n = sum_i s_i``. The objective is the one of :mod:`lastlayer.solvers`,

.. math::

    L(W, b) = \\frac{1}{n} \\sum_i v_i \\lVert t_i - W^\\top x_i - b \\rVert^2
        + \\alpha \\lVert W \\rVert_F^2 ,

trained by plain full-batch gradient descent ``theta <- theta - lr * grad L`` from
``W = 0, b = 0``. The intercept is learned jointly (it is *not* profiled out): write
``x~_i = [x_i, 1]`` and ``Theta = [W; b]``. Then ``grad L = H Theta - c`` with the
Hessian

.. math::

    H = \\frac{2}{n} \\sum_i v_i \\tilde x_i \\tilde x_i^\\top + 2 \\alpha R,\\qquad
    c = \\frac{2}{n} \\sum_i v_i \\tilde x_i t_i^\\top ,

(``R`` the identity with a zero for the intercept; ``sum_i v_i x~_i x~_i^T`` is the
weighted second-moment matrix, built from :func:`lastlayer.solvers.sufficient_statistics`).
With ``H = Q diag(s) Q^T`` the iterate after ``t`` steps is exactly

.. math::

    \\Theta_t = Q\\, \\mathrm{diag}(g_t(s))\\, Q^\\top c,\\qquad
    g_t(s) = \\frac{1 - (1 - \\mathrm{lr}\\, s)^t}{s}\\quad (g_t(0) = \\mathrm{lr}\\, t),

i.e. along an eigen-direction with eigenvalue ``s`` the fit reaches the fraction
``1 - (1 - lr s)^t`` of its least-squares value (theory.md section 7; ``s`` is an
eigenvalue of the Hessian, twice the weighted Gram over ``n``). Gradient flow at time
``lr t`` is ``g(s) = (1 - exp(-lr t s)) / s``. ``c`` has no component in the null
space of ``H``, so the iterates never leave its range (they tend to the minimum-norm
solution when ``alpha = 0``). GD is stable iff ``lr < 2 / s_max``.

One eigendecomposition of the ``(d+1) x (d+1)`` matrix ``H`` gives the coefficients
at any step in ``O(d K)`` (eigen-coordinates; ``O(d^2 K)`` back in feature
coordinates) and the scores of ``m`` rows in ``O(m d K)`` per step after one
``O(m d^2)`` projection.

Early stopping and ridge: both are spectral filters of ``H_0 = H(alpha=0)``: ridge
with penalty ``alpha`` on every coordinate applies ``1 / (s + 2 alpha)``, GD applies
``g_t(s)``; both are ``~ 1/s`` for ``s >> 1/(lr t)`` and both are flat for small
``s`` (``lr t`` versus ``1 / (2 alpha)``). Matching the flat parts gives the
correspondence used here, ``alpha ~ 1 / (2 lr t)`` (:func:`ridge_equivalent_alpha`).
Per direction the gradient-flow filter is ``(1 - e^-x)(1 + 1/x)`` times the ridge
filter (``x = lr t s``), a factor in ``[1, 1.30)``; discrete GD with
``lr <= 1/s_max``: ``[1, 2]``. The library's ridge leaves the intercept unpenalised
while GD starts it at zero; ``benchmarks/dynamics_square.py`` measures the difference
on real features (docs/dynamics.md).

Leave-one-out along the GD path
-------------------------------
The fitted training scores are a linear smoother of the targets: ``F_t = S_t T`` with
``S_t = (2/n) X~ g_t(H) X~^T D``, ``D = diag(v)``, leverage
``h_ii(t) = (2 v_i / n) x~_i^T g_t(H) x~_i``. What is exact:

* *Imputation LOO* (exact for every ``t``): the prediction ``f_i^{-i}`` such that
  running the same GD with row ``i``'s target replaced by ``f_i^{-i}`` predicts
  ``f_i^{-i}`` at row ``i`` is ``t_i - (t_i - f_i) / (1 - h_ii(t))``. This is what
  :meth:`SquareLossGD.loo_decision_function` returns (tested against explicit GD).
* *Refit LOO* (GD rerun with row ``i`` deleted, i.e. ``v_i = 0``, same ``n``,
  ``lr``, ``alpha`` and other weights): it equals GD in which row ``i``'s target is
  its *current* own prediction at every step, while the imputation LOO keeps one
  fixed target. The two coincide in the converged limit (``t -> inf`` with ``alpha > 0``,
  where GD is ridge and the shortcut is the exact ridge LOO), and at ``t = 1`` the
  refit residual is ``r_i + h_ii t_i`` instead of ``r_i / (1 - h_ii)``. In between
  the shortcut is an approximation of the refit LOO; the tests and the benchmark
  measure the gap.

Cross-entropy, the max-margin limit and the unconstrained-features model live in
:mod:`lastlayer.dynamics_ce` and :mod:`lastlayer.dynamics_ssm`.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ._core.stats import weighted_gram
from ._validation import check_real
from .solvers import solve_ridge, sufficient_statistics
from .weights import WEIGHTINGS, WeightingProblem, compute_weighting, normalise_weights

__all__ = [
    "SquareLossGD",
    "gd_filter",
    "ridge_equivalent_alpha",
    "class_accuracy",
    "class_weights_for",
    "dynamics_report",
    "DYNAMICS_WEIGHTINGS",
]

_EPS = float(np.finfo(np.float64).eps)

#: Named weightings usable for the dynamics (schemes that return one weight per class;
#: ``downsample`` (subsets) and ``tuned`` (a validation score) are not).
DYNAMICS_WEIGHTINGS = tuple(w for w in WEIGHTINGS if w not in ("downsample", "tuned"))


def _check_steps(steps, integer=True):
    arr = np.atleast_1d(np.asarray(steps, dtype=np.float64))
    if arr.ndim != 1 or arr.size < 1 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError("The 'steps' parameter must be a non-empty 1-D array of non-negative "
                         f"finite numbers. Got {steps!r} instead.")
    if integer and np.any(arr != np.round(arr)):
        raise ValueError("The 'steps' parameter must contain integers for gradient descent "
                         f"(use flow=True for continuous time). Got {steps!r} instead.")
    return arr


def gd_filter(s, steps, lr, flow=False):
    """Spectral filter ``g_t(s)`` of GD (or gradient flow) from zero.

    Parameters
    ----------
    s : array of shape (p,)
        Non-negative eigenvalues of the Hessian.
    steps : array of shape (S,)
        Numbers of steps ``t`` (any non-negative reals with ``flow=True``).
    lr : float
        Step size; gradient flow is evaluated at time ``lr * t``.
    flow : bool
        Gradient flow instead of discrete GD.

    Returns
    -------
    ndarray of shape (S, p)
        ``(1 - (1 - lr s)^t) / s`` (GD) or ``(1 - exp(-lr t s)) / s`` (flow), with the
        limit ``lr t`` at ``s = 0``; computed without cancellation for small ``lr s``.
    """
    s = np.asarray(s, dtype=np.float64)
    t = _check_steps(steps, integer=not flow)[:, None]
    x = lr * s[None, :]
    out = np.empty((t.shape[0], s.size))
    small = x <= 0.5
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if flow:
            val = -np.expm1(-t * x)
        else:
            # 1 - (1 - x)^t = -expm1(t log1p(-x)) for x <= 1/2; direct power otherwise
            log_q = np.log1p(-np.minimum(x, 0.5))
            val = np.where(small, -np.expm1(t * log_q), 1.0 - np.power(1.0 - x, t))
        pos = s[None, :] > 0
        out = np.where(pos, val / np.where(pos, s[None, :], 1.0), lr * t)
    return out


def ridge_equivalent_alpha(steps, lr):
    """The ridge ``alpha ~ 1 / (2 lr t)`` matched to ``t`` GD steps (inf at ``t = 0``)."""
    t = _check_steps(steps, integer=False)
    with np.errstate(divide="ignore"):
        return 1.0 / (2.0 * lr * t)


def class_accuracy(scores, codes, n_classes):
    """Per-class accuracy of argmax predictions (ties go to the lowest class index).

    ``scores`` is (..., m, K); returns (..., K), NaN for classes absent from ``codes``.
    """
    pred = np.argmax(scores, axis=-1)
    out = np.full(pred.shape[:-1] + (n_classes,), np.nan)
    for k in range(n_classes):
        rows = codes == k
        if rows.any():
            out[..., k] = np.mean(pred[..., rows] == k, axis=-1)
    return out


def _class_mean(values, codes, n_classes):
    """Mean over rows of each class of ``values`` (..., m) -> (..., K)."""
    out = np.full(values.shape[:-1] + (n_classes,), np.nan)
    for k in range(n_classes):
        rows = codes == k
        if rows.any():
            out[..., k] = values[..., rows].mean(axis=-1)
    return out


def _check_codes(y, n_rows, n_classes, name="y"):
    y = np.asarray(y)
    if y.shape != (n_rows,) or y.dtype.kind not in "iub":
        raise ValueError(f"The '{name}' parameter must be a 1-D integer array of length "
                         f"{n_rows}. Got shape {y.shape}, dtype {y.dtype} instead.")
    y = y.astype(np.intp)
    if n_classes is None:
        n_classes = int(y.max()) + 1
    if y.min() < 0 or y.max() >= n_classes:
        raise ValueError(f"The '{name}' parameter must contain integers in [0, {n_classes}).")
    return y, int(n_classes)


def _as_float_matrix(X, name="X"):
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1 or not np.all(np.isfinite(X)):
        raise ValueError(f"The '{name}' parameter must be a finite 2-D array with at least "
                         f"one row and column. Got shape {X.shape} instead.")
    return X


class SquareLossGD:
    """Exact full-batch GD on the class-weighted square loss, at any set of steps.

    Parameters
    ----------
    X : array of shape (n, d)
    y : int array of shape (n,)
        Class codes in ``[0, n_classes)``.
    n_classes : int, optional
        Default ``max(y) + 1``.
    class_weights : array of shape (K,), optional
        Loss weight ``omega_k`` per class (not rescaled here). Default ones.
    sample_weight : array of shape (n,), optional
        ``s_i``; ``n = sum s_i``.
    alpha : float, default=0
        Ridge on ``W`` (the intercept is not penalised).

    Attributes
    ----------
    eigenvalues : ndarray of shape (d+1,)
        Eigenvalues ``s`` of the Hessian ``H`` (ascending, clipped at 0).
    eigenvectors : ndarray of shape (d+1, d+1)
    max_stable_lr : float
        ``2 / s_max``: GD diverges for ``lr >= max_stable_lr``.
    """

    def __init__(self, X, y, n_classes=None, *, class_weights=None, sample_weight=None,
                 alpha=0.0):
        X = _as_float_matrix(X)
        n_rows, d = X.shape
        y, K = _check_codes(y, n_rows, n_classes)
        omega = np.ones(K) if class_weights is None else np.asarray(class_weights, float)
        if omega.shape != (K,) or not np.all(np.isfinite(omega)) or np.any(omega < 0):
            raise ValueError(f"The 'class_weights' parameter must hold {K} non-negative "
                             f"finite weights. Got {class_weights!r} instead.")
        self.alpha = check_real(alpha, "alpha", low=0)
        stats = sufficient_statistics(X, y, K, sample_weight)
        sw = np.ones(n_rows) if sample_weight is None else np.asarray(sample_weight, float)
        n = float(stats.weight_sums.sum())
        M = np.empty((d + 1, d + 1))
        M[:d, :d] = weighted_gram(stats, omega)
        M[:d, d] = M[d, :d] = omega @ stats.sums
        M[d, d] = omega @ stats.weight_sums
        if not M[d, d] > 0:
            raise ValueError("The class weights give zero total weight to the rows.")
        H = (2.0 / n) * M
        H[np.arange(d), np.arange(d)] += 2.0 * self.alpha
        H = 0.5 * (H + H.T)
        c = np.empty((d + 1, K))
        c[:d] = stats.sums.T * omega[None, :]  # sum_{i in k} v_i x_i, one column per class
        c[d] = omega * stats.weight_sums
        c *= 2.0 / n
        s, Q = scipy.linalg.eigh(H, check_finite=False)
        tol = 10.0 * (d + 1) * _EPS * max(float(s[-1]), 0.0)
        null = s <= tol
        s = np.where(null, 0.0, s)
        self.eigenvalues, self.eigenvectors = s, Q
        self.coord = Q.T @ c  # c in eigen-coordinates; zero on the (numerical) null space
        self.coord[null] = 0.0
        self.hessian, self.rhs = H, c
        self.n_classes, self.n, self.n_features = K, n, d
        self.class_weights = omega
        self.max_stable_lr = 2.0 / float(s[-1]) if s[-1] > 0 else np.inf
        self._X, self._y = X, y
        self._v = sw * omega[y]
        self._P = None

    # ------------------------------------------------------------------ filters
    def _filter(self, steps, lr, flow):
        lr = check_real(lr, "lr", low=0, closed="neither")
        if not flow and lr >= self.max_stable_lr:
            raise ValueError(f"lr={lr:g} makes gradient descent diverge: it must be below "
                             f"2 / s_max = {self.max_stable_lr:.6g} (s_max the largest "
                             "eigenvalue of the Hessian).")
        return gd_filter(self.eigenvalues, steps, lr, flow)

    def coef(self, steps, lr, *, flow=False):
        """``(W, b)`` after each of ``steps``: arrays (S, d, K) and (S, K)."""
        G = self._filter(steps, lr, flow)
        Theta = np.einsum("ij,sjk->sik", self.eigenvectors, G[:, :, None] * self.coord[None])
        return Theta[:, :-1], Theta[:, -1]

    def _project(self, X):
        X = _as_float_matrix(X)
        if X.shape[1] != self.n_features:
            raise ValueError(f"X has {X.shape[1]} features; the fit has {self.n_features}.")
        Q = self.eigenvectors
        return X @ Q[:-1] + Q[-1][None, :]

    def _train_projection(self):
        if self._P is None:
            self._P = self._project(self._X)
        return self._P

    def _scores(self, P, G):
        return np.einsum("mj,sjk->smk", P, G[:, :, None] * self.coord[None], optimize=True)

    def decision_function(self, X, steps, lr, *, flow=False):
        """Scores ``W^T x + b`` of the rows of ``X`` (None: the training rows): (S, m, K)."""
        P = self._train_projection() if X is None else self._project(X)
        return self._scores(P, self._filter(steps, lr, flow))

    def leverage(self, steps, lr, *, flow=False):
        """Diagonal of the smoother ``S_t``: ``h_ii(t)``, array (S, n)."""
        P = self._train_projection()
        G = self._filter(steps, lr, flow)
        return (G @ (P * P).T) * (2.0 * self._v / self.n)[None, :]

    def loo_decision_function(self, steps, lr, *, flow=False):
        """Imputation leave-one-out scores ``t_i - (t_i - f_i) / (1 - h_ii)``: (S, n, K).

        Exact for the imputation definition (module docstring); rows with
        ``h_ii >= 1`` (only possible with ``lr > 1 / s_max``) get NaN scores.
        """
        P = self._train_projection()
        G = self._filter(steps, lr, flow)
        F = self._scores(P, G)
        h = (G @ (P * P).T) * (2.0 * self._v / self.n)[None, :]
        T = np.eye(self.n_classes)[self._y][None]
        with np.errstate(divide="ignore", invalid="ignore"):
            loo = T - (T - F) / (1.0 - h)[:, :, None]
        loo[~np.isfinite(loo) | (h >= 1.0)[:, :, None]] = np.nan
        return loo

    def class_loss(self, steps, lr, *, flow=False):
        """Unweighted mean square error ``||e_y - f||^2`` per class on the training rows."""
        F = self.decision_function(None, steps, lr, flow=flow)
        T = np.eye(self.n_classes)[self._y][None]
        return _class_mean(((T - F) ** 2).sum(-1), self._y, self.n_classes)


# -------------------------------------------------------------------------- weights
def class_weights_for(weighting, X, codes, n_classes, *, alpha=0.0, seed=0):
    """Per-class loss weights with mean one over samples.

    ``weighting`` is a name of :data:`DYNAMICS_WEIGHTINGS` (computed with
    :func:`lastlayer.weights.compute_weighting`, the leverage hook from
    :func:`lastlayer.solvers.solve_ridge` at ``alpha``) or a sequence of ``K``
    positive weights (rescaled to mean one over samples). Returns (weights, info).
    """
    counts = np.bincount(codes, minlength=n_classes).astype(float)
    if np.any(counts == 0):
        raise ValueError("every class needs at least one training row")
    if not isinstance(weighting, str):
        w = np.asarray(weighting, dtype=float)
        if w.shape != (n_classes,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(f"explicit weights must be {n_classes} positive numbers; got "
                             f"{weighting!r}")
        return normalise_weights(w, counts), {"feasible": True}
    if weighting not in DYNAMICS_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {list(DYNAMICS_WEIGHTINGS)} or "
                         f"{n_classes} comma-separated numbers; got {weighting!r}")
    X = np.asarray(X, dtype=np.float64)
    stats = sufficient_statistics(X, codes, n_classes)
    targets = np.eye(n_classes)

    def leverage(cell_w):
        sol = solve_ridge(stats, cell_w, alpha, targets, solver="eigh")
        return sol.cell_leverage, sol.df

    problem = WeightingProblem(
        unit_counts=counts, target=np.full(n_classes, 1.0 / n_classes),
        unit_of_cell=np.arange(n_classes), n_features=X.shape[1], alpha=float(alpha),
        leverage=leverage, X=X, unit_labels=codes, stats=stats, cell_targets=targets,
        random_state=np.random.default_rng(seed))
    out = compute_weighting(weighting, problem)
    return (normalise_weights(out.weights, counts),
            {"feasible": bool(out.feasible), **({"df": out.df} if out.df is not None else {})})


# --------------------------------------------------------------------------- report
def _worst(acc):
    with np.errstate(invalid="ignore"):
        return np.nanmin(acc, axis=-1)


def dynamics_report(X, y, *, X_test=None, y_test=None, weighting="none", loss="square",
                    lr, steps, alpha=0.0, seed=0, cv_folds=5):
    """Per-class curves of full-batch GD on the weighted loss (the ``lastlayer dynamics``
    command as a function). Returns a JSON-ready dict (``docs/cli.md``, section dynamics).

    Square loss: exact (:class:`SquareLossGD`), with the imputation LOO accuracy per
    class. Logistic loss: explicit GD (:func:`lastlayer.dynamics_ce.logistic_gd`); exact
    LOO would need ``n`` reruns of the path, so the step is chosen by stratified
    ``cv_folds``-fold cross-validation instead (``cv_class_accuracy``) and
    ``loo_class_accuracy`` is None. ``best_step`` maximises the LOO (or CV) worst-class
    accuracy; ties go to the earliest step.
    """
    from .dynamics_ce import logistic_gd

    X = _as_float_matrix(X)
    classes, codes = np.unique(np.asarray(y), return_inverse=True)
    K = classes.size
    if K < 2:
        raise ValueError("the training labels must contain at least 2 classes")
    steps_arr = _check_steps(steps)
    order = np.argsort(steps_arr, kind="stable")
    if np.any(order != np.arange(order.size)):
        raise ValueError("steps must be given in increasing order")
    if loss not in ("square", "logistic"):
        raise ValueError(f"loss must be 'square' or 'logistic'; got {loss!r}")
    cw, winfo = class_weights_for(weighting, X, codes, K, alpha=alpha, seed=seed)
    test_codes = None
    if X_test is not None:
        lookup = {c: i for i, c in enumerate(classes.tolist())}
        unknown = sorted({v for v in np.asarray(y_test).tolist() if v not in lookup}, key=str)
        if unknown:
            raise ValueError(f"test labels {unknown} do not occur in the training labels")
        test_codes = np.array([lookup[v] for v in np.asarray(y_test).tolist()], dtype=np.intp)
    out = {"loss": loss, "weighting": weighting if isinstance(weighting, str) else "explicit",
           "lr": float(lr), "alpha": float(alpha), "n_train": int(X.shape[0]),
           "n_features": int(X.shape[1]), "classes": classes.tolist(),
           "class_counts": np.bincount(codes, minlength=K).tolist(),
           "class_weights": cw.tolist(), "weighting_info": winfo,
           "steps": [int(s) for s in steps_arr]}
    if loss == "square":
        gd = SquareLossGD(X, codes, K, class_weights=cw, alpha=alpha)
        train = class_accuracy(gd.decision_function(None, steps_arr, lr), codes, K)
        loo = class_accuracy(gd.loo_decision_function(steps_arr, lr), codes, K)
        out["train_class_loss"] = gd.class_loss(steps_arr, lr).tolist()
        out["max_stable_lr"] = gd.max_stable_lr
        out["ridge_equivalent_alpha"] = [None if not np.isfinite(a) else float(a)
                                         for a in ridge_equivalent_alpha(steps_arr, lr)]
        if X_test is not None:
            test = class_accuracy(gd.decision_function(X_test, steps_arr, lr), test_codes, K)
        select, crit = loo, "loo"
    else:
        res = logistic_gd(X, codes, K, class_weights=cw, lr=lr, steps=steps_arr, alpha=alpha,
                          X_test=X_test, y_test=test_codes)
        train = res["train_class_accuracy"]
        out["train_class_loss"] = res["train_class_loss"].tolist()
        test = res.get("test_class_accuracy")
        loo = None
        select, crit = _cv_logistic(X, codes, K, cw, lr, steps_arr, alpha, cv_folds, seed), "cv"
        out["cv_class_accuracy"] = select.tolist()
        out["cv_folds"] = cv_folds
    out["train_class_accuracy"] = train.tolist()
    out["loo_class_accuracy"] = None if loo is None else loo.tolist()
    if X_test is not None:
        out["test_class_accuracy"] = test.tolist()
    worst = _worst(select)
    best = int(np.nanargmax(worst)) if np.any(np.isfinite(worst)) else 0
    out["selection"] = crit
    out["selected_worst_class_accuracy"] = worst.tolist()
    out["best_step"] = int(steps_arr[best])
    out["best_index"] = best
    return out


def _cv_logistic(X, codes, K, cw, lr, steps, alpha, folds, seed):
    """Stratified k-fold per-class accuracy along the logistic GD path: (S, K)."""
    from .dynamics_ce import logistic_gd
    rng = np.random.default_rng(seed)
    fold = np.empty(codes.size, dtype=np.intp)
    for k in range(K):
        rows = rng.permutation(np.flatnonzero(codes == k))
        fold[rows] = np.arange(rows.size) % folds
    correct = np.zeros((steps.size, K))
    for f in range(folds):
        tr, te = fold != f, fold == f
        if not te.any() or np.unique(codes[tr]).size < K:
            continue
        res = logistic_gd(X[tr], codes[tr], K, class_weights=cw, lr=lr, steps=steps,
                          alpha=alpha, X_test=X[te], y_test=codes[te])
        counts = np.bincount(codes[te], minlength=K)
        correct += np.nan_to_num(res["test_class_accuracy"]) * counts[None, :]
    return correct / np.bincount(codes, minlength=K)[None, :]
