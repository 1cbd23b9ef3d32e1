"""The small-scale model (unconstrained features) under class imbalance (issue 13, part 3).

Counts (100, 100, 10, 10) (two majorities, two minorities), d = 16, init N(0, 1e-3^2),
full-batch GD, 20,000 steps, lr 0.05 (per-sample features) or 0.005 (collapsed, whose
gradients are n_k times larger), square loss and cross-entropy, weightings none /
balanced (omega ~ 1/n_k) / sqrt (omega ~ n_k^{-1/2}), all with mean one over samples;
seeds 0..R-1 (``numpy.random.default_rng(seed)`` draws the initialisation).

Measures per class the first step with class output >= 1/2 (square loss: half of the
target learned) and the step from which every sample of the class stays correctly
classified ("separated"), compared with the singular values of the weighted label
matrix (lastlayer.dynamics_ssm.label_singular_values).

Usage: ``python benchmarks/dynamics_ssm.py`` (~2 min); writes
benchmarks/results/dynamics_ssm.json and docs/figures/dynamics/ssm_square.png.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import write_json  # noqa: E402

from lastlayer.dynamics_ssm import label_singular_values, ufm_gd  # noqa: E402
from lastlayer.metrics import mean_and_sem  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
COUNTS = np.array([100, 100, 10, 10])


def weights(name):
    n = COUNTS.sum()
    base = {"none": np.ones(4), "balanced": 1.0 / COUNTS, "sqrt": 1.0 / np.sqrt(COUNTS)}[name]
    return base * n / (COUNTS @ base)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/dynamics_ssm.json"))
    args = p.parse_args()
    rec = {"config": {**vars(args), "counts": COUNTS.tolist(), "dim": 16, "init": 1e-3},
           "results": []}
    curves = {}
    lines = []
    for collapsed in (False, True):
        lr = 0.005 if collapsed else 0.05
        for loss in ("square", "ce"):
            for name in ("none", "balanced", "sqrt"):
                w = weights(name)
                runs = [ufm_gd(COUNTS, class_weights=w, loss=loss, lr=lr, steps=args.steps,
                               collapsed=collapsed, seed=s) for s in range(args.repeats)]
                half = np.array([r["half_step"] for r in runs], float)
                sep = np.array([r["separated_step"] for r in runs], float)
                sv = label_singular_values(COUNTS, w, loss=loss, collapsed=collapsed)
                hm, hs = mean_and_sem(half)
                sm, ss = mean_and_sem(sep)
                row = {"model": "collapsed" if collapsed else "per-sample", "loss": loss,
                       "weighting": name, "class_weights": w.tolist(), "lr": lr,
                       "label_singular_values": sv.tolist(),
                       "half_step_mean": hm.tolist(), "half_step_sem": hs.tolist(),
                       "separated_step_mean": sm.tolist(), "separated_step_sem": ss.tolist(),
                       "never_separated": int((sep < 0).sum()),
                       "final_class_output": np.mean([r["class_output"][-1] for r in runs],
                                                     0).tolist()}
                if loss == "square":
                    # predicted half-step ratio minority/majority = sigma_maj / sigma_min
                    row["predicted_ratio_min_over_maj"] = float(sv[0] / sv[2])
                    row["measured_half_ratio_min_over_maj"] = float(
                        np.mean(half[:, 2:]) / np.mean(half[:, :2]))
                rec["results"].append(row)
                curves[(collapsed, loss, name)] = np.mean([r["class_output"] for r in runs], 0)
                lines.append(
                    f"{row['model']:10s} {loss:6s} {name:8s} sigma {np.round(sv, 1)} | half "
                    + " ".join(f"{a:.0f}±{b:.0f}" for a, b in zip(hm, hs)) + " | separated "
                    + " ".join(f"{a:.0f}±{b:.0f}" for a, b in zip(sm, ss))
                    + (f" | ratio min/maj pred {row['predicted_ratio_min_over_maj']:.2f} "
                       f"meas {row['measured_half_ratio_min_over_maj']:.2f}"
                       if loss == "square" else ""))
    write_json(args.out, rec)
    print("\n".join(lines))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8), sharey=True)
    t = np.arange(args.steps + 1)
    panels = [(False, "none"), (False, "balanced"), (False, "sqrt"), (True, "balanced")]
    for ax, (collapsed, name) in zip(axes, panels):
        out = curves[(collapsed, "square", name)]
        for k in range(4):
            ax.plot(t, out[:, k], color="C0" if k < 2 else "C3", ls="-" if k % 2 == 0 else ":",
                    label=f"class {k} (n={COUNTS[k]})")
        ax.set_title(f"{'collapsed' if collapsed else 'per-sample'} UFM, {name}")
        ax.set_xlabel("GD step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("class output p_k (mean of (W h_i)_k)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Square-loss small-scale model, mean over {args.repeats} seeds")
    fig.tight_layout()
    path = ROOT / "docs/figures/dynamics/ssm_square.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
