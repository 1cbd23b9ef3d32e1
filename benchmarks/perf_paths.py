"""Paths versus fits: a 1,000-point weight path, an alpha path, and the theory solvers.

Times, on synthetic two-class Gaussian features (minority prior ``--prior``):

* ``TwoUnitWeightPath`` -- construction (one generalised eigendecomposition), the
  per-unit leverages and df at ``--points`` weight ratios, the same with the
  coefficients, and ``equal_share_ratio``;
* one ``solve_ridge`` call (and ``--points`` of them, extrapolated from
  ``--direct-calls`` timed calls), the competitor the path replaces;
* ``alpha_path`` (coefficients, df and GCV at ``--alphas`` alphas) versus
  ``solve_ridge`` at every alpha;
* the theory solvers per call: ``lastlayer.theory.binary_errors`` and
  ``lastlayer.theory.optimal_class_weights`` (ridgeless and ridge).

Every timing is the median of ``--repeats`` runs. The statistics (one pass over the
rows, ``sufficient_statistics``) are timed once on their own and shared by every
method, so two ratios are reported: from the statistics (path versus one
``solve_ridge``), and from the data, as a user meets them (statistics + path versus
statistics + one solve; also versus one ``LastLayerClassifier(weighting=fixed,
alpha=fixed).fit``). The path is also checked against ``solve_ridge`` at a few
ratios (max relative difference reported).

Usage::

    python benchmarks/perf_paths.py
    python benchmarks/perf_paths.py --n 2000 --d 64 --out ''   # smoke run

Output: a table on stdout and a JSON record (``--out``, default
``benchmarks/results/perf_paths.json``) (settings, versions,
machine, one row per timed operation with ``median_s``, ``runs_s`` and notes).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
from _record import write_json


def median_time(fn, repeats):
    runs = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs), runs, out


def make_data(n, d, prior, seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prior).astype(int)
    mu = rng.normal(size=d)
    mu *= 1.5 / np.linalg.norm(mu)
    X = rng.normal(size=(n, d)) + np.where(y[:, None] == 1, mu, -mu)
    return X, y


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000, help="rows (default 20000)")
    ap.add_argument("--d", type=int, default=512, help="features (default 512)")
    ap.add_argument("--prior", type=float, default=0.1, help="minority prior (default 0.1)")
    ap.add_argument("--alpha", type=float, default=1e-3,
                    help="ridge of the weight path (default 1e-3)")
    ap.add_argument("--points", type=int, default=1000, help="weight ratios on the path")
    ap.add_argument("--alphas", type=int, default=41, help="alphas on the alpha path")
    ap.add_argument("--direct-calls", type=int, default=20,
                    help="solve_ridge calls timed to extrapolate the direct path")
    ap.add_argument("--theory-calls", type=int, default=200,
                    help="theory-solver calls per timing run")
    ap.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "results", "perf_paths.json"),
                    help="JSON output path (default benchmarks/results/perf_paths.json; "
                         "'' for none)")
    args = ap.parse_args(argv)
    if args.repeats < 3:
        ap.error("--repeats must be at least 3 (timings are medians)")

    import lastlayer
    from lastlayer import LastLayerClassifier
    from lastlayer.paths import TwoUnitWeightPath, alpha_path
    from lastlayer.solvers import solve_ridge, sufficient_statistics
    from lastlayer.theory import binary_errors, optimal_class_weights

    X, y = make_data(args.n, args.d, args.prior, args.seed)
    T = np.array([[-1.0], [1.0]])
    rhos = np.logspace(-2, 3, args.points)
    rows = []

    def add(name, med, runs, calls=1, note=""):
        rows.append({"operation": name, "median_s": med, "runs_s": runs, "calls": calls,
                     "per_call_s": med / calls, "note": note})

    med, runs, stats = median_time(lambda: sufficient_statistics(X, y, 2), args.repeats)
    add("sufficient_statistics (the pass over the rows)", med, runs)
    t_stats = med
    fixed = LastLayerClassifier(weighting=[1.0, 5.0], loss="square", alpha=args.alpha)
    med, runs, _ = median_time(lambda: fixed.fit(X, y), args.repeats)
    add("LastLayerClassifier(weighting=fixed, alpha=fixed).fit", med, runs,
        note="statistics + one solve + checks")
    t_estimator = med
    del X

    med, runs, path = median_time(
        lambda: TwoUnitWeightPath(stats, [0, 1], T, args.alpha), args.repeats)
    add("TwoUnitWeightPath(...) construction", med, runs, note="one generalised eigh")
    t_build = med
    med, runs, out = median_time(lambda: path.path(rhos), args.repeats)
    add(f"path: df + leverage shares at {args.points} ratios", med, runs, args.points)
    t_lev = med
    med, runs, _ = median_time(lambda: path.path(rhos, return_coef=True), args.repeats)
    add(f"path: + coefficients at {args.points} ratios", med, runs, args.points)
    t_coef = med
    med, runs, eq = median_time(lambda: path.equal_share_ratio(), args.repeats)
    add("equal_share_ratio()", med, runs, note=f"rho={eq[0]:.4g}, feasible={eq[1]}")

    k = max(1, min(args.direct_calls, args.points))
    sub = rhos[np.linspace(0, args.points - 1, k).astype(int)]
    med, runs, _ = median_time(
        lambda: [solve_ridge(stats, path.cell_weights(r), args.alpha, T) for r in sub],
        args.repeats)
    per_fit = med / k
    add("solve_ridge: one fit", per_fit, [r / k for r in runs], 1,
        note=f"median over {args.repeats} runs of {k} fits")
    add(f"solve_ridge x {args.points} (extrapolated)", per_fit * args.points,
        [r / k * args.points for r in runs], args.points,
        note=f"{k} fits timed, scaled to {args.points}")
    # agreement of the path with the direct solves
    diffs = []
    for r in sub[:: max(1, k // 5)]:
        ref = solve_ridge(stats, path.cell_weights(r), args.alpha, T)
        sol = path.solve(r)
        diffs.append(float(np.abs(sol.coef - ref.coef).max() / np.abs(ref.coef).max()))
        diffs.append(float(abs(sol.df - ref.df) / ref.df))

    alphas = np.logspace(-6, 2, args.alphas)
    omega = path.cell_weights(eq[0])
    med, runs, _ = median_time(lambda: alpha_path(stats, omega, T, alphas), args.repeats)
    add(f"alpha_path: coef + df + GCV at {args.alphas} alphas", med, runs, args.alphas)
    t_alpha = med
    med, runs, _ = median_time(
        lambda: [solve_ridge(stats, omega, a, T) for a in alphas], args.repeats)
    add(f"solve_ridge at {args.alphas} alphas", med, runs, args.alphas)
    t_alpha_direct = med

    c = args.theory_calls
    delta = min(0.5, args.d / args.n)
    med, runs, _ = median_time(
        lambda: [binary_errors(args.prior, delta, weight_ratio=5.0, ridge=0.05, mean_norm=1.5)
                 for _ in range(c)], args.repeats)
    add("theory.binary_errors", med, runs, c)
    counts = [int(args.n * (1 - args.prior)), int(args.n * args.prior)]
    med, runs, _ = median_time(
        lambda: [optimal_class_weights(counts, args.d) for _ in range(c)], args.repeats)
    add("theory.optimal_class_weights (ridgeless)", med, runs, c)
    med, runs, _ = median_time(
        lambda: [optimal_class_weights(counts, args.d, ridge=0.05) for _ in range(c)],
        args.repeats)
    add("theory.optimal_class_weights (ridge)", med, runs, c)

    from_data = t_stats + t_build + t_coef
    summary = {
        "statistics_s": t_stats,
        "weight_path_with_coef_from_data_vs_fit_from_data": from_data / (t_stats + per_fit),
        "weight_path_with_coef_from_data_vs_estimator_fit": from_data / t_estimator,
        "weight_path_total_s": t_build + t_lev,
        "weight_path_vs_one_fit": (t_build + t_lev) / per_fit,
        "weight_path_with_coef_vs_one_fit": (t_build + t_coef) / per_fit,
        "direct_path_vs_weight_path": per_fit * args.points / (t_build + t_lev),
        "alpha_path_vs_direct": t_alpha_direct / t_alpha,
        "max_rel_diff_path_vs_solve_ridge": max(diffs),
    }

    width = max(len(r["operation"]) for r in rows)
    print(f"perf_paths: n={args.n}, d={args.d}, prior={args.prior}, alpha={args.alpha}, "
          f"repeats={args.repeats} (medians)")
    print(f"{'operation':<{width}}  {'median':>10}  {'per call':>10}  note")
    for r in rows:
        print(f"{r['operation']:<{width}}  {_fmt(r['median_s']):>10}  "
              f"{_fmt(r['per_call_s']):>10}  {r['note']}")
    print()
    print(f"From the data: statistics + {args.points}-point path with coefficients = "
          f"{summary['weight_path_with_coef_from_data_vs_fit_from_data']:.2f} x statistics + "
          f"one fit, {summary['weight_path_with_coef_from_data_vs_estimator_fit']:.2f} x one "
          "LastLayerClassifier fit")
    print(f"From the statistics: {args.points}-point weight path (construction + df/shares) = "
          f"{summary['weight_path_vs_one_fit']:.2f} x one solve_ridge fit; "
          f"with coefficients {summary['weight_path_with_coef_vs_one_fit']:.2f} x")
    print(f"{args.points} direct fits would take {summary['direct_path_vs_weight_path']:.0f} x "
          f"the weight path; the alpha path is {summary['alpha_path_vs_direct']:.1f} x faster "
          f"than {args.alphas} direct fits")
    print(f"max relative difference path vs solve_ridge: "
          f"{summary['max_rel_diff_path_vs_solve_ridge']:.2e}")

    if args.out:
        record = {
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
            "settings": vars(args),
            "versions": {"lastlayer": lastlayer.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "rows": rows,
            "summary": summary,
        }
        write_json(args.out, record)
        print(f"wrote {args.out}")
    return 0


def _fmt(seconds):
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} us"


if __name__ == "__main__":
    sys.exit(main())
