"""Square-loss alpha by the selection metric instead of leave-one-out squared error?

For every draw of the selection suite (``selection_suite.py``'s tasks, sizes, seeds
and draws), this fits the default ``LastLayerClassifier`` and each of its square-loss
candidates alone (``weighting`` in optimal, balanced, power; ``loss="square"``: the
weights and the alpha the library chose by leave-one-out squared error, or GCV where
``n > 10 d``). With each candidate's weights held fixed it recomputes, with numpy (an
SVD of the weighted, centred rows), the exact leave-one-out scores of the weighted
ridge (intercept unpenalised) and the test worst-class (worst-group) accuracy at every
alpha of the library's grid, and records them with the default's cross-entropy
candidates (their estimates, and their test scores from a refit of each alone).

``--analyse`` then scores alpha rules on those records (each rule picks a grid alpha
per square-loss candidate, then the candidate with the best leave-one-out estimate is
kept, as the library does; ties to the earlier candidate):

* ``library``: the library's own alpha (the reference);
* ``mse``: the smallest weighted leave-one-out squared error (exact everywhere);
* ``metric``: the largest leave-one-out estimate of the selection metric (worst unit,
  shrunk counts; margins with two classes: ``lastlayer``'s criterion for candidates);
* ``worst_mse``: the smallest leave-one-out squared error of the worst unit;
* ``mean_unit_mse``, ``unit_mse_p2``, ``unit_mse_p4``: the mean of the per-unit
  leave-one-out squared errors to the power 1, 2, 4 (from balanced to worst);
* ``shrunk_worst_2``, ``shrunk_worst_5``: ``worst_mse`` with each unit's error shrunk
  toward the pooled one by 2 or 5 pseudo-rows.

Usage::

    PYTHONPATH=src python benchmarks/alpha_rules.py --repeats 10 --out A.json \
        --tasks sk_wine_lt3,fm_frozen_lt10
    python benchmarks/alpha_rules.py --analyse A.json B.json \
        --suite benchmarks/results/selection_suite.json --summary S.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import scipy.stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import selection_suite as suite  # noqa: E402
from _record import write_json  # noqa: E402

ALPHA_GRID = np.logspace(-8, 1, 46)  # lastlayer._fit.ALPHA_GRID (times the top variance)
CANDIDATES = ("optimal", "balanced", "power")


def loo_path(X, T, w, alphas):
    """Exact leave-one-out scores (L, n, K) and squared errors of the weighted ridge
    ``(1/n) sum_i w_i ||t_i - W^T x_i - b||^2 + alpha ||W||^2`` (mean-one weights),
    and a function giving ``(W, b)`` at one alpha."""
    n = X.shape[0]
    V = w.sum()
    mu = w @ X / V
    tbar = w @ T / V
    sw = np.sqrt(w)
    A = (X - mu) * sw[:, None]
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    keep = s > s[0] * 1e-10
    U, s, Vt = U[:, keep], s[keep], Vt[keep]
    B = U.T @ ((T - tbar) * sw[:, None])  # (r, K)
    out = np.empty((alphas.size, n, T.shape[1]))
    for k, a in enumerate(alphas):
        g = s**2 / (s**2 + n * a)
        fit = tbar + (U @ (g[:, None] * B)) / sw[:, None]
        h = (U**2) @ g + w / V
        out[k] = T - (T - fit) / np.maximum(1.0 - h, 1e-12)[:, None]

    def coef(a):
        W = Vt.T @ ((s / (s**2 + n * a))[:, None] * B)
        return W, tbar - mu @ W
    return out, coef


def estimate(scores, y, units, U, binary):
    """lastlayer's worst-unit estimate from leave-one-out scores: shrunk counts, or
    margins (Phi(mean / pooled sd)) with two classes as the two units."""
    rows = np.bincount(units, minlength=U).astype(float)
    if binary and np.all(np.isfinite(scores)):
        m = scores[np.arange(y.size), y] - scores[np.arange(y.size), 1 - y]
        mu = np.bincount(units, weights=m, minlength=U) / rows
        var = ((m - mu[units]) ** 2).sum() / max(y.size - U, 1.0)
        hits = rows * scipy.stats.norm.cdf(mu / max(np.sqrt(var), 1e-300))
    else:
        hits = np.bincount(units, weights=np.argmax(scores, 1) == y, minlength=U)
    return float(((hits + 1) / (rows + 2)).min())


def pick(values, prefer="max"):
    """Index of the best value, ties to the last (the larger alpha)."""
    v = np.asarray(values, dtype=float)
    v = np.where(np.isfinite(v), v, -np.inf if prefer == "max" else np.inf)
    best = v.max() if prefer == "max" else v.min()
    return int(np.flatnonzero(v == best)[-1])


def cross_entropy_test(task, X, y, g, r, name, record):
    """Test score of a cross-entropy candidate of the default, refitted alone
    (``logistic/W`` with ``weighting=W``; ``logistic/none+logit``: unweighted, then
    the candidate's ``tau`` times the log training priors subtracted)."""
    from lastlayer import LastLayerClassifier
    weighting = name.split("/", 1)[1].split("+")[0]
    clf = LastLayerClassifier(weighting=weighting, loss="logistic", random_state=r)
    clf.fit(X, y, groups=g) if g is not None else clf.fit(X, y)
    if not np.isclose(clf.alpha_, record["alpha"], rtol=1e-6):
        return None  # not the candidate's fit
    s = clf.decision_function(task["X_test"])
    if s.ndim == 1:
        s = np.column_stack([np.zeros_like(s), s])
    classes, counts = np.unique(y, return_counts=True)
    s = s - record["logit_adjustment"] * np.log(counts / counts.sum())
    return suite.score(task, classes[np.argmax(s, axis=1)])["worst"]


def run_draw(task, n, r, seed):
    from lastlayer import LastLayerClassifier
    rows = suite.draw(task, n, np.random.default_rng([seed, n, r]))
    X, y = task["X_pool"][rows], task["y_pool"][rows]
    g = task["g_pool"][rows] if "g_pool" in task else None
    classes, yi = np.unique(y, return_inverse=True)
    K = classes.size
    if g is not None:
        unit_names, units = np.unique(g, return_inverse=True)
    else:
        unit_names, units = classes, yi
    U = unit_names.size
    binary = K == 2 and U == 2
    T = np.eye(K)[yi]
    Xc = X - X.mean(0)
    top = np.linalg.eigvalsh(Xc.T @ Xc / n if X.shape[1] <= n else Xc @ Xc.T / n)[-1]
    alphas = top * ALPHA_GRID
    Xt = task["X_test"]

    default = LastLayerClassifier(random_state=r)
    default.fit(X, y, groups=g) if g is not None else default.fit(X, y)
    res = {"default": suite.score(task, default.predict(Xt))["worst"]}
    sel = {c["candidate"]: c for c in default.selection_}
    kept = next(c["candidate"] for c in default.selection_ if c["kept"])
    checks = []
    for wname in CANDIDATES:
        cname = f"square/{wname}"
        if cname not in sel:
            continue
        clf = LastLayerClassifier(weighting=wname, loss="square", random_state=r)
        clf.fit(X, y, groups=g) if g is not None else clf.fit(X, y)
        uw = clf.group_weight_ if g is not None else clf.class_weight_
        w = np.asarray(uw, dtype=float)[units]
        w = w * w.size / w.sum()
        grid = np.append(alphas, clf.alpha_)  # the library's own alpha last
        scores, coef = loo_path(X, T, w, grid)
        ests = np.array([estimate(s, yi, units, U, binary) for s in scores])
        sq = ((scores - T) ** 2).sum(2)  # (L, n)
        counts = np.bincount(units, minlength=U)
        unit_mse = np.stack([np.bincount(units, weights=q, minlength=U) / counts for q in sq])
        tests = []
        for a in grid:
            W, b = coef(a)
            tests.append(suite.score(task, classes[np.argmax(Xt @ W + b, axis=1)])["worst"])
        checks.append({"candidate": cname, "alphas": grid.tolist(), "estimate": ests.tolist(),
                       "unit_mse": unit_mse.tolist(), "test": tests, "counts": counts.tolist(),
                       "weights": np.asarray(uw, dtype=float).tolist(),
                       "mse": ((sq * w).sum(1) / w.sum()).tolist(),
                       "lib_estimate": sel[cname]["estimate"]})
    res["candidates"] = checks
    res["others"] = [{"candidate": name, "estimate": c["estimate"],
                      "test": res["default"] if name == kept else
                      cross_entropy_test(task, X, y, g, r, name, c)}
                     for name, c in sel.items() if c["loss"] != "square"]
    res["order"] = [c["candidate"] for c in default.selection_]
    res["kept"] = kept
    return res


def _unit_pnorm(p):
    return lambda c: pick(np.mean(np.asarray(c["unit_mse"])[:-1] ** p, axis=1), "min")


def _shrunk_worst(k):
    def rule(c):
        um = np.asarray(c["unit_mse"])[:-1]
        n_u = np.asarray(c["counts"], dtype=float)
        pooled = (um * n_u).sum(1, keepdims=True) / n_u.sum()
        return pick(((um * n_u + k * pooled) / (n_u + k)).max(1), "min")
    return rule


#: alpha rules on a candidate's record: index into its grid (the last entry is the
#: library's own alpha)
RULE_FUNCS = {
    "library": lambda c: len(c["alphas"]) - 1,
    "mse": lambda c: pick(c["mse"][:-1], "min"),
    "metric": lambda c: pick(c["estimate"][:-1]),
    "worst_mse": lambda c: pick(np.asarray(c["unit_mse"])[:-1].max(1), "min"),
    "mean_unit_mse": _unit_pnorm(1),
    "unit_mse_p2": _unit_pnorm(2),
    "unit_mse_p4": _unit_pnorm(4),
    "shrunk_worst_2": _shrunk_worst(2.0),
    "shrunk_worst_5": _shrunk_worst(5.0),
}


def apply_rule(draw, rule):
    """Test score of the candidate a rule keeps (nan when it keeps a cross-entropy
    candidate the default did not: its test score was not recorded)."""
    cands = []
    for c in draw["candidates"]:
        i = RULE_FUNCS[rule](c)
        cands.append((c["candidate"], c["estimate"][i], c["test"][i]))
    for o in draw["others"]:
        est = o["estimate"] if o["estimate"] is not None else -np.inf
        cands.append((o["candidate"], est, o["test"] if o["test"] is not None else np.nan))
    cands.sort(key=lambda t: draw["order"].index(t[0]))
    best = cands[0]
    for c in cands[1:]:
        if c[1] > best[1]:
            best = c
    return best[2]


def analyse(paths, suite_json=None, summary=None):
    cells, commands = {}, []
    for p in paths:
        record = json.load(open(p))
        cells.update(record["cells"])
        commands.append(record.get("command"))
    oracle = {}
    for path in suite_json or ():  # a later record's oracle replaces an earlier one's
        for row in json.load(open(path))["rows"]:
            if row["method"] == "oracle" and row.get("status") == "ok":
                oracle[(f"{row['task']}@{row['n']}", row["repeat"])] = row["worst"]
    rules = list(RULE_FUNCS)
    print(f"{'cell':34s} " + " ".join(f"{r[:9]:>9s}" for r in rules) + "   oracle")
    gaps = {r: [] for r in rules}
    for cell, draws in cells.items():
        vals = {r: [apply_rule(d, r) for d in draws] for r in rules}
        orc = [oracle.get((cell, k)) for k in range(len(draws))]
        line = f"{cell:34s} " + " ".join(f"{np.nanmean(vals[r]):9.3f}" for r in rules)
        if all(o is not None for o in orc):
            line += f"   {np.mean(orc):.3f}"
            for r in rules:
                gaps[r].append(np.nanmean(np.asarray(orc) - np.asarray(vals[r])))
        nan = sum(np.isnan(v).sum() for v in vals.values())
        print(line + (f"  ({nan} nan)" if nan else ""))
    if any(gaps.values()):
        print(f"{'mean gap to oracle (pp)':34s} "
              + " ".join(f"{100 * np.mean(gaps[r]):9.2f}" for r in rules))
    # paired over every draw: rule minus the library's alpha
    diffs = {r: np.concatenate([[apply_rule(d, r) - apply_rule(d, "library") for d in draws]
                                for draws in cells.values()]) for r in rules}
    print(f"{'rule - library, pp (mean over draws)':34s} "
          + " ".join(f"{100 * diffs[r].mean():9.2f}" for r in rules))
    print(f"{'  its standard error, pp':34s} "
          + " ".join(f"{100 * diffs[r].std(ddof=1) / np.sqrt(diffs[r].size):9.2f}"
                     for r in rules))
    by_cell = {r: np.array([np.mean([apply_rule(d, r) - apply_rule(d, "library")
                                     for d in draws]) for draws in cells.values()])
               for r in rules}
    print(f"{'cells up / down by > 1 pp':34s} "
          + " ".join(f"{int((by_cell[r] > 0.01).sum()):>4d}/{int((by_cell[r] < -0.01).sum()):<4d}"
                     for r in rules))
    if summary:  # per draw, the test score of each rule's choice (small enough to keep)
        write_json(summary, {
            "runs": commands, "analysis": " ".join(sys.argv), "rules": rules,
            "cells": {cell: {r: [round(apply_rule(d, r), 6) for d in draws] for r in rules}
                      for cell, draws in cells.items()},
            "mean_gap_to_oracle_pp": {r: 100 * float(np.mean(gaps[r])) for r in rules}
            if any(gaps.values()) else None,
            "rule_minus_library_pp": {r: [100 * float(diffs[r].mean()),
                                          100 * float(diffs[r].std(ddof=1)
                                                      / np.sqrt(diffs[r].size))]
                                      for r in rules}})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--analyse", nargs="+", metavar="JSON",
                    help="score the alpha rules on records of earlier runs")
    ap.add_argument("--summary", default="",
                    help="with --analyse: write each draw's test score per rule here (JSON)")
    ap.add_argument("--suite", nargs="+",
                    default=[str(suite.HERE / "results" / "selection_suite.json")],
                    help="suite records whose per-draw oracle the gaps are to (a later "
                         "record's oracle replaces an earlier one's)")
    ap.add_argument("--tasks", default=",".join(suite.TASKS))
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    if args.analyse:
        analyse(args.analyse, args.suite, args.summary)
        return 0
    warnings.simplefilter("ignore")
    out = {"command": " ".join(sys.argv), "seed": args.seed, "repeats": args.repeats,
           "cells": {}}
    for name in args.tasks.split(","):
        task = suite.build_task(name)
        for n in suite.TASKS[name][3]:
            t0 = time.time()
            draws = [run_draw(task, n, r, args.seed) for r in range(args.repeats)]
            out["cells"][f"{name}@{n}"] = draws
            print(f"{name:28s} {n:4d} default={np.mean([d['default'] for d in draws]):.3f}"
                  f"  ({time.time() - t0:.0f} s)", flush=True)
            if args.out:  # after every cell: a record of what has run
                write_json(args.out, out, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
