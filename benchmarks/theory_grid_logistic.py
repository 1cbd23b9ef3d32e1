"""Cross-entropy theory vs Monte Carlo over a grid of binary configurations.

For every configuration the asymptotic per-class errors of
:func:`lastlayer.theory.logistic_errors` (weighted logistic regression, ridge
``lambda``, unpenalised intercept) are compared with
:func:`lastlayer.theory.simulate_logistic` (scikit-learn ``LogisticRegression`` with
``sample_weight = omega``, ``C = 1 / (2 n lambda)`` or ``inf``, ``tol = 1e-10``, on
sampled Gaussian data; exact test errors of the fitted layer).

Grid: priors x ||mu|| x (ridge, d/n) x weight ratio, antipodal means. Without ridge
d/n is a fraction (0.3, 0.7) of the separability threshold delta* (the logistic
minimiser exists only below it); with ridge 0.05 or 0.5, d/n is 0.2, 0.6 or 1.2
(past delta* for every prior and norm here). Each (prior, norm, ridge, d/n) cell gets
one weight ratio out of (1, 7, 50), cycling, unless ``--full``. Weights are
``weights_from_ratio`` (mean one). Configuration ``i`` (position in the full product)
uses seed ``--seed + i``.

Usage::

    python benchmarks/theory_grid_logistic.py --out benchmarks/results/theory_grid_logistic.json
    python benchmarks/theory_grid_logistic.py --render benchmarks/results/theory_grid_logistic.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from _record import write_json

PRIORS = (0.05, 0.1, 0.2, 0.3, 0.5)
NORMS = (0.8, 1.5)
CELLS = [(0.0, ("frac", 0.3)), (0.0, ("frac", 0.7)),
         (0.05, ("abs", 0.2)), (0.05, ("abs", 0.6)), (0.05, ("abs", 1.2)),
         (0.5, ("abs", 0.2)), (0.5, ("abs", 0.6)), (0.5, ("abs", 1.2))]
RATIOS = (1.0, 7.0, 50.0)
SEM_FLOOR = 1e-6


def build_grid(full=False):
    from lastlayer.theory import separability_threshold

    configs, index = [], 0
    for i, prior in enumerate(PRIORS):
        for j, s in enumerate(NORMS):
            thr = separability_threshold(prior, mean_norm=s)
            for c, (ridge, (kind, v)) in enumerate(CELLS):
                delta = v * thr if kind == "frac" else v
                for r, rho in enumerate(RATIOS):
                    if full or r == (i + j + c) % len(RATIOS):
                        configs.append({"index": index, "prior": prior, "mean_norm": s,
                                        "ridge": ridge, "dim_ratio": round(delta, 6),
                                        "delta_over_threshold": round(delta / thr, 4),
                                        "weight_ratio": rho})
                    index += 1
    return configs


def run_config(cfg, n, repeats, seed):
    from threadpoolctl import threadpool_limits

    from lastlayer.theory import logistic_errors, simulate_logistic, weights_from_ratio

    w = weights_from_ratio(cfg["prior"], cfg["weight_ratio"])
    pred = logistic_errors(cfg["prior"], cfg["dim_ratio"], weights=w, ridge=cfg["ridge"],
                           mean_norm=cfg["mean_norm"])
    s = seed + cfg["index"]
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        sim = simulate_logistic(cfg["prior"], cfg["dim_ratio"], w, ridge=cfg["ridge"], n=n,
                                repeats=repeats, seed=s, mean_norm=cfg["mean_norm"])
    theory = np.array([pred.error_pos, pred.error_neg])
    gap = sim.mean - theory
    z = gap / np.maximum(sim.sem, SEM_FLOOR)
    return {**cfg, "weights": w.tolist(), "seed": s, "d": max(1, int(round(cfg["dim_ratio"] * n))),
            "separability_threshold": pred.separability_threshold,
            "theory": theory.tolist(), "sim_mean": sim.mean.tolist(),
            "sim_sem": sim.sem.tolist(), "gap": gap.tolist(), "gap_se": z.tolist(),
            "abs_gap": float(np.max(np.abs(gap))), "abs_gap_se": float(np.max(np.abs(z))),
            "seconds": time.perf_counter() - t0}


def _label(r):
    return (f"pi={r['prior']} ||mu||={r['mean_norm']} ridge={r['ridge']} "
            f"d/n={r['dim_ratio']:.4g} rho={r['weight_ratio']:g}")


def summarise(rows):
    az = np.abs(np.array([r["gap_se"] for r in rows])).ravel()
    ag = np.abs(np.array([r["gap"] for r in rows])).ravel()
    sem = np.array([r["sim_sem"] for r in rows]).ravel()
    i_abs = int(np.argmax([r["abs_gap"] for r in rows]))
    i_se = int(np.argmax([r["abs_gap_se"] for r in rows]))
    return {"n_configs": len(rows), "n_comparisons": int(az.size),
            "largest_abs_gap": rows[i_abs]["abs_gap"],
            "largest_abs_gap_config": _label(rows[i_abs]),
            "largest_gap_se": rows[i_se]["abs_gap_se"],
            "largest_gap_se_config": _label(rows[i_se]),
            "mean_abs_gap": float(ag.mean()), "median_sem": float(np.median(sem)),
            "frac_within_2se": float(np.mean(az <= 2)),
            "frac_within_3se": float(np.mean(az <= 3)),
            "frac_abs_gap_le_0.01": float(np.mean(ag <= 0.01))}


def format_markdown(rows):
    out = ["| i | seed | pi_+ | \\|\\|mu\\|\\| | ridge | d/n (/ delta*) | rho | theory e+ / e- "
           "| simulation e+ / e- (mean ± SE) | gap (SE) |", "|" + "---|" * 10]
    for r in rows:
        t, m, s, z = r["theory"], r["sim_mean"], r["sim_sem"], r["gap_se"]
        out.append(
            f"| {r['index']} | {r['seed']} | {r['prior']} | {r['mean_norm']} | {r['ridge']} | "
            f"{r['dim_ratio']:.4g} ({r['delta_over_threshold']:.2f}) | {r['weight_ratio']:g} | "
            f"{t[0]:.3f} / {t[1]:.3f} | {m[0]:.3f} ± {s[0]:.3f} / {m[1]:.3f} ± {s[1]:.3f} | "
            f"{r['gap'][0]:+.3f} ({z[0]:+.1f}) / {r['gap'][1]:+.3f} ({z[1]:+.1f}) |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="training samples per repeat")
    ap.add_argument("--repeats", type=int, default=10, help="Monte Carlo repeats per config")
    ap.add_argument("--seed", type=int, default=20251001, help="base seed (config i: seed + i)")
    ap.add_argument("--out", default=None, help="JSON output path")
    ap.add_argument("--full", action="store_true", help="every ratio in every cell")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes")
    ap.add_argument("--render", metavar="JSON", default=None,
                    help="print the markdown table and summary of a saved run")
    args = ap.parse_args(argv)
    if args.render:
        with open(args.render) as fh:
            rec = json.load(fh)
        print(format_markdown(rec["rows"]))
        print()
        print(json.dumps(rec["summary"], indent=1))
        return 0
    configs = build_grid(args.full)
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as ex:
        rows = list(ex.map(run_config, configs, [args.n] * len(configs),
                           [args.repeats] * len(configs), [args.seed] * len(configs)))
    summary = summarise(rows)
    record = {"command": " ".join([os.path.basename(sys.executable)] + sys.argv),
              "settings": {"n": args.n, "repeats": args.repeats, "seed": args.seed,
                           "full": args.full, "sklearn_tol": 1e-10},
              "platform": platform.platform(), "seconds": time.perf_counter() - t0,
              "summary": summary, "rows": rows}
    if args.out:
        write_json(args.out, record)
    print(format_markdown(rows))
    print()
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
