"""Fit time: lastlayer's optimal weighting versus scikit-learn baselines.

On synthetic Gaussian features with five imbalanced classes (priors
``0.45, 0.25, 0.15, 0.10, 0.05``; ``x | y = c ~ N(mu_c, I_d)``, random means of norm
``--mean-norm``), stored as ``--dtype`` (default float32, as networks emit
features; every method gets the same array), for every ``n`` in ``--n`` and ``d``
in ``--d`` this times

* ``lastlayer``: ``LastLayerClassifier(weighting="optimal", alpha="auto")`` (square
  loss: weights from the leverage rule, alpha by exact leave-one-out; the default
  before the selection layer);
* ``lastlayer_default``: ``LastLayerClassifier()`` (the selection layer: candidates
  compared by leave-one-out), reported as a ratio to ``lastlayer`` in the same run;
* ``logreg_balanced``: ``LogisticRegression(class_weight="balanced")`` (lbfgs,
  ``max_iter=--logistic-max-iter``, scikit-learn's default 100; whether it
  converged is reported);
* ``ridge_balanced``: ``RidgeClassifier(class_weight="balanced")``;
* ``gram_floor`` (not a classifier): ``X.T @ X`` of the same array (numpy's
  ``?syrk``), the least any method that forms the Gram statistics must spend;
* ``dfr_sweep``: a DFR-style sweep, ``len(C) x len(weight powers)`` fits of L1
  logistic regression (liblinear), one-vs-rest over the classes with sample weights
  ``(balanced class weight)^power``; C in ``1, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01`` and
  powers ``0, 0.5, 1`` (21 fits). When the sweep would exceed ``--dfr-budget``
  seconds, only the fits done within the budget are timed (in a fixed shuffled
  order, so every C is equally likely to be timed) and the sweep time is
  extrapolated as ``mean time per fit x number of fits``; the table says so
  (``extrapolated, k/21 fits``).

Ratios: every timing over ``logreg_balanced`` and over the floor of issue 14 (one
float32 Gram ``gram_floor`` where ``n >= d``; ``kernel_floor``, one ``n x n`` kernel
product and its float64 eigendecomposition, where ``n < d``, measured only there).
The 1/5/15-minute load average after each size's timings is recorded (a row
``load_average``): on a shared machine the timings are only as quiet as it was.

``--spectrum powerlaw`` makes the features look like network embeddings without
changing the task: ``x = S^{1/2} R (mu_c + z) + 1`` with covariance eigenvalues
``s_i`` proportional to ``1 / i`` (mean one), a random rotation ``R`` and an offset of
one, i.e. the isotropic problem seen through an ill-conditioned linear map (the
Bayes error is the same; gradient methods need more iterations).

Every timing except the sweep is the median of ``--repeats`` runs after one
untimed warm-up fit (``--no-warmup`` to skip it) (the sweep's
fits are its samples). Competitors run in the same process on the same data, one
after another. Worst-class accuracy on a balanced test set is reported for context.
The key number is ``ratio = time(lastlayer) / time(logreg_balanced)``.

Usage::

    python benchmarks/perf_fit.py
    python benchmarks/perf_fit.py --n 10000 --d 512                # one size
    python benchmarks/perf_fit.py --n 2000 --d 64 --dfr-budget 5 --out ''   # smoke run

Output: a table on stdout and a JSON record (``--out``, default
``benchmarks/results/perf_fit.json``) (settings, versions,
machine, one row per (n, d, method) with ``median_s``, ``runs_s``, notes).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
from _record import write_json

PRIORS = np.array([0.45, 0.25, 0.15, 0.10, 0.05])
DFR_C = (1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01)
DFR_POWERS = (0.0, 0.5, 1.0)
METHODS = ("lastlayer", "lastlayer_default", "logreg_balanced", "ridge_balanced", "dfr_sweep",
           "gram_floor", "kernel_floor")


def priors(n_classes):
    """The five-class priors above for K = 5, else geometric with ratio 9 end to end."""
    if n_classes == PRIORS.size:
        return PRIORS
    p = 9.0 ** (-np.arange(n_classes) / max(n_classes - 1, 1))
    return p / p.sum()


def make_data(n, d, mean_norm, seed, n_test_per_class=1000, spectrum="isotropic",
              dtype=np.float64, n_classes=5):
    rng = np.random.default_rng(seed)
    K = n_classes
    means = rng.normal(size=(K, d))
    means *= mean_norm / np.linalg.norm(means, axis=1, keepdims=True)
    y = rng.choice(K, size=n, p=priors(K))
    y_test = np.repeat(np.arange(K), n_test_per_class)

    def rows(labels):  # float32 blocks: no n x d float64 array at large sizes
        out = np.empty((labels.size, d), dtype=dtype)
        for lo in range(0, labels.size, 4096):
            lab = labels[lo:lo + 4096]
            block = means[lab] + rng.standard_normal((lab.size, d))
            out[lo:lo + 4096] = block @ M + 1.0 if M is not None else block
        return out

    M = None
    if spectrum == "powerlaw":
        s = 1.0 / np.arange(1, d + 1)
        s *= d / s.sum()
        R, _ = np.linalg.qr(rng.standard_normal((d, d)))
        M = R.T * np.sqrt(s)[None, :]  # x -> S^{1/2} R x, applied to rows: x M
    return rows(y), y, rows(y_test), y_test


#: The choices of ``--cell-grams`` (here and in ``profile_fit.py``).
CELL_GRAMS = ("auto", "packed", "dense", "rows")


def force_cell_grams(fit_module, layout):
    """Force the plan's per-cell Gram layout (``"auto"``: leave the library's rule):
    its thresholds at 0 force rows, at infinity the arrays, packed or not."""
    if layout == "auto":
        return
    fit_module.CELL_ROWS_RATIO = 0 if layout == "rows" else float("inf")
    fit_module.CELL_ROWS_MIN_CELLS = 0
    fit_module.CELL_GRAMS_PACKED = layout != "dense"


def add_task_args(ap, n=2500, d=1024):
    """``--n``, ``--d``, ``--classes`` and ``--seed`` of the one-size scripts that reuse
    :func:`make_data` (``logistic_iterations.py``, ``profile_fit.py``)."""
    ap.add_argument("--n", type=int, default=n, help="rows")
    ap.add_argument("--d", type=int, default=d, help="features")
    ap.add_argument("--classes", type=int, default=2, help="classes (priors of perf_fit.py)")
    ap.add_argument("--seed", type=int, default=0, help="data seed")


def task_data(args, dtype):
    """Power-law training features and labels of :func:`add_task_args`' size."""
    X, y, _, _ = make_data(args.n, args.d, 2.0, args.seed, spectrum="powerlaw",
                           dtype=np.dtype(dtype), n_classes=args.classes, n_test_per_class=1)
    return X, y


def worst_class_accuracy(pred, y):
    return float(min(np.mean(pred[y == k] == k) for k in np.unique(y)))


def balanced_weights(y):
    counts = np.bincount(y)
    return y.size / (counts.size * counts)


def median_fit(make, X, y, repeats, warmup=True):
    runs, model = [], None
    if warmup:  # one untimed fit: first-call costs (lazy imports, fresh pages) are not timed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make().fit(X, y)
    for _ in range(repeats):
        model = make()
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X, y)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), runs, model


def dfr_sweep(X, y, X_test, y_test, budget, seed):
    """Time the L1 sweep, fit by fit, within a budget; extrapolate the rest."""
    from sklearn.linear_model import LogisticRegression

    K = int(y.max()) + 1
    cw = balanced_weights(y)
    grid = [(c, p) for c in DFR_C for p in DFR_POWERS]
    order = np.random.default_rng(seed).permutation(len(grid))
    times, best = [], (-1.0, None)
    for idx in order:
        c, p = grid[idx]
        sw = (cw**p)[y]
        t0 = time.perf_counter()
        scores = np.empty((X_test.shape[0], K))
        for k in range(K):  # one-vs-rest, as DFR's binary problems
            try:
                clf = LogisticRegression(l1_ratio=1.0, solver="liblinear", C=c)
            except TypeError:  # pragma: no cover - older scikit-learn
                clf = LogisticRegression(penalty="l1", solver="liblinear", C=c)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf.fit(X, (y == k).astype(int), sample_weight=sw)
            scores[:, k] = clf.decision_function(X_test)
        times.append(time.perf_counter() - t0)
        acc = worst_class_accuracy(scores.argmax(axis=1), y_test)
        if acc > best[0]:
            best = (acc, (c, p))
        if sum(times) > budget and len(times) < len(grid):
            break
    k = len(times)
    total = float(np.mean(times) * len(grid))
    note = (f"measured, {k}/{len(grid)} fits" if k == len(grid)
            else f"extrapolated, {k}/{len(grid)} fits timed")
    return total, times, note, best


def run_size(n, d, args, methods):
    from lastlayer import LastLayerClassifier
    from sklearn.linear_model import LogisticRegression, RidgeClassifier

    X, y, X_test, y_test = make_data(n, d, args.mean_norm, args.seed,
                                     spectrum=args.spectrum, dtype=np.dtype(args.dtype),
                                     n_classes=args.classes)
    rows = []

    def row(method, med, runs, acc, note=""):
        rows.append({"n": n, "d": d, "method": method, "median_s": med, "runs_s": runs,
                     "worst_class_accuracy": acc, "note": note})
        acc_text = "-" if acc is None else f"{acc:.3f}"
        print(f"  {method:<16} {med:10.3f} s   worst-class acc {acc_text}   {note}",
              flush=True)

    if "gram_floor" in methods:
        X.T @ X  # warm-up
        runs = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            X.T @ X
            runs.append(time.perf_counter() - t0)
        med = statistics.median(runs)
        row("gram_floor", med, runs, None,
            f"X.T @ X in {X.dtype}: {n * d * d / med / 1e9:.0f} GFlop/s (n d^2 flops)")

    if "kernel_floor" in methods and n < d:  # one n x n kernel and its eigendecomposition
        import scipy.linalg
        runs = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            scipy.linalg.eigh((X @ X.T).astype(np.float64), check_finite=False, driver="evd")
            runs.append(time.perf_counter() - t0)
        row("kernel_floor", statistics.median(runs), runs, None,
            f"X @ X.T in {X.dtype} + float64 eigh of {n} x {n}")

    if "lastlayer" in methods:
        def make():
            return LastLayerClassifier(weighting="optimal", alpha="auto", loss=args.loss)
        med, runs, m = median_fit(make, X, y, args.repeats, not args.no_warmup)
        peak = peak_memory(make, X, y) if args.memory else None
        note = (f"alpha_={m.alpha_:.3g}, df_={m.df_:.1f}, statistics in {m.precision_}, "
                f"BLAS threads {m.plan_['solve_threads']}, cell Grams {m.plan_['cell_grams']}")
        if peak is not None:
            note += f", peak {peak / 2**20:.0f} MiB = {peak / X.nbytes:.2f} x X"
        row("lastlayer", med, runs, worst_class_accuracy(m.predict(X_test), y_test), note)
        rows[-1]["peak_bytes"] = peak
        rows[-1]["x_bytes"] = int(X.nbytes)
    if "lastlayer_default" in methods:  # the selection layer: LastLayerClassifier()
        med, runs, m = median_fit(LastLayerClassifier, X, y, args.repeats,
                                  not args.no_warmup)
        peak = peak_memory(LastLayerClassifier, X, y) if args.memory else None
        note = (f"kept {m.loss_}/{m.weighting_} of {len(m.selection_)} candidates; "
                f"skipped: {m.plan_['selection_skipped'] or 'none'}, "
                f"cell Grams {m.plan_['cell_grams']}")
        if peak is not None:
            note += f", peak {peak / 2**20:.0f} MiB = {peak / X.nbytes:.2f} x X"
        row("lastlayer_default", med, runs, worst_class_accuracy(m.predict(X_test), y_test),
            note)
        rows[-1]["peak_bytes"] = peak
        rows[-1]["x_bytes"] = int(X.nbytes)
    if "logreg_balanced" in methods:
        med, runs, m = median_fit(
            lambda: LogisticRegression(class_weight="balanced",
                                       max_iter=args.logistic_max_iter), X, y, args.repeats,
            not args.no_warmup)
        n_iter = int(np.max(m.n_iter_))
        conv = "converged" if n_iter < args.logistic_max_iter else "hit max_iter"
        row("logreg_balanced", med, runs, worst_class_accuracy(m.predict(X_test), y_test),
            f"lbfgs, n_iter={n_iter} ({conv})")
    if "ridge_balanced" in methods:
        med, runs, m = median_fit(lambda: RidgeClassifier(class_weight="balanced"), X, y,
                                  args.repeats, not args.no_warmup)
        row("ridge_balanced", med, runs, worst_class_accuracy(m.predict(X_test), y_test),
            "alpha=1")
    if "dfr_sweep" in methods:
        total, times, note, best = dfr_sweep(X, y, X_test, y_test, args.dfr_budget,
                                             args.seed)
        row("dfr_sweep", total, times, best[0],
            f"{note}; per fit {np.median(times):.3f} s; best (C, power)={best[1]} "
            f"(accuracy over the timed fits)")
    ours = {r["method"]: r["median_s"] for r in rows}
    if "lastlayer" in ours and "lastlayer_default" in ours:
        for r in rows:
            r["ratio_to_lastlayer"] = r["median_s"] / ours["lastlayer"]
        print(f"  ratio lastlayer_default / lastlayer = "
              f"{ours['lastlayer_default'] / ours['lastlayer']:.2f}", flush=True)
    ours_names = [k for k in ("lastlayer", "lastlayer_default") if k in ours]
    if "logreg_balanced" in ours:
        for r in rows:
            r["ratio_to_logreg_balanced"] = r["median_s"] / ours["logreg_balanced"]
        for k in ours_names:
            print(f"  ratio {k} / logreg_balanced = "
                  f"{ours[k] / ours['logreg_balanced']:.3f}", flush=True)
    # the floor of issue 14: one float32 Gram where n >= d, one n x n kernel product
    # and its eigendecomposition where n < d
    floor = "kernel_floor" if n < d and "kernel_floor" in ours else "gram_floor"
    if floor in ours:
        for r in rows:
            r["ratio_to_floor"], r["floor"] = r["median_s"] / ours[floor], floor
        for k in ours_names:
            print(f"  ratio {k} / {floor} = {ours[k] / ours[floor]:.2f}", flush=True)
    rows.append({"n": n, "d": d, "method": "load_average", "median_s": None,
                 "runs_s": list(os.getloadavg()), "worst_class_accuracy": None,
                 "note": "1/5/15-minute load average after this size's timings"})
    return rows


def peak_memory(make, X, y):
    """Peak bytes allocated through Python/NumPy during one fit (tracemalloc; BLAS
    workspace is not counted)."""
    import tracemalloc
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make().fit(X, y)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10000, 100000],
                    help="training rows (default 10000 100000)")
    ap.add_argument("--d", type=int, nargs="+", default=[512, 2048],
                    help="feature dimensions (default 512 2048)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--classes", type=int, default=5,
                    help="number of classes (default 5: the priors above; else geometric "
                         "priors with ratio 9 between the first and the last)")
    ap.add_argument("--loss", choices=("square", "logistic"), default="square",
                    help="loss of the lastlayer fit (default square)")
    ap.add_argument("--memory", action="store_true",
                    help="also trace one lastlayer fit's peak allocations (tracemalloc)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    ap.add_argument("--mean-norm", type=float, default=2.0,
                    help="norm of each class mean (default 2)")
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                    help="dtype of the feature array every method gets (default float32)")
    ap.add_argument("--spectrum", choices=("isotropic", "powerlaw"), default="isotropic",
                    help="feature covariance (default isotropic; see the module docstring)")
    ap.add_argument("--logistic-max-iter", type=int, default=100,
                    help="max_iter of the balanced logistic regression (default 100)")
    ap.add_argument("--dfr-budget", type=float, default=600.0,
                    help="seconds of sweep fits per size before extrapolating (default 600)")
    ap.add_argument("--no-warmup", action="store_true",
                    help="time from the first fit (default: one untimed warm-up fit)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cell-grams", choices=CELL_GRAMS, default="auto",
                    help="how lastlayer holds the per-cell Gram matrices (plan_['cell_grams']): "
                         "'auto' as the library decides; 'packed' (J packed lower triangles), "
                         "'dense' (J d x d arrays, the in-memory layout before December 2026) "
                         "or 'rows' forced, for before/after timings")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "results", "perf_fit.json"),
                    help="JSON output path (default benchmarks/results/perf_fit.json; "
                         "'' for none)")
    args = ap.parse_args(argv)
    if args.repeats < 3:
        ap.error("--repeats must be at least 3 (timings are medians)")

    import lastlayer
    import scipy
    import sklearn
    from lastlayer import _fit

    force_cell_grams(_fit, args.cell_grams)

    print(f"perf_fit: {args.classes} classes, priors {np.round(priors(args.classes), 4).tolist()[:8]}, {args.dtype} "
          f"{args.spectrum} features, repeats={args.repeats} (medians), threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    rows = []
    for n in args.n:
        for d in args.d:
            print(f"n={n}, d={d}", flush=True)
            rows.extend(run_size(n, d, args, args.methods))

    print()
    print(f"{'n':>7} {'d':>5}  {'method':<16} {'time':>10} {'/ logreg':>9} {'/ floor':>8}"
          f"  {'worst acc':>9}")
    for r in rows:
        if r["method"] == "load_average":
            print(f"{r['n']:>7} {r['d']:>5}  load average (1/5/15 min) "
                  f"{' '.join(f'{x:.2f}' for x in r['runs_s'])}")
            continue
        ratio = r.get("ratio_to_logreg_balanced")
        ratio = f"{ratio:9.3f}" if ratio is not None else f"{'-':>9}"
        fl = r.get("ratio_to_floor")
        fl = f"{fl:8.2f}" if fl is not None else f"{'-':>8}"
        acc = r["worst_class_accuracy"]
        acc = f"{acc:>9.3f}" if acc is not None else f"{'-':>9}"
        print(f"{r['n']:>7} {r['d']:>5}  {r['method']:<16} {r['median_s']:>8.3f} s {ratio} {fl}"
              f"  {acc}")

    if args.out:
        record = {
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
            "settings": {**vars(args), "priors": PRIORS.tolist(), "dfr_C": DFR_C,
                         "dfr_powers": DFR_POWERS},
            "versions": {"lastlayer": lastlayer.__version__, "numpy": np.__version__,
                         "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
                         "python": platform.python_version()},
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "rows": rows,
        }
        write_json(args.out, record)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
