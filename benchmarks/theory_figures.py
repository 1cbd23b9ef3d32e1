"""Figures of the theory with simulation points, and the worst-class vs balanced optima.

Writes three PNGs into ``--out-dir`` (default ``docs/figures``):

* ``errors_vs_ratio.png``: per-class error against the weight ratio at
  pi_+ = 0.1, d/n = 0.15, ||mu|| = 1.5 (ridgeless), simulation at a few ratios.
* ``optimal_ratio_vs_dim.png``: the error-equalising ratio against d/n for several
  minority priors (theory only: the closed form and its feasibility limit).
* ``weighting_vs_downsampling.png``: worst-class error against n at d = 50,
  pi_+ = 0.1, ||mu|| = 1.5, for optimal weighting, ratio of priors, no weighting
  and downsampling, with simulation points (3 x ``--repeats`` repeats each: small n
  is noisy and cheap).

It also prints (and stores in ``--json``) the theory's equalising, worst-class and
balanced optima for a few configurations, and a paired simulation of the
equalising ratio against the worst-class optimum at pi_+ = 0.1, d/n = 0.15.

Usage::

    python benchmarks/theory_figures.py --out-dir docs/figures --seed 7
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
from _record import write_json
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from lastlayer import plots
from lastlayer.theory import (
    binary_errors,
    downsample_errors,
    numerical_optimal_ratio,
    optimal_class_weights,
    optimal_weight_ratio,
    simulate_binary,
    weights_from_ratio,
)

NOMINAL_N = 1_000_000  # counts for optimal_class_weights from (prior, d/n)
OPTIMA_CONFIGS = [  # (prior, d/n, ridge, ||mu||)
    (0.1, 0.15, 0.0, 1.5),
    (0.1, 0.05, 0.0, 1.5),
    (0.05, 0.05, 0.0, 1.5),
    (0.2, 0.3, 0.0, 1.5),
    (0.3, 0.5, 0.0, 1.5),
    (0.1, 0.15, 0.0, 3.0),
    (0.1, 0.15, 0.1, 1.5),
]


def worst_class_theory(method, prior, delta, mean_norm):
    """Theory's worst-class error of one method (the curves of the third figure)."""
    if method == "optimal weighting":
        return numerical_optimal_ratio(prior, delta, mean_norm=mean_norm)["error"]
    if method == "downsampling":
        return downsample_errors(prior, delta, mean_norm=mean_norm).worst_class_error
    rho = (1 - prior) / prior if method == "ratio of priors" else 1.0
    return binary_errors(prior, delta, weight_ratio=rho, mean_norm=mean_norm).worst_class_error


def optima_table():
    rows = []
    for prior, delta, ridge, norm_ in OPTIMA_CONFIGS:
        kw = dict(ridge=ridge, mean_norm=norm_)
        prior_ratio = (1 - prior) / prior
        at_prior = binary_errors(prior, delta, weight_ratio=prior_ratio, **kw)
        worst = numerical_optimal_ratio(prior, delta, objective="worst", **kw)
        bal = numerical_optimal_ratio(prior, delta, objective="balanced", **kw)
        row = {"prior": prior, "dim_ratio": delta, "ridge": ridge, "mean_norm": norm_,
               "prior_ratio": prior_ratio,
               "prior_ratio_errors": [at_prior.error_pos, at_prior.error_neg],
               "worst_opt_ratio": worst["weight_ratio"],
               "worst_opt_errors": [worst["prediction"].error_pos,
                                    worst["prediction"].error_neg],
               "balanced_opt_ratio": bal["weight_ratio"],
               "balanced_opt_errors": [bal["prediction"].error_pos,
                                       bal["prediction"].error_neg]}
        if ridge == 0.0:
            rho = optimal_weight_ratio(prior, delta)
        else:  # optimal_class_weights on counts with these proportions
            n_pos = round(prior * NOMINAL_N)
            ow = optimal_class_weights((n_pos, NOMINAL_N - n_pos), delta * NOMINAL_N,
                                       ridge=ridge, fit_intercept=False)
            rho = float(ow.weights[0] / ow.weights[1])
        eq = binary_errors(prior, delta, weight_ratio=rho, **kw)
        row["equalising_ratio"] = rho
        row["equalising_error"] = eq.worst_class_error
        rows.append(row)
    return rows


def print_optima(rows):
    print("Theory optima (errors minority / majority):")
    print(f"{'prior':>5} {'d/n':>5} {'ridge':>5} {'|mu|':>4} | {'pi-/pi+':>7} {'errors':>13} | "
          f"{'equal.':>7} {'worst':>6} | {'worst-opt':>9} {'errors':>13} | "
          f"{'bal-opt':>7} {'errors':>13} {'bal.err':>7}")
    for r in rows:
        eq = f"{r['equalising_ratio']:>7.2f} {r['equalising_error']:>6.4f}"
        pe, we, be = r["prior_ratio_errors"], r["worst_opt_errors"], r["balanced_opt_errors"]
        print(f"{r['prior']:>5g} {r['dim_ratio']:>5g} {r['ridge']:>5g} {r['mean_norm']:>4g} | "
              f"{r['prior_ratio']:>7.2f} {pe[0]:.4f}/{pe[1]:.4f} | {eq} | "
              f"{r['worst_opt_ratio']:>9.2f} {we[0]:.4f}/{we[1]:.4f} | "
              f"{r['balanced_opt_ratio']:>7.2f} {be[0]:.4f}/{be[1]:.4f} {np.mean(be):>7.4f}")


def paired_check(seed, n=2000, repeats=40):
    """Simulate the equalising ratio and the worst-class optimum on the same data."""
    prior, delta, norm_ = 0.1, 0.15, 1.5
    rho_eq = optimal_weight_ratio(prior, delta)
    rho_w = numerical_optimal_ratio(prior, delta, mean_norm=norm_)["weight_ratio"]
    out = {"prior": prior, "dim_ratio": delta, "mean_norm": norm_, "n": n,
           "repeats": repeats, "seed": seed}
    sims = {}
    for name, rho in (("equalising", rho_eq), ("worst_opt", rho_w)):
        pred = binary_errors(prior, delta, weight_ratio=rho, mean_norm=norm_)
        sims[name] = simulate_binary(prior, delta, weights_from_ratio(prior, rho), n=n,
                                     repeats=repeats, seed=seed, mean_norm=norm_)
        out[name] = {"ratio": rho, "theory": [pred.error_pos, pred.error_neg],
                     "sim_mean": sims[name].mean.tolist(), "sim_sem": sims[name].sem.tolist()}
    # Same seed, same data: the difference of the minority error is paired.
    diff = sims["equalising"].errors[:, 0] - sims["worst_opt"].errors[:, 0]
    out["minority_diff_mean"] = float(diff.mean())
    out["minority_diff_sem"] = float(diff.std(ddof=1) / math.sqrt(repeats))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", default="docs/figures", help="folder for the PNGs")
    ap.add_argument("--seed", type=int, default=7, help="base seed of the simulations")
    ap.add_argument("--repeats", type=int, default=20, help="simulation repeats per point")
    ap.add_argument("--json", default="benchmarks/results/theory_figures.json",
                    help="where to store the numbers behind the figures ('' for none)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    record = {"command": " ".join([os.path.basename(sys.executable), *sys.argv]),
              "seed": args.seed, "repeats": args.repeats}
    print(f"theory_figures: seed={args.seed}, repeats={args.repeats}", flush=True)

    with threadpool_limits(limits=1, user_api="blas"):
        # 1. Errors against the weight ratio, with simulation.
        prior, delta, norm_, n1 = 0.1, 0.15, 1.5, 1000
        best = numerical_optimal_ratio(prior, delta, mean_norm=norm_)["weight_ratio"]
        sim_ratios = [1.0, 3.0, 9.0, round(best, 1), 33.0, 100.0]
        sims1 = {}
        for i, rho in enumerate(tqdm(sim_ratios, desc="fig 1: ratios")):
            sims1[rho] = simulate_binary(prior, delta, weights_from_ratio(prior, rho), n=n1,
                                         repeats=args.repeats, seed=args.seed + i,
                                         mean_norm=norm_)
        fig = plots.plot_errors_vs_ratio(prior, delta, mean_norm=norm_, simulation=sims1)
        p1 = plots.save_figure(fig, os.path.join(args.out_dir, "errors_vs_ratio.png"), dpi=120)
        record["errors_vs_ratio"] = {
            "prior": prior, "dim_ratio": delta, "mean_norm": norm_, "n": n1,
            "points": {str(r): {"seed": args.seed + i, "mean": sims1[r].mean.tolist(),
                                "sem": sims1[r].sem.tolist()}
                       for i, r in enumerate(sim_ratios)}}

        # 2. Optimal ratio against d/n (theory only).
        fig = plots.plot_optimal_ratio_vs_dim([0.05, 0.1, 0.2, 0.3],
                                              np.linspace(0.002, 0.7, 350))
        p2 = plots.save_figure(fig, os.path.join(args.out_dir, "optimal_ratio_vs_dim.png"),
                               dpi=120)

        # 3. Weighting against downsampling at fixed d.
        prior3, dim3, norm3 = 0.1, 50, 1.5
        ns = sorted(set(np.geomspace(120, 4000, 48).astype(int).tolist()) | {250})
        sim_ns = [120, 200, 400, 1000, 2000]
        sims3 = {m: {} for m in ("optimal weighting", "ratio of priors", "no weighting",
                                 "downsampling")}
        record["weighting_vs_downsampling"] = {"prior": prior3, "dim": dim3,
                                               "mean_norm": norm3, "points": []}
        jobs = [(m, n) for n in sim_ns for m in sims3]
        for j, (method, n) in enumerate(tqdm(jobs, desc="fig 3: (method, n)")):
            delta3 = dim3 / n
            kw = dict(n=n, repeats=3 * args.repeats, seed=args.seed + 100 + j, mean_norm=norm3)
            if method == "downsampling":
                sim = simulate_binary(prior3, delta3, (1.0, 1.0), subsample="downsample", **kw)
                rho = None
            else:
                rho = {"optimal weighting": lambda: numerical_optimal_ratio(
                           prior3, delta3, mean_norm=norm3)["weight_ratio"],
                       "ratio of priors": lambda: (1 - prior3) / prior3,
                       "no weighting": lambda: 1.0}[method]()
                sim = simulate_binary(prior3, delta3, weights_from_ratio(prior3, rho), **kw)
            sims3[method][n] = sim
            record["weighting_vs_downsampling"]["points"].append(
                {"method": method, "n": n, "ratio": rho, "seed": kw["seed"],
                 "mean": sim.mean.tolist(), "sem": sim.sem.tolist()})
        fig = plots.plot_weighting_vs_downsampling(prior3, dim3, ns, mean_norm=norm3,
                                                   simulation=sims3)
        curve_ns = [120, 160, 200, 250, 400, 1000, 2000, 4000]
        curves = {m: [worst_class_theory(m, prior3, dim3 / n, norm3) for n in curve_ns]
                  for m in sims3}
        record["weighting_vs_downsampling"]["theory_worst"] = {"n": curve_ns, **curves}
        p3 = plots.save_figure(fig, os.path.join(args.out_dir,
                                                 "weighting_vs_downsampling.png"), dpi=120)

        # Optima table and the paired simulation of the non-monotone case.
        rows = optima_table()
        record["optima"] = rows
        paired = paired_check(args.seed + 1000, repeats=max(args.repeats, 40))
        record["paired_check"] = paired

    print(f"Worst-class error, theory (d={dim3}, pi_+={prior3}, ||mu||={norm3}, ridge 0):")
    print(f"{'n':>6} " + " ".join(f"{m:>17}" for m in curves))
    for i, n in enumerate(curve_ns):
        print(f"{n:>6} " + " ".join(f"{curves[m][i]:>17.4f}" for m in curves))
    print("Simulated (max over classes of the mean error ± its SE):")
    for p in record["weighting_vs_downsampling"]["points"]:
        c = int(np.argmax(p["mean"]))
        print(f"  n={p['n']:>5} {p['method']:>17}: {p['mean'][c]:.4f} ± {p['sem'][c]:.4f}"
              + (f"  (rho={p['ratio']:.2f})" if p["ratio"] is not None else ""))
    print()
    print_optima(rows)
    e, w = paired["equalising"], paired["worst_opt"]
    print(f"\nPaired simulation (pi_+={paired['prior']}, d/n={paired['dim_ratio']}, "
          f"||mu||={paired['mean_norm']}, n={paired['n']}, {paired['repeats']} repeats, "
          f"seed {paired['seed']}):")
    for name, r in (("equalising", e), ("worst-class optimum", w)):
        print(f"  rho={r['ratio']:.2f} ({name}): theory {r['theory'][0]:.4f}/{r['theory'][1]:.4f}, "
              f"sim {r['sim_mean'][0]:.4f}±{r['sim_sem'][0]:.4f} / "
              f"{r['sim_mean'][1]:.4f}±{r['sim_sem'][1]:.4f}")
    print(f"  minority error, equalising minus optimum (paired): "
          f"{paired['minority_diff_mean']:+.4f} ± {paired['minority_diff_sem']:.4f}")
    for p in (p1, p2, p3):
        print(f"wrote {p}")
    record["elapsed_s"] = time.perf_counter() - t0
    if args.json:
        write_json(args.json, record)
        print(f"wrote {args.json}")
    print(f"elapsed: {record['elapsed_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
