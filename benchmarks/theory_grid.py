"""Theory vs Monte Carlo over a grid of binary configurations.

For every configuration the asymptotic per-class errors of
:func:`lastlayer.theory.binary_errors` are compared with
:func:`lastlayer.theory.simulate_binary` (weighted ridge fitted on sampled Gaussian
data, exact test errors of the fitted layer, ``--repeats`` independent draws).

Grid: minority prior x d/n x ridge is a full product; each cell gets every weight
ratio, and the means alternate between antipodal (``||mu|| = 1.2``) and asymmetric
(``mu_+ = (1.5, 0.3)``, ``mu_- = (-0.5, 0.8)``) in a checkerboard so that every
(ratio, means) pair appears about equally often (``--full`` runs both means for
every ratio). Weights are ``weights_from_ratio`` (mean weight one over samples).

Configuration ``i`` (its position in the full product) uses seed ``--seed + i``,
printed in the table, so any row can be re-run alone.

Usage::

    python benchmarks/theory_grid.py --out benchmarks/results/theory_grid.json
    python benchmarks/theory_grid.py --quick          # a one-minute smoke run
    python benchmarks/theory_grid.py --render benchmarks/results/theory_grid.json --markdown

Output: a table on stdout and a JSON file with one record per configuration
(fields as in the table), the settings, and a summary.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np
from _record import write_json

PRIORS = (0.05, 0.1, 0.2, 0.3, 0.5)
DIM_RATIOS = (0.05, 0.2, 0.4, 0.6, 0.9)
RIDGES = (0.0, 0.05, 0.5)
RATIOS = (1.0, 7.0, 50.0)
MEANS = {
    "sym": {"mean_pos": [1.2], "mean_neg": [-1.2]},
    "asym": {"mean_pos": [1.5, 0.3], "mean_neg": [-0.5, 0.8]},
}
QUICK = {"priors": (0.1, 0.3), "dim_ratios": (0.2, 0.6), "ridges": (0.0, 0.05),
         "ratios": (1.0, 7.0)}
SEM_FLOOR = 1e-6  # saturated errors (all repeats 0 or 1) have sem 0


def build_grid(priors, dim_ratios, ridges, ratios, full=False):
    """List of configurations (dicts); ``index`` is the position in the full product."""
    names = list(MEANS)
    configs = []
    index = 0
    for i, prior in enumerate(priors):
        for j, delta in enumerate(dim_ratios):
            for l, ridge in enumerate(ridges):
                for r, rho in enumerate(ratios):
                    for m, name in enumerate(names):
                        keep = full or m == (i + j + l + r) % len(names)
                        if keep:
                            configs.append({"index": index, "prior": prior, "dim_ratio": delta,
                                            "ridge": ridge, "weight_ratio": rho, "means": name})
                        index += 1
    return configs


def run_config(cfg, n, repeats, seed):
    """Theory and simulation for one configuration (runs in a worker process)."""
    from threadpoolctl import threadpool_limits

    from lastlayer.theory import binary_errors, simulate_binary, weights_from_ratio

    means = MEANS[cfg["means"]]
    w = weights_from_ratio(cfg["prior"], cfg["weight_ratio"])
    pred = binary_errors(cfg["prior"], cfg["dim_ratio"], weights=w, ridge=cfg["ridge"], **means)
    s = seed + cfg["index"]
    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        sim = simulate_binary(cfg["prior"], cfg["dim_ratio"], w, ridge=cfg["ridge"], n=n,
                              repeats=repeats, seed=s, **means)
    theory = np.array([pred.error_pos, pred.error_neg])
    gap = sim.mean - theory
    z = gap / np.maximum(sim.sem, SEM_FLOOR)
    return {
        **cfg,
        "weights": w.tolist(),
        "seed": s,
        "d": max(1, int(round(cfg["dim_ratio"] * n))),
        "theory": theory.tolist(),
        "sim_mean": sim.mean.tolist(),
        "sim_sem": sim.sem.tolist(),
        "gap": gap.tolist(),
        "gap_se": z.tolist(),
        "abs_gap": float(np.max(np.abs(gap))),
        "abs_gap_se": float(np.max(np.abs(z))),
        "seconds": time.perf_counter() - t0,
    }


def summarise(rows):
    gaps = np.array([r["gap"] for r in rows])
    zs = np.array([r["gap_se"] for r in rows])
    i_abs = int(np.argmax([r["abs_gap"] for r in rows]))
    i_se = int(np.argmax([r["abs_gap_se"] for r in rows]))
    by_delta = {}
    for delta in sorted({r["dim_ratio"] for r in rows}):
        m = np.array([r["dim_ratio"] == delta for r in rows])
        by_delta[str(delta)] = {"mean_signed_gap": gaps[m].mean(axis=0).tolist(),
                                "mean_abs_gap": float(np.abs(gaps[m]).mean())}
    az = np.abs(zs).ravel()
    return {
        "n_configs": len(rows),
        "n_comparisons": int(az.size),
        "largest_abs_gap": rows[i_abs]["abs_gap"],
        "largest_abs_gap_config": _label(rows[i_abs]),
        "largest_abs_gap_row": rows[i_abs],
        "largest_gap_se": rows[i_se]["abs_gap_se"],
        "largest_gap_se_config": _label(rows[i_se]),
        "largest_gap_se_row": rows[i_se],
        "fraction_within_2se": float(np.mean(az <= 2)),
        "fraction_within_3se": float(np.mean(az <= 3)),
        "fraction_within_4se_plus_0.01": float(np.mean(
            np.abs(gaps).ravel() <= 4 * np.array([r["sim_sem"] for r in rows]).ravel() + 0.01)),
        "mean_signed_gap": gaps.mean(axis=0).tolist(),
        "mean_abs_gap": float(np.abs(gaps).mean()),
        "by_dim_ratio": by_delta,
    }


def _label(r):
    return (f"prior={r['prior']} d/n={r['dim_ratio']} ridge={r['ridge']} "
            f"rho={r['weight_ratio']:g} means={r['means']} seed={r['seed']}")


def format_table(rows):
    head = (f"{'prior':>5} {'d/n':>5} {'ridge':>5} {'rho':>4} {'means':>5} {'seed':>8} | "
            f"{'theory e+':>9} {'e-':>6} | {'sim e+':>16} {'sim e-':>16} | "
            f"{'gap':>6} {'gap/SE':>6}")
    lines = [head, "-" * len(head)]
    for r in rows:
        t, m, s = r["theory"], r["sim_mean"], r["sim_sem"]
        lines.append(
            f"{r['prior']:>5g} {r['dim_ratio']:>5g} {r['ridge']:>5g} {r['weight_ratio']:>4g} "
            f"{r['means']:>5} {r['seed']:>8} | {t[0]:>9.4f} {t[1]:>6.4f} | "
            f"{m[0]:>7.4f} ± {s[0]:<6.4f} {m[1]:>7.4f} ± {s[1]:<6.4f} | "
            f"{r['abs_gap']:>6.4f} {r['abs_gap_se']:>6.2f}")
    return "\n".join(lines)


def format_markdown(rows):
    """The table as GitHub markdown (sim as mean ± SE, gap = max over the two classes)."""
    lines = ["| prior | d/n | ridge | rho | means | seed | theory e+ / e- | sim e+ | sim e- "
             "| gap | gap/SE |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        t, m, s = r["theory"], r["sim_mean"], r["sim_sem"]
        lines.append(
            f"| {r['prior']:g} | {r['dim_ratio']:g} | {r['ridge']:g} | {r['weight_ratio']:g} "
            f"| {r['means']} | {r['seed']} | {t[0]:.4f} / {t[1]:.4f} "
            f"| {m[0]:.4f} ± {s[0]:.4f} | {m[1]:.4f} ± {s[1]:.4f} "
            f"| {r['abs_gap']:.4f} | {r['abs_gap_se']:.2f} |")
    return "\n".join(lines)


def print_summary(summary, elapsed=None):
    print(f"largest |theory - sim|: {summary['largest_abs_gap']:.4f} at "
          f"{summary['largest_abs_gap_config']} "
          f"({summary['largest_abs_gap_row']['abs_gap_se']:.2f} SE)")
    print(f"largest gap in SE units: {summary['largest_gap_se']:.2f} at "
          f"{summary['largest_gap_se_config']} "
          f"(|gap| {summary['largest_gap_se_row']['abs_gap']:.4f})")
    print(f"comparisons within 2 SE: {summary['fraction_within_2se']:.3f}, "
          f"within 3 SE: {summary['fraction_within_3se']:.3f}, "
          f"within 4 SE + 0.01: {summary['fraction_within_4se_plus_0.01']:.3f} "
          f"(of {summary['n_comparisons']})")
    print(f"mean signed gap (sim - theory) e+/e-: "
          f"{summary['mean_signed_gap'][0]:+.4f} / {summary['mean_signed_gap'][1]:+.4f}")
    for delta, v in summary["by_dim_ratio"].items():
        print(f"  d/n={delta}: mean signed gap {v['mean_signed_gap'][0]:+.4f} / "
              f"{v['mean_signed_gap'][1]:+.4f}, mean |gap| {v['mean_abs_gap']:.4f}")
    if elapsed is not None:
        print(f"elapsed: {elapsed:.0f} s")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=None,
                    help="training samples per fit (default 1500; 600 with --quick)")
    ap.add_argument("--repeats", type=int, default=None,
                    help="independent draws per configuration (default 30; 10 with --quick)")
    ap.add_argument("--seed", type=int, default=20250601,
                    help="base seed; configuration i uses seed + i")
    ap.add_argument("--out", default=None, help="JSON output path (default: no file)")
    ap.add_argument("--quick", action="store_true",
                    help="small grid, n=600, 10 repeats (smoke test)")
    ap.add_argument("--full", action="store_true",
                    help="both means for every ratio (twice the default checkerboard)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="worker processes (each single-threaded BLAS)")
    ap.add_argument("--index", type=int, nargs="+", default=None,
                    help="run only these configurations (their index in the full product, "
                         "i.e. the printed seed minus --seed), e.g. to re-check outliers")
    ap.add_argument("--render", metavar="JSON", default=None,
                    help="do not run: print the table and summary of a saved JSON")
    ap.add_argument("--markdown", action="store_true",
                    help="with --render: print the table as markdown")
    args = ap.parse_args(argv)

    if args.render:
        with open(args.render) as fh:
            record = json.load(fh)
        print(f"{record['command']}  (n={record['settings']['n']}, "
              f"repeats={record['settings']['repeats']}, seed={record['settings']['seed']})")
        rows = record["rows"]
        print(format_markdown(rows) if args.markdown else format_table(rows))
        print()
        print_summary(record["summary"], record.get("elapsed_s"))
        return 0

    from tqdm import tqdm

    if args.quick:
        grid = build_grid(QUICK["priors"], QUICK["dim_ratios"], QUICK["ridges"],
                          QUICK["ratios"], full=args.full)
    else:
        grid = build_grid(PRIORS, DIM_RATIOS, RIDGES, RATIOS, full=args.full)
    if args.index is not None:
        full = build_grid(PRIORS, DIM_RATIOS, RIDGES, RATIOS, full=True)
        by_index = {c["index"]: c for c in full}
        missing = [i for i in args.index if i not in by_index]
        if missing:
            ap.error(f"--index must be in [0, {len(full) - 1}]. Got {missing}.")
        grid = [by_index[i] for i in args.index]
    if args.n is None:
        args.n = 600 if args.quick else 1500
    if args.repeats is None:
        args.repeats = 10 if args.quick else 30
    print(f"theory_grid: {len(grid)} configurations, n={args.n}, repeats={args.repeats}, "
          f"base seed={args.seed} (config i uses seed+i), jobs={args.jobs}", flush=True)

    t0 = time.perf_counter()
    rows = []
    # Costly configurations (large d/n, no ridge) first, for better load balance.
    order = sorted(grid, key=lambda c: (-(c["dim_ratio"] * (3 if c["ridge"] == 0 else 1)),
                                        c["index"]))
    if args.jobs <= 1:
        for cfg in tqdm(order, desc="configs"):
            rows.append(run_config(cfg, args.n, args.repeats, args.seed))
    else:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futs = [pool.submit(run_config, cfg, args.n, args.repeats, args.seed)
                    for cfg in order]
            for f in tqdm(as_completed(futs), total=len(futs), desc="configs"):
                rows.append(f.result())
    rows.sort(key=lambda r: r["index"])
    elapsed = time.perf_counter() - t0

    print(format_table(rows))
    summary = summarise(rows)
    print()
    print_summary(summary, elapsed)

    if args.out:
        import lastlayer
        record = {
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
            "settings": {"n": args.n, "repeats": args.repeats, "seed": args.seed,
                         "quick": args.quick, "full": args.full, "jobs": args.jobs,
                         "index": args.index,
                         "sem_floor": SEM_FLOOR, "means": MEANS},
            "versions": {"lastlayer": lastlayer.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
            "elapsed_s": elapsed,
            "summary": summary,
            "rows": rows,
        }
        write_json(args.out, record, default=_json_default)
        print(f"wrote {args.out}")
    return 0


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    raise TypeError(type(o))


if __name__ == "__main__":
    sys.exit(main())
