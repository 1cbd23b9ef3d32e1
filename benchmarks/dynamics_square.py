"""Exact square-loss GD dynamics on real features (issue 13, parts 1 and 4).

Task: Fashion-MNIST shirt (minority, label 1) vs T-shirt (label 0), frozen ImageNet
EfficientNet-Lite0 features (1280-d, 64x64 inputs, ``lastlayer.demo.load_binary_task``
with pool (1000, 1000), test 1000 per class, seed 0). Every repeat ``r`` draws ``n``
training rows with ``minority share`` from the pool with
``numpy.random.default_rng([seed, n, r])``; features used as given.

For every weighting: exact GD from zero with ``lr = 1 / s_max`` (s_max the largest
Hessian eigenvalue of that run) at a log grid of steps; per-class test, train and
(imputation) LOO accuracy; the ridge fit at ``alpha = 1 / (2 lr t)`` (solve_ridge,
intercept unpenalised) at every step; ridge with alpha chosen by exact ridge LOO
worst-class accuracy (ridge_loo_path) versus GD with the step chosen by GD LOO
worst-class accuracy. Repeat 0 also measures the LOO shortcut against brute-force
refits (row deleted, same n, lr, weights) for a subset of rows.

Usage::

    python benchmarks/dynamics_square.py            # ~2 min on one core
    python benchmarks/dynamics_square.py --quick

Writes benchmarks/results/dynamics_square.json and
docs/figures/dynamics/square_fmnist_shirt_tshirt.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import write_json  # noqa: E402

from lastlayer import demo  # noqa: E402
from lastlayer.dynamics import (SquareLossGD, class_accuracy, class_weights_for,  # noqa: E402
                                ridge_equivalent_alpha)
from lastlayer.metrics import mean_and_sem  # noqa: E402
from lastlayer.solvers import ridge_loo_path, solve_ridge, sufficient_statistics  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
WEIGHTINGS = ("none", "sqrt", "balanced", "optimal_theory")
STEPS = np.unique(np.r_[0, np.round(np.logspace(0, 7, 29))]).astype(np.int64)
BUDGETS = (10, 100, 1000, 10000, 100000, 10**7)


def run(args):
    task = demo.load_binary_task(6, 0, pool=(1000, 1000), test_per_class=1000, size=64,
                                 seed=0, progress=False)
    Xp, yp, Xt, yt = task["X_pool"], task["y_pool"], task["X_test"], task["y_test"]
    n = args.n
    n_min = int(round(args.share * n))
    rec = {"config": vars(args), "task": "fmnist shirt(1) vs tshirt(0), frozen EfficientNet-"
           "Lite0 64x64, pool (1000,1000), test 1000/class", "steps": STEPS.tolist(),
           "weightings": list(WEIGHTINGS), "runs": []}
    for r in range(args.repeats):
        rng = np.random.default_rng([args.seed, n, r])
        rows = demo.draw_counts(yp, {1: n_min, 0: n - n_min}, rng)
        X, y = Xp[rows], yp[rows]
        stats = sufficient_statistics(X, y, 2)
        for w in WEIGHTINGS:
            t0 = time.perf_counter()
            cw, info = class_weights_for(w, X, y, 2, seed=r)
            gd = SquareLossGD(X, y, 2, class_weights=cw)
            lr = 1.0 / gd.eigenvalues[-1]
            test = class_accuracy(gd.decision_function(Xt, STEPS, lr), yt, 2)
            train = class_accuracy(gd.decision_function(None, STEPS, lr), y, 2)
            loo = class_accuracy(gd.loo_decision_function(STEPS, lr), y, 2)
            pred_gd = gd.decision_function(Xt, STEPS, lr).argmax(-1)
            alphas = ridge_equivalent_alpha(STEPS[1:], lr)
            ridge_test, agree = [], []
            for a, pg in zip(alphas, pred_gd[1:]):
                sol = solve_ridge(stats, cw, a, np.eye(2))
                s = Xt @ sol.coef + sol.intercept
                ridge_test.append(class_accuracy(s[None], yt, 2)[0])
                agree.append(float(np.mean(s.argmax(1) == pg)))
            path = ridge_loo_path(X, y, cw, np.eye(2), alphas, return_decision=True,
                                  stats=stats)
            ridge_loo = class_accuracy(path["loo_decision"], y, 2)
            run = {"repeat": r, "weighting": w, "class_weights": cw.tolist(), "lr": lr,
                   "test": test.tolist(), "train": train.tolist(), "loo": loo.tolist(),
                   "ridge_alphas": alphas.tolist(), "ridge_test": np.asarray(ridge_test).tolist(),
                   "ridge_agreement": agree, "ridge_loo": ridge_loo.tolist(),
                   "seconds": time.perf_counter() - t0}
            if r == 0 and w in ("none", "balanced"):
                run["loo_vs_refit"] = loo_vs_refit(X, y, cw, lr, gd, args.refit_rows)
            rec["runs"].append(run)
            print(f"repeat {r} {w:15s} {run['seconds']:.1f}s", file=sys.stderr, flush=True)
    return rec


def loo_vs_refit(X, y, cw, lr, gd, n_rows):
    """Shortcut LOO vs brute-force refits (row deleted, same n): scores and labels."""
    sel = np.r_[np.flatnonzero(y == 1)[: n_rows // 2], np.flatnonzero(y == 0)[: n_rows // 2]]
    steps = STEPS[1::4]
    short = gd.loo_decision_function(steps, lr)[:, sel]
    n = X.shape[0]
    refit = np.empty_like(short)
    for j, i in enumerate(sel):
        sw = np.ones(n)
        sw[i] = 0.0
        g = SquareLossGD(X, y, 2, class_weights=cw * (n - 1) / n, sample_weight=sw)
        refit[:, j] = g.decision_function(X[i:i + 1], steps, lr)[:, 0]
    T = np.eye(2)[y[sel]][None]
    return {"steps": steps.tolist(), "rows": sel.tolist(),
            "max_abs_score_gap": np.nanmax(np.abs(short - refit), axis=(1, 2)).tolist(),
            "max_abs_refit_residual": np.abs(T - refit).max(axis=(1, 2)).tolist(),
            "shortcut_undefined_rows": np.isnan(short).any(-1).sum(1).tolist(),
            "label_agreement": np.mean(short.argmax(-1) == refit.argmax(-1), axis=1).tolist(),
            "refit_accuracy": np.mean(refit.argmax(-1) == y[sel][None], axis=1).tolist(),
            "shortcut_accuracy": np.mean(short.argmax(-1) == y[sel][None], axis=1).tolist()}


def summarise(rec):
    steps = np.asarray(rec["steps"])
    lines, summary = [], {}
    for w in rec["weightings"]:
        runs = [r for r in rec["runs"] if r["weighting"] == w]
        test = np.array([r["test"] for r in runs])  # (R, S, 2)
        loo = np.array([r["loo"] for r in runs])
        worst = test.min(-1)
        loo_worst = np.nan_to_num(loo, nan=0.0).min(-1)
        rt = np.array([r["ridge_test"] for r in runs]).min(-1)  # (R, S-1)
        rl = np.nan_to_num(np.array([r["ridge_loo"] for r in runs]), nan=0.0).min(-1)
        agree = np.array([r["ridge_agreement"] for r in runs])
        s = {"worst_test_mean": worst.mean(0).tolist(), "worst_test_sem":
             mean_and_sem(worst)[1].tolist(),
             "minority_test_mean": test[..., 1].mean(0).tolist(),
             "majority_test_mean": test[..., 0].mean(0).tolist(),
             "ridge_worst_test_mean": rt.mean(0).tolist(),
             "ridge_agreement_mean": agree.mean(0).tolist(),
             "budgets": {}}
        for T in BUDGETS:
            k = int(np.flatnonzero(steps <= T)[-1])
            at = worst[:, k]
            chosen = np.array([int(np.argmax(lw[: k + 1])) for lw in loo_worst])
            sel = worst[np.arange(len(runs)), chosen]
            s["budgets"][str(T)] = {
                "at_budget": mean_and_sem(at), "loo_stopped": mean_and_sem(sel),
                "loo_step_median": float(np.median(steps[chosen]))}
        # ridge chosen by its own exact LOO worst-class accuracy (alphas = 1/(2 lr t))
        ci = np.array([int(np.argmax(x)) for x in rl])
        s["ridge_loo_selected"] = mean_and_sem(rt[np.arange(len(runs)), ci])
        gi = np.array([int(np.argmax(x)) for x in loo_worst])
        s["gd_loo_selected"] = mean_and_sem(worst[np.arange(len(runs)), gi])
        s["gd_final"] = mean_and_sem(worst[:, -1])
        s["gd_best_step_oracle"] = mean_and_sem(worst.max(1))
        summary[w] = s
        lines.append(f"{w:15s} GD final {s['gd_final'][0]:.3f}±{s['gd_final'][1]:.3f}  "
                     f"GD LOO-stopped {s['gd_loo_selected'][0]:.3f}±{s['gd_loo_selected'][1]:.3f}"
                     f"  ridge LOO-alpha {s['ridge_loo_selected'][0]:.3f}±"
                     f"{s['ridge_loo_selected'][1]:.3f}  oracle step "
                     f"{s['gd_best_step_oracle'][0]:.3f}")
        for T, b in s["budgets"].items():
            lines.append(f"    budget {T:>8s}: at budget {b['at_budget'][0]:.3f}±"
                         f"{b['at_budget'][1]:.3f}, LOO-stopped {b['loo_stopped'][0]:.3f}±"
                         f"{b['loo_stopped'][1]:.3f} (median step {b['loo_step_median']:.0f})")
    for r in rec["runs"]:
        if "loo_vs_refit" in r:
            lv = r["loo_vs_refit"]
            lines.append(f"LOO shortcut vs refit ({r['weighting']}): steps {lv['steps']}")
            lines.append("   max |score gap| " + " ".join(f"{x:.3g}" for x in
                                                          lv["max_abs_score_gap"]))
            lines.append("   label agreement " + " ".join(f"{x:.3f}" for x in
                                                          lv["label_agreement"]))
    return summary, "\n".join(lines)


def figure(rec, summary, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = np.asarray(rec["steps"])
    x = np.maximum(steps, 0.5)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for w, colour in zip(rec["weightings"], ["C0", "C1", "C2", "C3"]):
        runs = [r for r in rec["runs"] if r["weighting"] == w]
        test = np.array([r["test"] for r in runs])
        for ax, k, name in ((axes[0], 1, "minority (shirt)"), (axes[1], 0, "majority (T-shirt)")):
            m, se = mean_and_sem(test[..., k])
            ax.plot(x, m, color=colour, label=w)
            ax.fill_between(x, m - se, m + se, color=colour, alpha=0.2)
            ax.set_title(f"{name}: test accuracy")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xlabel("GD step t (lr = 1/s_max; t=0 drawn at 0.5)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("per-class test accuracy (mean ± SE)")
    axes[0].legend()
    cfg = rec["config"]
    fig.suptitle(f"Exact square-loss GD, FMNIST frozen features, n={cfg['n']}, minority share "
                 f"{cfg['share']}, {cfg['repeats']} repeats")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--share", type=float, default=0.09)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--refit-rows", type=int, default=16)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/dynamics_square.json"))
    args = p.parse_args()
    if args.quick:
        args.repeats, args.refit_rows = 2, 6
    t0 = time.time()
    rec = run(args)
    summary, text = summarise(rec)
    rec["summary"] = summary
    rec["seconds"] = time.time() - t0
    write_json(args.out, rec)
    if not args.quick:
        figure(rec, summary, ROOT / "docs/figures/dynamics/square_fmnist_shirt_tshirt.png")
    print(text)


if __name__ == "__main__":
    main()
