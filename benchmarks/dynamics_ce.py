"""Cross-entropy dynamics on separable retraining sets (issue 13, part 2).

Do fixed loss weights wash out under GD on the cross-entropy (same max-margin limit,
different early path)? Does instance-level loss-based reweighting
(``r_i ~ exp(loss_i / tau)``) help the minority early, and where does it end up?

Data:
* real: Fashion-MNIST shirt (minority, 1) vs T-shirt (0), frozen EfficientNet-Lite0
  features (1280-d), the pool / test set of ``benchmarks/dynamics_square.py``; n = 200
  at minority share 9%, rows drawn with ``default_rng([seed, n, r])``; features
  standardised with the training rows' mean and standard deviation (so that the
  plain-GD step ``lr = 1 / lambda_max`` is not dictated by the feature offset).
* gauss: two Gaussian classes ``N(+-mu, I_d)``, ``||mu|| = 1.5``, d = 400, n = 200,
  minority share 10% (separable since d > n); test 2000 per class; rows from
  ``default_rng([seed, 1, r])``.

Runs per repeat: GD with weights none / balanced; GD with loss-based reweighting
(tau = 0.5 and 0.1, from unit class weights); Adam (lr 1e-3) none / balanced.
GD step ``lr = 1 / lambda_max((1/n) sum_i r_i x~_i x~_i^T)`` (an upper bound of the
softmax Hessian is half that matrix). Reference: the hard-margin direction on [x, 1]
(``lastlayer.dynamics_ce.max_margin``).

Usage: ``python benchmarks/dynamics_ce.py [--quick]``; writes
benchmarks/results/dynamics_ce.json and docs/figures/dynamics/ce_*.png.
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
from lastlayer.dynamics_ce import cosine, logistic_gd, max_margin  # noqa: E402
from lastlayer.metrics import mean_and_sem  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUNS = {  # name: (class weighting, optimizer, tau)
    "gd_none": ("none", "gd", None),
    "gd_balanced": ("balanced", "gd", None),
    "gd_loss_tau0.5": ("none", "gd", 0.5),
    "gd_loss_tau0.1": ("none", "gd", 0.1),
    "adam_none": ("none", "adam", None),
    "adam_balanced": ("balanced", "adam", None),
}


def data(kind, r, seed, n=200):
    if kind == "real":
        task = demo.load_binary_task(6, 0, pool=(1000, 1000), test_per_class=1000, size=64,
                                     seed=0, progress=False)
        n_min = int(round(0.09 * n))
        rng = np.random.default_rng([seed, n, r])
        rows = demo.draw_counts(task["y_pool"], {1: n_min, 0: n - n_min}, rng)
        X, y = task["X_pool"][rows], task["y_pool"][rows]
        mu, sd = X.mean(0), X.std(0) + 1e-6
        return (X - mu) / sd, y, (task["X_test"] - mu) / sd, task["y_test"]
    rng = np.random.default_rng([seed, 1, r])
    d = 400
    mu = np.zeros(d)
    mu[0] = 1.5
    n_min = int(round(0.1 * n))
    y = np.r_[np.ones(n_min, int), np.zeros(n - n_min, int)]
    X = rng.normal(size=(n, d)) + np.where(y[:, None] == 1, mu, -mu)
    yt = np.repeat([0, 1], 2000)
    Xt = rng.normal(size=(4000, d)) + np.where(yt[:, None] == 1, mu, -mu)
    return X, y, Xt, yt


def run(args):
    steps = np.unique(np.r_[0, np.round(np.logspace(0, np.log10(args.max_steps), 26))]
                      ).astype(np.int64)
    rec = {"config": vars(args), "steps": steps.tolist(), "runs": []}
    for kind in args.kinds:
        for r in range(args.repeats):
            X, y, Xt, yt = data(kind, r, args.seed)
            counts = np.bincount(y, minlength=2)
            Theta_mm, margin = max_margin(X, y, 2)
            coefs = {}
            for name, (w, opt, tau) in RUNS.items():
                t0 = time.perf_counter()
                cw = np.ones(2) if w == "none" else counts.sum() / (2.0 * counts)
                Xa = np.hstack([X, np.ones((len(y), 1))])
                lam = np.linalg.eigvalsh((Xa * cw[y][:, None]).T @ Xa / len(y))[-1]
                lr = 1.0 / lam if opt == "gd" else args.adam_lr
                res = logistic_gd(X, y, 2, class_weights=cw, lr=lr, steps=steps,
                                  optimizer=opt, tau=tau, X_test=Xt, y_test=yt,
                                  record_coef=True)
                coefs[name] = res["coef"]
                cos_mm = cosine(res["coef"], np.broadcast_to(Theta_mm, res["coef"].shape))
                rec["runs"].append({
                    "kind": kind, "repeat": r, "run": name, "lr": lr, "class_weights":
                    cw.tolist(), "tau": tau, "optimizer": opt, "max_margin_min_margin": margin,
                    "test": res["test_class_accuracy"].tolist(),
                    "train": res["train_class_accuracy"].tolist(),
                    "train_loss": res["train_class_loss"].tolist(),
                    "minority_weight_share": res["minority_weight_share"].tolist(),
                    "norm": res["norm"].tolist(),
                    "cos_max_margin": np.nan_to_num(cos_mm).tolist(),
                    "seconds": time.perf_counter() - t0})
                print(f"{kind} {r} {name:15s} {time.perf_counter() - t0:.1f}s", file=sys.stderr,
                      flush=True)
            for a, b in (("gd_none", "gd_balanced"), ("adam_none", "adam_balanced"),
                         ("gd_none", "gd_loss_tau0.5"), ("gd_none", "gd_loss_tau0.1")):
                rec["runs"].append({"kind": kind, "repeat": r, "pair": [a, b], "cos":
                                    np.nan_to_num(cosine(coefs[a], coefs[b])).tolist()})
    return rec


def summarise(rec):
    steps = np.asarray(rec["steps"])
    show = [int(np.flatnonzero(steps <= s)[-1]) for s in (10, 100, 1000, 10**4, 10**5, 10**6)
            if s <= steps[-1]]
    lines, summary = [], {}
    for kind in rec["config"]["kinds"]:
        lines.append(f"== {kind}: steps {[int(steps[i]) for i in show]}")
        summary[kind] = {}
        for name in RUNS:
            rs = [r for r in rec["runs"] if r.get("run") == name and r["kind"] == kind]
            test = np.array([r["test"] for r in rs])
            mino, _ = mean_and_sem(test[..., 1])
            worst, wse = mean_and_sem(test.min(-1))
            cmm, cse = mean_and_sem(np.array([r["cos_max_margin"] for r in rs]))
            share = np.mean([r["minority_weight_share"] for r in rs], axis=0)
            summary[kind][name] = {"worst_test_mean": worst.tolist(), "worst_test_sem":
                                   wse.tolist(), "minority_test_mean": mino.tolist(),
                                   "cos_max_margin_mean": cmm.tolist(),
                                   "cos_max_margin_sem": cse.tolist(),
                                   "minority_weight_share_mean": share.tolist()}
            lines.append(f"  {name:15s} worst-class test " + " ".join(
                f"{worst[i]:.3f}±{wse[i]:.3f}" for i in show))
            lines.append(f"  {'':15s} cos to max-margin " + " ".join(
                f"{cmm[i]:.3f}" for i in show))
            if "loss" in name:
                lines.append(f"  {'':15s} minority weight share " + " ".join(
                    f"{share[i]:.3f}" for i in show))
        for pair in (("gd_none", "gd_balanced"), ("adam_none", "adam_balanced"),
                     ("gd_none", "gd_loss_tau0.5"), ("gd_none", "gd_loss_tau0.1")):
            cs = np.array([r["cos"] for r in rec["runs"] if r.get("pair") == list(pair)
                           and r["kind"] == kind])
            m, se = mean_and_sem(cs)
            summary[kind]["cos_" + "_vs_".join(pair)] = {"mean": m.tolist(), "sem": se.tolist()}
            lines.append(f"  cos({pair[0]}, {pair[1]}) " + " ".join(
                f"{m[i]:.4f}±{se[i]:.4f}" for i in show))
    return summary, "\n".join(lines)


def figure(rec, summary, path_prefix):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = np.maximum(np.asarray(rec["steps"]), 0.5)
    for kind in rec["config"]["kinds"]:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        for c, name in enumerate(RUNS):
            rs = [r for r in rec["runs"] if r.get("run") == name and r["kind"] == kind]
            test = np.array([r["test"] for r in rs])
            m, se = mean_and_sem(test[..., 1])
            axes[0].plot(steps, m, color=f"C{c}", label=name)
            axes[0].fill_between(steps, m - se, m + se, color=f"C{c}", alpha=0.2)
            m, se = mean_and_sem(test[..., 0])
            axes[1].plot(steps, m, color=f"C{c}")
            axes[1].fill_between(steps, m - se, m + se, color=f"C{c}", alpha=0.2)
            cm = summary[kind][name]["cos_max_margin_mean"]
            axes[2].plot(steps, cm, color=f"C{c}")
        for pair, style in ((("gd_none", "gd_balanced"), "k--"),):
            axes[2].plot(steps, summary[kind]["cos_" + "_vs_".join(pair)]["mean"], style,
                         label="cos(gd none, gd balanced)")
        axes[0].set_title("minority test accuracy")
        axes[1].set_title("majority test accuracy")
        axes[2].set_title("cosine to the max-margin direction")
        for ax in axes:
            ax.set_xscale("log")
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=8)
        axes[2].legend(fontsize=8)
        fig.suptitle(f"Cross-entropy dynamics ({kind}), mean ± SE over "
                     f"{rec['config']['repeats']} repeats")
        fig.tight_layout()
        path = Path(f"{path_prefix}_{kind}.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=200000)
    p.add_argument("--adam-lr", type=float, default=1e-3)
    p.add_argument("--kinds", nargs="+", default=["gauss", "real"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/dynamics_ce.json"))
    args = p.parse_args()
    if args.quick:
        args.repeats, args.max_steps = 1, 2000
    t0 = time.time()
    rec = run(args)
    summary, text = summarise(rec)
    rec["summary"] = summary
    rec["seconds"] = time.time() - t0
    write_json(args.out, rec)
    if not args.quick:
        figure(rec, summary, ROOT / "docs/figures/dynamics/ce")
    print(text)


if __name__ == "__main__":
    main()
