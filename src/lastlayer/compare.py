"""Compare weighting schemes on repeated subsamples of a retraining set.

The library side of ``lastlayer compare``: fit every scheme on the same subsamples,
score each fit on a test set, and summarise mean and standard error per scheme.
"""

from __future__ import annotations

import sys

import numpy as np
from tqdm.auto import tqdm

from ._validation import check_subsample, warn_unseen_labels
from .estimator import LastLayerClassifier
from .metrics import classification_report, mean_and_sem

__all__ = ["compare_weightings", "stratified_subsample", "summarise_comparison"]


def stratified_subsample(y, n, rng, min_per_class=2):
    """Row indices of a subsample of ``n`` rows that keeps every class's share (at
    least ``min_per_class`` rows of each class that has them)."""
    classes, idx = np.unique(y, return_inverse=True)
    counts = np.bincount(idx)
    if n > y.size:
        raise ValueError(f"--subsample {n} exceeds the {y.size} training samples.")
    take = np.maximum(np.floor(counts / counts.sum() * n).astype(int),
                      np.minimum(min_per_class, counts))
    while take.sum() > n and take.max() > min_per_class:
        take[np.argmax(take)] -= 1
    while take.sum() < n:
        room = counts - take
        take[np.argmax(np.where(room > 0, counts, -1))] += 1
    return np.concatenate([rng.choice(np.flatnonzero(idx == c), t, replace=False)
                           for c, t in enumerate(take)])


def compare_weightings(train, test, weightings, *, repeats=10, subsample=None, loss="square",
                       seed=0, progress=True, use_groups=False):
    """Fit every weighting on repeated subsamples; per-repeat test metrics.

    Returns a dict ``{weighting: {"worst_class": [...], "balanced": [...],
    "per_class": [[...]], "class_weights": [[...]], "alpha": [...]}}``.
    """
    if subsample:
        check_subsample(subsample, train.y)
    rng = np.random.default_rng(seed)
    out = {w: {"worst_class": [], "balanced": [], "worst_group": [], "per_class": [],
               "class_weights": [], "alpha": [], "feasible": []} for w in weightings}
    warn_unseen_labels(test.y, np.unique(train.y), test.source)
    bar = tqdm(total=repeats * len(weightings), disable=not progress, desc="compare",
               file=sys.stderr)
    for r in range(repeats):
        rows = (stratified_subsample(train.y, subsample, rng) if subsample
                else np.arange(train.y.size))
        g = train.groups[rows] if (use_groups and train.groups is not None) else None
        for w in weightings:
            clf = LastLayerClassifier(weighting=w, loss=loss, random_state=seed + r)
            clf.fit(train.X[rows], train.y[rows], groups=g)
            rep = classification_report(test.y, clf.predict(test.X), groups=test.groups)
            o = out[w]
            o["worst_class"].append(rep["worst_class_accuracy"])
            o["balanced"].append(rep["balanced_accuracy"])
            if "worst_group_accuracy" in rep:
                o["worst_group"].append(rep["worst_group_accuracy"])
            o["per_class"].append([c["accuracy"] for c in rep["per_class"]])
            o["class_weights"].append(clf.class_weight_.tolist())
            o["alpha"].append(clf.alpha_)
            o["feasible"].append(clf.feasible_)
            bar.update()
    bar.close()
    return out


def summarise_comparison(results, weightings):
    """Mean and standard error of every metric of :func:`compare_weightings`.

    Returns ``(summary, rows)``: a JSON-ready dict per weighting (the ``weightings``
    object of ``lastlayer compare --json``) and table rows (scheme, worst-class and
    balanced accuracy as "mean ± sem", mean alpha, fraction feasible).
    """
    rows, summary = [], {}

    def sem(v):  # one repeat: no standard error (null in JSON), not a spread of 0
        v = np.atleast_1d(v).astype(float)
        return None if np.isnan(v).all() else (v.tolist() if v.size > 1 else float(v[0]))

    def shown(m, s):
        return f"{m:.3f}" if s is None else f"{m:.3f} ± {s:.3f}"

    for w in weightings:
        o = results[w]
        wm, ws = mean_and_sem(o["worst_class"])
        bm, bs = mean_and_sem(o["balanced"])
        pcm, pcs = mean_and_sem(np.asarray(o["per_class"]))
        summary[w] = {"worst_class_accuracy_mean": float(wm), "worst_class_accuracy_sem": sem(ws),
                      "balanced_accuracy_mean": float(bm), "balanced_accuracy_sem": sem(bs),
                      "per_class_accuracy_mean": np.atleast_1d(pcm).tolist(),
                      "per_class_accuracy_sem": (None if sem(pcs) is None
                                                 else np.atleast_1d(pcs).tolist()),
                      "feasible_fraction": float(np.mean(o["feasible"])), "runs": o}
        if o["worst_group"]:
            gm, gs = mean_and_sem(o["worst_group"])
            summary[w].update(worst_group_accuracy_mean=float(gm), worst_group_accuracy_sem=sem(gs))
        rows.append([w, shown(wm, sem(ws)), shown(bm, sem(bs)),
                     f"{np.mean(o['alpha']):.2g}", f"{np.mean(o['feasible']):.0%}"])
    return summary, rows
