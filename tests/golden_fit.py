"""Golden fits: what ``LastLayerClassifier.fit`` returns over a grid of settings.

The grid covers every weighting (names and explicit dict/array weights) x loss x
groups / no groups x input kind (in memory, ``.npy`` path, dask array) x
``d > n`` / ``d < n`` x binary / multiclass, wherever the combination is allowed
(out-of-core input fits square loss from sufficient statistics with ``d < n`` and
the weightings that need no row subsets).

``OPENBLAS_NUM_THREADS=1 python tests/golden_fit.py`` rewrites ``tests/data/golden_fit.npz``. Do that only
for a change that is meant to change the numbers, and say why in the commit: the
test ``tests/test_golden_fit.py`` holds every later change to these values.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).parent / "data" / "golden_fit.npz"
ATTRIBUTES = ("coef_", "intercept_", "alpha_", "class_weight_", "df_")
WEIGHTINGS = ("none", "balanced", "sqrt", "effective_number", "upsample", "downsample",
              "optimal_theory", "optimal", "tuned", "dict", "array")
LOSSES = ("square", "logistic")
SOURCES = ("memory", "npy", "dask")
SHAPES = {"wide": (36, 48), "tall": (90, 6)}  # (n, d): d > n and d < n
CLASSES = (2, 3)
OUT_OF_CORE_OK = ("none", "balanced", "sqrt", "effective_number", "upsample",
                  "optimal_theory", "optimal", "dict", "array")


def make_data(shape, n_classes, grouped, seed=0):
    """Imbalanced Gaussian classes (and two groups per class when ``grouped``)."""
    n, d = SHAPES[shape]
    rng = np.random.default_rng(seed + 17 * n_classes + 5 * d + grouped)
    priors = np.array([0.2, 0.8]) if n_classes == 2 else np.array([0.15, 0.3, 0.55])
    counts = np.maximum(np.round(priors * n).astype(int), 5)
    counts[-1] = n - counts[:-1].sum()
    y = np.repeat(np.arange(n_classes), counts)
    means = rng.normal(size=(n_classes, d)) * 1.5 / np.sqrt(d)
    X = means[y] + rng.normal(size=(n, d))
    groups = None
    if grouped:
        groups = (rng.random(n) < 0.3).astype(int)
        groups[:2] = [0, 1]
        X[:, 0] += 1.0 * groups
    perm = rng.permutation(n)
    X, y = X[perm], y[perm]
    if groups is not None:
        groups = groups[perm]
    return X, np.array(["abc"[k] for k in y]) if n_classes == 3 else y, groups


def cases():
    """Every allowed (weighting, loss, grouped, source, shape, n_classes)."""
    for weighting in WEIGHTINGS:
        for loss in LOSSES:
            for grouped in (False, True):
                for source in SOURCES:
                    for shape in SHAPES:
                        for K in CLASSES:
                            if source != "memory" and (
                                    loss != "square" or shape == "wide"
                                    or weighting not in OUT_OF_CORE_OK):
                                continue
                            if loss == "logistic" and weighting == "tuned" and shape == "wide":
                                continue  # 9 x 3 logistic fits per CV fold: seconds each
                            yield weighting, loss, grouped, source, shape, K


def case_key(case):
    return "-".join(str(c) for c in case)


def fit_case(case, workdir):
    """Fit one case and return the recorded attributes."""
    from lastlayer import LastLayerClassifier

    weighting, loss, grouped, source, shape, K = case
    X, y, groups = make_data(shape, K, grouped)
    units = np.unique(groups) if grouped else np.unique(y)
    if weighting == "dict":
        weighting = {units[0].item(): 3.0}
    elif weighting == "array":
        weighting = np.linspace(1.0, 2.0, units.size)[::-1]
    clf = LastLayerClassifier(weighting=weighting, loss=loss, random_state=0, n_subsets=3)
    if source == "memory":
        clf.fit(X, y, groups=groups)
    elif source == "npy":
        path = Path(workdir) / f"{case_key(case)}.npy"
        np.save(path, X)
        clf.fit(str(path), y, groups=groups)
    else:
        import dask.array as da
        clf.fit(da.from_array(X, chunks=(25, -1)), y, groups=groups)
    out = {a: np.asarray(getattr(clf, a), dtype=float) for a in ATTRIBUTES}
    out["weighting_info_"] = json.dumps(clf.weighting_info_, sort_keys=True, default=float)
    if grouped:
        out["group_weight_"] = np.asarray(clf.group_weight_, dtype=float)
    return out


def record(path=GOLDEN):
    arrays = {}
    with tempfile.TemporaryDirectory() as workdir:
        for case in cases():
            for name, value in fit_case(case, workdir).items():
                arrays[f"{case_key(case)}/{name}"] = np.asarray(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return len(arrays)


if __name__ == "__main__":
    print(f"recorded {record()} arrays in {GOLDEN}")
