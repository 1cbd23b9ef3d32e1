"""Which selection rule keeps the best candidate? Cheap low-dimensional tasks.

For each task, size and repeat, ``LastLayerClassifier()`` (``loss="auto"``) is fitted
once: its ``selection_`` holds every candidate's per-class leave-one-out accuracy.
Each candidate is then refitted alone and scored on a balanced test set, so every
rule that picks a candidate from the leave-one-out record can be scored offline:

* ``shrunk``: highest worst-class estimate ``min_c (hits_c + 1) / (n_c + 2)``
  (the library's rule with more than two classes; ties keep the earlier candidate);
* ``raw``: highest raw worst-class leave-one-out accuracy;
* ``balanced``: highest mean leave-one-out accuracy;
* ``postmin``: highest posterior mean of the minimum (Beta(hits + 1, misses + 1));
* ``cvarK``: mean of the worst ``ceil(C / K)`` shrunk class accuracies;
* ``marginM``: the candidates in order, a later one replacing the kept one when
  higher by more than M binomial standard errors of the difference (rules of the
  first versions of the selection layer);
* ``cand-oracle``: the best candidate on the test set (an upper bound).

Tasks: scikit-learn wine (d = 13, K = 3), breast cancer (d = 30, K = 2), digits
(d = 64, K = 10), PCA-16 of Fashion-MNIST pixels (K = 10), each made long-tailed
(counts below), two retraining sizes each; test rows: the rest, balanced.

    python benchmarks/selection_rules.py --repeats 8 --out benchmarks/results/selection_rules.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import write_json  # noqa: E402

from lastlayer import LastLayerClassifier  # noqa: E402
from lastlayer.datasets import load_fashion_mnist, long_tail_counts  # noqa: E402


def per_class_acc(y, pred, K):
    return np.array([np.mean(pred[y == k] == k) for k in range(K)])


def split_counts(X, y, rng, counts):
    tr, te = [], []
    for k, c in enumerate(counts):
        idx = rng.permutation(np.flatnonzero(y == k))
        tr.append(idx[:c])
        te.append(idx[c:])
    m = min(len(t) for t in te)
    tr, te = np.concatenate(tr), np.concatenate([t[:m] for t in te])
    return X[tr], y[tr], X[te], y[te]


def _standardised(X):
    return (X - X.mean(0)) / X.std(0)


def task_wine(rng, n_max):
    from sklearn.datasets import load_wine
    X, y = load_wine(return_X_y=True)
    return split_counts(_standardised(X), y, rng, [n_max, n_max // 2, max(3, n_max // 8)])


def task_breast_cancer(rng, n_max):
    from sklearn.datasets import load_breast_cancer
    X, y = load_breast_cancer(return_X_y=True)
    return split_counts(_standardised(X), y, rng, [max(4, n_max // 10), n_max])


def task_digits(rng, n_max):
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return split_counts(X / 16.0, y, rng, long_tail_counts(10, n_max, 20))


def task_fmnist_pca16(rng, n_max):
    from sklearn.decomposition import PCA
    X, y = load_fashion_mnist("train")
    X = X.reshape(len(X), -1)[:20000] / 255.0
    Xp = PCA(16, random_state=0).fit_transform(X)
    return split_counts(Xp, y[:20000], rng, long_tail_counts(10, n_max, 20))


TASKS = {"wine": (task_wine, [20, 40]), "breast_cancer": (task_breast_cancer, [60, 200]),
         "digits": (task_digits, [60, 150]), "fmnist_pca16": (task_fmnist_pca16, [100, 400])}


def _candidate(name):
    loss, rest = name.split("/")
    weighting, _, adjust = rest.partition("+")
    return loss, weighting, adjust


def run_cell(task, n_max, repeats, seed):
    records = []
    for r in range(repeats):
        X, y, Xt, yt = task(np.random.default_rng(seed + r), n_max)
        K = len(np.unique(y))
        prior = np.bincount(y, minlength=K) / len(y)
        auto = LastLayerClassifier().fit(X, y)
        rec = {"auto": per_class_acc(yt, auto.predict(Xt), K).tolist(), "cands": {}}
        for row in auto.selection_:
            loss, weighting, adjust = _candidate(row["candidate"])
            c = LastLayerClassifier(loss=loss, weighting=weighting).fit(X, y)
            sc = c.decision_function(Xt)
            sc = np.c_[np.zeros(len(sc)), sc] if K == 2 else sc
            sc = sc - np.log(prior) if adjust == "logit" else sc
            rec["cands"][row["candidate"]] = {
                "test": per_class_acc(yt, sc.argmax(1), K).tolist(),
                "loo": row["loo_accuracy"], "rows": np.bincount(y, minlength=K).tolist()}
        records.append(rec)
    return records


def rule_value(c, rule, rng):
    acc, n = np.array(c["loo"], float), np.array(c["rows"], float)
    h = acc * n
    s = (h + 1) / (n + 2)
    if rule == "raw":
        return acc.min()
    if rule == "shrunk":
        return s.min()
    if rule == "balanced":
        return acc.mean()
    if rule == "postmin":
        return rng.beta(h[:, None] + 1, n[:, None] - h[:, None] + 1, (len(n), 400)).min(0).mean()
    if rule.startswith("cvar"):
        return np.sort(s)[:max(1, int(np.ceil(len(n) / int(rule[4:]))))].mean()
    raise KeyError(rule)


def _worst(c):
    """Shrunk worst-class estimate and its binomial standard error."""
    n = np.array(c["rows"], float)
    s = (np.array(c["loo"]) * n + 1) / (n + 2)
    k = int(np.argmin(s))
    return s[k], np.sqrt(s[k] * (1 - s[k]) / (n[k] + 2))


def margin_rule(cands, names, margin):
    """Walk the candidates in order; a later one replaces the kept one when its shrunk
    worst estimate is higher by more than ``margin`` times the standard error of the
    difference (binomial SEs of the two worst classes)."""
    best = names[0]
    for nm in names[1:]:
        (v, se), (b, bse) = _worst(cands[nm]), _worst(cands[best])
        if v > b and v - b > margin * np.hypot(se, bse):
            best = nm
    return best


RULES = ["shrunk", "raw", "balanced", "postmin", "cvar3", "cvar2"]
MARGINS = [0.25, 0.5, 1.0]


def score_rules(records, rng):
    names = list(records[0]["cands"])
    worst = lambda r, nm: min(r["cands"][nm]["test"])  # noqa: E731
    out = {f"fixed:{nm}": float(np.mean([worst(r, nm) for r in records])) for nm in names}
    out["auto"] = float(np.mean([min(r["auto"]) for r in records]))
    out["cand-oracle"] = float(np.mean([max(worst(r, nm) for nm in names) for r in records]))
    for m in MARGINS:
        out[f"margin{m:g}"] = float(np.mean([worst(r, margin_rule(r["cands"], names, m))
                                             for r in records]))
    for rule in RULES:
        out[rule] = float(np.mean([worst(r, max(names, key=lambda nm: rule_value(
            r["cands"][nm], rule, rng))) for r in records]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1000, help="repeat r uses seed + r")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    cells, table = {}, {}
    for name in args.tasks.split(","):
        task, sizes = TASKS[name]
        for n_max in sizes:
            key = f"{name}:{n_max}"
            cells[key] = run_cell(task, n_max, args.repeats, args.seed)
            table[key] = score_rules(cells[key], rng)
            print(key, "  ".join(f"{k}={v:.3f}" for k, v in table[key].items()), flush=True)
    means = {k: float(np.mean([t[k] for t in table.values()])) for k in next(iter(table.values()))}
    print("mean over cells (worst-class test accuracy of the kept candidate):")
    for k, v in sorted(means.items(), key=lambda kv: -kv[1]):
        print(f"  {k:28s} {v:.4f}")
    if args.out:
        write_json(args.out, {"command": " ".join(sys.argv), "repeats": args.repeats,
                              "seed": args.seed, "cells": table, "mean": means,
                              "records": cells})


if __name__ == "__main__":
    main()
