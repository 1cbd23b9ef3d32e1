"""Command-line interface: a thin layer over the functional core.

Every command prints a readable table; with ``--json`` it prints exactly one JSON
object on stdout and nothing else (progress bars go to stderr). Usage errors and
bad input exit with status 2. The JSON fields are documented in ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings

import numpy as np

__all__ = ["main", "build_parser"]


class UsageError(Exception):
    """Bad input from the command line (exit status 2)."""


def _emit(args, payload, text):
    if getattr(args, "json", False):
        from .io import json_default
        sys.stdout.write(json.dumps(payload, default=json_default) + "\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")


def _table(rows, headers, floatfmt=".4f"):
    from .metrics import format_table
    return format_table(rows, headers=headers, floatfmt=floatfmt)


# ---------------------------------------------------------------- theory
def cmd_theory(args):
    if getattr(args, "loss", "square") == "logistic":
        return _cmd_theory_logistic(args)
    from .theory import (binary_errors, numerical_optimal_ratio, optimal_class_weights,
                         optimal_weight_ratio, weights_from_ratio)
    pi = args.minority_prior
    pred = binary_errors(pi, args.dim_ratio, weight_ratio=args.weight_ratio, ridge=args.ridge,
                         mean_norm=args.mean_norm)
    w = weights_from_ratio(pi, args.weight_ratio)
    if args.ridge == 0:
        rho_eq = optimal_weight_ratio(pi, args.dim_ratio)
    else:
        n = 10_000  # the ridge closed form works with counts; any large n gives the ratio
        n_pos = max(1, round(pi * n))
        opt = optimal_class_weights([n_pos, n - n_pos], args.dim_ratio * n, ridge=args.ridge,
                                    fit_intercept=False)
        rho_eq = float(opt.weights[0] / opt.weights[1]) if opt.feasible else math.inf
    worst = numerical_optimal_ratio(pi, args.dim_ratio, ridge=args.ridge,
                                    mean_norm=args.mean_norm, objective="worst")
    bal = numerical_optimal_ratio(pi, args.dim_ratio, ridge=args.ridge,
                                  mean_norm=args.mean_norm, objective="balanced")
    for found in (worst, bal):
        found["at_bound"] = _at_edge(found)
    payload = {
        "minority_prior": pi, "dim_ratio": args.dim_ratio, "mean_norm": args.mean_norm,
        "ridge": args.ridge, "weight_ratio": args.weight_ratio,
        "weights": w.tolist(),
        "error_minority": pred.error_pos, "error_majority": pred.error_neg,
        "worst_class_error": pred.worst_class_error, "balanced_error": pred.balanced_error,
        "ratio_of_priors": (1 - pi) / pi,
        "equalizing_weight_ratio": rho_eq if math.isfinite(rho_eq) else None,
        "equalizing_feasible": bool(math.isfinite(rho_eq)),
        "worst_class_optimal_ratio": worst["weight_ratio"],
        "worst_class_optimal_error": worst["error"],
        "worst_class_optimal_at_bound": worst["at_bound"],
        "balanced_optimal_ratio": bal["weight_ratio"],
        "balanced_optimal_error": bal["error"],
        "balanced_optimal_at_bound": bal["at_bound"],
        "details": pred.as_dict(),
    }
    if args.simulate:
        from .theory import simulate_binary
        sim = simulate_binary(pi, args.dim_ratio, w, ridge=args.ridge, n=args.n,
                              mean_norm=args.mean_norm, repeats=args.simulate, seed=args.seed)
        payload["simulation"] = {
            "n": args.n, "repeats": args.simulate, "seed": args.seed,
            "error_minority": float(sim.mean[0]), "error_minority_sem": float(sim.sem[0]),
            "error_majority": float(sim.mean[1]), "error_majority_sem": float(sim.sem[1]),
        }
    rows = [["minority (+)", pi, w[0], pred.error_pos, pred.leverage[0]],
            ["majority (-)", 1 - pi, w[1], pred.error_neg, pred.leverage[1]]]
    heads = ["class", "prior", "weight", "theory error", "avg leverage"]
    if args.simulate:
        sm = payload["simulation"]
        rows[0].append(f"{sm['error_minority']:.4f} ± {sm['error_minority_sem']:.4f}")
        rows[1].append(f"{sm['error_majority']:.4f} ± {sm['error_majority_sem']:.4f}")
        heads.append(f"simulated (n={args.n}, {args.simulate} repeats)")
    eq = f"{rho_eq:.4g}" if math.isfinite(rho_eq) else "none (infeasible: delta >= 2 pi_+)"
    text = "\n".join([
        f"Weighted ridge, two Gaussian classes: pi_+={pi:g}, d/n={args.dim_ratio:g}, "
        f"||mu||={args.mean_norm:g}, ridge={args.ridge:g}, weight ratio={args.weight_ratio:g}",
        "",
        _table(rows, heads),
        "",
        f"worst-class error {pred.worst_class_error:.4f}   balanced error {pred.balanced_error:.4f}",
        f"ratio of priors            {(1 - pi) / pi:.4g}",
        f"error-equalising ratio     {eq}",
        f"worst-class optimum        {_optimum(worst)}",
        f"balanced-error optimum     {_optimum(bal)}",
    ])
    _emit(args, payload, text)


def _cmd_theory_logistic(args):
    from .theory import theory_summary
    p = theory_summary(args.minority_prior, args.dim_ratio, loss="logistic",
                       mean_norm=args.mean_norm, ridge=args.ridge,
                       weight_ratio=args.weight_ratio, simulate=args.simulate, n=args.n,
                       seed=args.seed)
    lines = [f"Weighted logistic regression, two Gaussian classes: pi_+={p['minority_prior']:g}, "
             f"d/n={p['dim_ratio']:g}, ||mu||={p['mean_norm']:g}, ridge={p['ridge']:g}, "
             f"weight ratio={p['weight_ratio']:g}",
             f"separability threshold d/n = {p['separability_threshold']:.4g}"]
    if p["separable"]:
        lines.append("separable: no ridgeless minimiser (it diverges to the max-margin "
                     "classifier, where weights do not matter); use --ridge > 0")
    else:
        f = lambda v: "none" if v is None else f"{v:.4g}"  # noqa: E731
        lines += [f"error minority {p['error_minority']:.4f}   majority {p['error_majority']:.4f}",
                  f"ratio of priors            {p['ratio_of_priors']:.4g}",
                  f"error-equalising ratio     {f(p['equalizing_weight_ratio'])}",
                  f"square-loss rule ratio     {f(p['square_rule_ratio'])}",
                  f"worst-class optimum        {p['worst_class_optimal_ratio']:.4g} "
                  f"(error {p['worst_class_optimal_error']:.4f})",
                  f"balanced-error optimum     {p['balanced_optimal_ratio']:.4g} "
                  f"(error {p['balanced_optimal_error']:.4f})"]
        if "simulation" in p:
            sm = p["simulation"]
            lines.append(f"simulated (n={sm['n']}, {sm['repeats']} repeats): "
                         f"{sm['error_minority']:.4f} ± {sm['error_minority_sem']:.4f} / "
                         f"{sm['error_majority']:.4f} ± {sm['error_majority_sem']:.4f}")
    _emit(args, p, "\n".join(lines))


#: numerical_optimal_ratio searches weight ratios in [1e-3, 1e4] (121 log steps)
_RATIO_BOUNDS = (1e-3, 1e4)


def _at_edge(found):
    """The optimum sits within 2.5 grid steps of an end of the searched ratios: the
    objective is still falling (or flat) there, so it is no interior optimum."""
    u, (lo, hi) = math.log(found["weight_ratio"]), map(math.log, _RATIO_BOUNDS)
    return bool(found["at_bound"] or min(u - lo, hi - u) < 2.5 * (hi - lo) / 120)


def _optimum(found):
    """An optimum of numerical_optimal_ratio, or what the search saw at its edge."""
    if found["at_bound"]:
        return (f"none inside the searched ratios [1e-3, 1e4]: the best is at the edge, "
                f"{found['weight_ratio']:.4g} (error {found['error']:.4f}), where the error "
                f"is flat or still falling")
    return f"{found['weight_ratio']:.4g} (error {found['error']:.4f})"


# --------------------------------------------------------------- weights
def cmd_weights(args):
    if getattr(args, "loss", "square") == "logistic":
        from .theory import weights_summary
        if args.mean_norm is None:
            raise UsageError("lastlayer weights --loss logistic needs --mean-norm")
        p = weights_summary(args.counts, args.dim, loss="logistic", mean_norm=args.mean_norm,
                            ridge=args.ridge, target=args.target)
        text = (f"Logistic class weights (mean weight over samples = 1): "
                f"{[round(v, 4) for v in p['class_weights']]}  ratio {p['weight_ratio']:.4g} "
                f"({p['objective']}); square-loss rule "
                f"{[round(v, 4) for v in p['square_rule_weights']]}; separability threshold "
                f"d/n = {p['separability_threshold']:.4g}" + (f"\n{p['message']}" if p["message"] else ""))
        return _emit(args, p, text)
    from .theory import optimal_class_weights
    counts = args.counts
    opt = optimal_class_weights(counts, args.dim, ridge=args.ridge, target=args.target,
                                fit_intercept=not args.no_intercept,
                                max_leverage=args.max_leverage)
    n = float(sum(counts))
    p = opt.as_dict()
    tgt = (np.full(len(counts), 1 / len(counts)) if args.target is None
           else np.asarray(args.target, float) / np.sum(args.target))
    ratio = tgt / np.asarray(counts, float)
    ratio = ratio * n / float(np.asarray(counts) @ ratio)
    payload = {"counts": list(counts), "dim": args.dim, "ridge": args.ridge,
               "target": tgt.tolist(), **p, "ratio_of_priors_weights": ratio.tolist()}
    rows = [[i, c, tgt[i], opt.weights[i], ratio[i], opt.leverage[i]]
            for i, c in enumerate(counts)]
    text = "\n".join([
        f"Optimal class weights: n={int(n)}, d={args.dim:g}, ridge={args.ridge:g} "
        f"(mean weight over samples = 1)", "",
        _table(rows, ["class", "n", "target", "optimal weight", "ratio-of-priors weight",
                      "avg leverage"]), "",
        f"df = {opt.df:.4g}   feasible = {opt.feasible}",
        *([opt.message] if opt.message else []),
    ])
    _emit(args, payload, text)


# ------------------------------------------------------------------- fit
def _progress(args):
    """Progress on stderr unless --quiet, or --json (one object on stdout)."""
    return not (getattr(args, "quiet", False) or getattr(args, "json", False))


def _load(path, args, option):
    from .io import load_features
    try:
        return load_features(path, label_column=args.label_column,
                             group_column=args.group_column)
    except (ValueError, OSError) as e:
        raise UsageError(f"{option}: {e}") from None


def _check_groups(fs, args, option):
    if args.groups and fs.groups is None:
        raise UsageError(
            f"--groups: {option} '{fs.source}' has no group labels (expected an array or "
            f"column named '{args.group_column}'; choose another with --group-column).")


def _loo_estimates(clf):
    """Per-unit leave-one-out accuracy and standard error (None when not available)."""
    if not hasattr(clf, "loo_class_accuracy_"):
        return None
    units = getattr(clf, "groups_", clf.classes_)
    return {str(u): {"accuracy": float(a), "se": float(s)} for u, a, s in
            zip(units.tolist(), clf.loo_class_accuracy_, clf.loo_class_accuracy_se_)}


def _weight_rows(clf):
    est = _loo_estimates(clf) if not hasattr(clf, "groups_") else None
    return [[c, w, "" if est is None else f"{est[str(c)]['accuracy']:.3f} ± "
             f"{est[str(c)]['se']:.3f}"] for c, w in zip(clf.classes_.tolist(),
                                                        clf.class_weight_)]


def cmd_fit(args):
    from ._validation import check_output_path
    from .estimator import LastLayerClassifier
    from .io import save_layer
    if args.out:
        check_output_path(args.out, "--out", (".npz",))
    train = _load(args.train, args, "--train")
    _check_groups(train, args, "--train")
    ev = _load(args.test, args, "--test") if args.test else train
    if ev.n_features != train.n_features:
        raise UsageError(f"--test: '{args.test}' has {ev.n_features} features; the training "
                         f"file '{args.train}' has {train.n_features}. They must match.")
    alpha = args.alpha if args.alpha == "auto" else float(args.alpha)
    clf = LastLayerClassifier(weighting=args.weighting, loss=args.loss, alpha=alpha,
                              random_state=args.seed, precision=args.precision,
                              verbose=int(_progress(args)))
    t0 = time.perf_counter()
    clf.fit(train.X, train.y, groups=train.groups if args.groups else None)
    seconds = time.perf_counter() - t0
    from ._validation import unseen_labels
    rep = clf.report(ev.X, ev.y, ev.groups)
    payload = {
        "train": args.train, "evaluated_on": "test" if args.test else "train",
        "weighting": args.weighting, "loss": args.loss,
        "chosen_loss": clf.loss_, "chosen_weighting": clf.weighting_,
        "selection": clf.selection_,
        "selection_skipped": clf.plan_["selection_skipped"],
        "loo_class_accuracy": _loo_estimates(clf),
        "classes": clf.classes_.tolist(),
        "class_weights": clf.class_weight_.tolist(),
        "alpha": clf.alpha_, "df": clf.df_, "effective_dim": clf.effective_dim_,
        "feasible": clf.feasible_, "fit_seconds": seconds, "precision": clf.precision_,
        "per_class_accuracy": {str(r["label"]): r["accuracy"] for r in rep["per_class"]},
        "worst_class_accuracy": rep["worst_class_accuracy"],
        "balanced_accuracy": rep["balanced_accuracy"],
        "accuracy": rep["accuracy"],
        "unseen_labels": unseen_labels(ev.y, clf.classes_),
        "report": rep,
    }
    if args.out:
        save_layer(args.out, clf.coef_, clf.intercept_, clf.classes_,
                   weighting=clf.weighting_, loss=clf.loss_, alpha=clf.alpha_, df=clf.df_,
                   class_weights=clf.class_weight_.tolist())
        payload["layer"] = args.out
    from .metrics import report_markdown
    text = "\n".join([
        f"Fitted last layer on {args.train}: n={train.X.shape[0]}, d={train.X.shape[1]}, "
        f"weighting={args.weighting}, loss={args.loss} -> chose {clf.loss_} loss, "
        f"{clf.weighting_} weights",
        f"alpha={clf.alpha_:.3g}  df={clf.df_:.4g}  effective dim (PCA 99%)="
        f"{clf.effective_dim_:.0f}  feasible={clf.feasible_}  ({seconds:.2f} s, statistics "
        f"in {clf.precision_})", "",
        _table(_weight_rows(clf), ["class", "loss weight", "LOO accuracy (± SE)"]), "",
        *([_table([[r["candidate"], r["estimate"], r["alpha"], "yes" if r["kept"] else ""]
                   for r in clf.selection_],
                  ["candidate", "LOO estimate", "alpha", "kept"]), ""]
          if len(clf.selection_) > 1 else []),
        *([f"Not compared: {clf.plan_['selection_skipped']} (--loss logistic fits "
           f"cross-entropy anyway)" if "cross-entropy" in clf.plan_["selection_skipped"]
           else f"Not compared: {clf.plan_['selection_skipped']}", ""]
          if clf.plan_["selection_skipped"] else []),
        f"Evaluated on {'test: ' + args.test if args.test else 'the training set'}",
        report_markdown(rep),
        *([f"labels never seen in training (accuracy 0 by construction): "
           f"{payload['unseen_labels']}"] if payload["unseen_labels"] else []),
        *([f"layer written to {args.out}"] if args.out else []),
    ])
    _emit(args, payload, text)


def cmd_compare(args):
    from ._validation import check_output_path
    from .compare import compare_weightings, summarise_comparison
    from .weights import WEIGHTINGS
    weightings = [w.strip() for w in args.weightings.split(",") if w.strip()]
    bad = [w for w in weightings if w not in WEIGHTINGS]
    if bad or not weightings:
        raise UsageError(f"--weightings must be a comma-separated list of {sorted(WEIGHTINGS)}."
                         f" Got unknown scheme(s) {bad} in {args.weightings!r}.")
    if args.repeats is None:
        args.repeats = 10 if args.subsample else 1
    elif args.repeats > 1 and not args.subsample:
        raise UsageError(f"--repeats {args.repeats} needs --subsample N: without it every "
                         "repeat fits the same rows and the spread is zero. Pass --subsample, "
                         "or leave --repeats out (one fit on all rows).")
    for option, path, suffixes in (("--figure", args.figure, (".png", ".pdf", ".svg")),
                                   ("--report", args.report, None)):
        if path:
            check_output_path(path, option, suffixes)
    train, test = _load(args.train, args, "--train"), _load(args.test, args, "--test")
    _check_groups(train, args, "--train")
    res = compare_weightings(train, test, weightings, repeats=args.repeats,
                             subsample=args.subsample, loss=args.loss, seed=args.seed,
                             progress=_progress(args), use_groups=args.groups)
    labels = [str(c) for c in np.unique(test.y).tolist()]
    summary, rows = summarise_comparison(res, weightings)
    payload = {"train": args.train, "test": args.test, "repeats": args.repeats,
               "subsample": args.subsample, "seed": args.seed, "loss": args.loss,
               "labels": labels, "weightings": summary}
    if args.figure:
        from .plots import plot_compare, save_figure
        save_figure(plot_compare(summary, labels), args.figure)
        payload["figure"] = args.figure
    spread = "mean ± standard error" if args.repeats > 1 else "one fit on all rows"
    text = "\n".join([
        f"{args.repeats} repeat(s), subsample={args.subsample or 'all'} of {args.train}; "
        f"test {args.test} ({spread})", "",
        _table(rows, ["weighting", "worst-class acc", "balanced acc", "mean alpha", "feasible"]),
        *([f"figure written to {args.figure}"] if args.figure else []),
    ])
    if args.report:
        from .io import atomic_write_text
        atomic_write_text(args.report, text + "\n")
    _emit(args, payload, text)


# ------------------------------------------------------------------ demo
def cmd_demo(args):
    from .demo import run_demo
    payload, text = run_demo(out_dir=args.out_dir, quick=args.quick, seed=args.seed,
                             progress=_progress(args))
    _emit(args, payload, text)


# -------------------------------------------------------------- dynamics
def _weighting_arg(text):
    """A named weighting, or comma-separated per-class weights (class order)."""
    parts = [x.strip() for x in text.split(",") if x.strip()]
    try:
        return [float(x) for x in parts]
    except ValueError:
        if len(parts) != 1:
            raise UsageError(f"--weighting: a scheme name or comma-separated numbers; "
                             f"got {text!r}") from None
        return parts[0]


def cmd_dynamics(args):
    from .dynamics import dynamics_report
    train = _load(args.train, args, "--train")
    test = _load(args.test, args, "--test") if args.test else None
    steps = sorted(set(args.steps))
    rep = dynamics_report(train.X, train.y, X_test=None if test is None else test.X,
                          y_test=None if test is None else test.y,
                          weighting=_weighting_arg(args.weighting), loss=args.loss,
                          lr=args.lr, steps=steps, alpha=args.alpha, seed=args.seed)
    rep = {"train": args.train, "test": args.test, **rep}
    sel = "loo" if args.loss == "square" else "cv"
    curves = [("train", rep["train_class_accuracy"]),
              (sel, rep["loo_class_accuracy"] if sel == "loo" else rep["cv_class_accuracy"])]
    if test is not None:
        curves.append(("test", rep["test_class_accuracy"]))
    rows = []
    for i, t in enumerate(rep["steps"]):
        row = [t, rep["selected_worst_class_accuracy"][i]]
        for k in range(len(rep["classes"])):
            row.append(" / ".join("-" if c[i][k] is None or c[i][k] != c[i][k]
                                  else f"{c[i][k]:.3f}" for _, c in curves))
        rows.append(row)
    heads = ["step", f"worst {sel}"] + [f"{c} ({' / '.join(n for n, _ in curves)})"
                                         for c in rep["classes"]]
    b = rep["best_index"]
    text = "\n".join([
        f"Full-batch GD on the {args.loss} loss from zero: {args.train} (n={rep['n_train']}, "
        f"d={rep['n_features']}), weighting={rep['weighting']}, lr={args.lr:g}, "
        f"alpha={args.alpha:g}",
        "class weights (mean one over samples): " + ", ".join(
            f"{c}: {w:.4g}" for c, w in zip(rep["classes"], rep["class_weights"])), "",
        _table(rows, heads, floatfmt=".3f"), "",
        f"best step by {'leave-one-out' if sel == 'loo' else str(rep['cv_folds']) + '-fold CV'}"
        f" worst-class accuracy: {rep['best_step']} "
        f"({rep['selected_worst_class_accuracy'][b]:.3f})"
        + (f", test worst-class accuracy there {min(rep['test_class_accuracy'][b]):.3f}"
           if test is not None else ""),
    ])
    _emit(args, rep, text)


# ---------------------------------------------------------------- parser
def _positive_float(name, allow_zero=False, upper=None):
    def parse(s):
        try:
            v = float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number; got {s!r}") from None
        lo_ok = v >= 0 if allow_zero else v > 0
        if not math.isfinite(v) or not lo_ok or (upper is not None and v >= upper):
            rng = f"[0, {upper or 'inf'})" if allow_zero else f"(0, {upper or 'inf'})"
            raise argparse.ArgumentTypeError(f"{name} must be in the range {rng}; got {s!r}")
        return v
    return parse


def _int(name, low):
    """An argparse type: an int of at least ``low``; the message names the option."""
    from ._validation import check_cli_int

    def parse(s):
        try:
            return check_cli_int(s, name, low)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    return parse


def _output_flags(parser, what="the result"):
    parser.add_argument("--json", action="store_true",
                        help=f"print {what} as exactly one JSON object on stdout (no "
                             f"progress output)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bars or phase messages on stderr (warnings and "
                             "errors are still shown)")


_FEATURES = ("feature file: .npz, .npy (X.npy beside y.npy), .csv, .parquet, "
             ".safetensors, a directory holding X.npy, or a directory of .npz/.parquet "
             "shards")


def _feature_flags(parser, test_required, auto_loss=False):
    parser.add_argument("--train", required=True, metavar="TRAIN",
                        help=f"training {_FEATURES}")
    parser.add_argument("--test", required=test_required, default=None, metavar="TEST",
                        help="test feature file (same formats and columns as --train)"
                             + ("" if test_required else "; default: report on TRAIN"))
    parser.add_argument("--label-column", default="y", metavar="NAME",
                        help="name of the label array/column/tensor (default: y)")
    parser.add_argument("--group-column", default="groups", metavar="NAME",
                        help="name of the group array/column/tensor (default: groups; "
                             "optional unless --groups)")
    losses = ["auto", "square", "logistic"] if auto_loss else ["square", "logistic"]
    parser.add_argument("--loss", choices=losses, default=losses[0],
                        help="square (ridge on one-hot targets) or logistic (multinomial "
                             "cross-entropy)" + ("; auto: chosen by leave-one-out with the "
                                                 "weighting" if auto_loss else "")
                             + f"; default: {losses[0]}")
    parser.add_argument("--groups", action="store_true",
                        help="weight the file's groups instead of its classes (worst-group "
                             "setting); the file must hold group labels")
    parser.add_argument("--seed", type=_int("--seed", 0), default=0, metavar="S",
                        help="random seed (int >= 0) of subsets, folds and subsamples")


def _theory_parser(sub):
    t = sub.add_parser("theory", help="predicted per-class errors for two Gaussian classes")
    t.add_argument("--minority-prior", type=_positive_float("--minority-prior", upper=1),
                   required=True, metavar="P", help="prior of the minority (positive) class, "
                   "in (0, 1)")
    t.add_argument("--dim-ratio", type=_positive_float("--dim-ratio"), required=True,
                   metavar="DELTA", help="d/n, in (0, inf)")
    t.add_argument("--mean-norm", type=_positive_float("--mean-norm", allow_zero=True),
                   default=1.0, metavar="S", help="means mu and -mu with ||mu|| = S "
                   "(default 1)")
    t.add_argument("--weight-ratio", type=_positive_float("--weight-ratio"), default=None,
                   metavar="RHO", help="minority weight / majority weight "
                   "(default: the ratio of priors); weights have mean one over samples")
    t.add_argument("--ridge", type=_positive_float("--ridge", allow_zero=True), default=0.0,
                   metavar="L", help="ridge of the (1/n)-scaled objective, >= 0 (default 0)")
    t.add_argument("--simulate", type=_int("--simulate", 0), default=0, metavar="R",
                   help="also run R Monte Carlo repeats (default 0: none)")
    t.add_argument("--n", type=_int("--n", 4), default=1500, metavar="N",
                   help="samples per simulated repeat (default 1500)")
    t.add_argument("--seed", type=_int("--seed", 0), default=0, metavar="S",
                   help="seed of the simulation (int >= 0)")
    t.add_argument("--loss", choices=["square", "logistic"], default="square",
                   help="loss of the fitted layer: square (closed form) or logistic "
                        "(weighted cross-entropy, CGMT fixed point; adds the separability "
                        "threshold)")
    _output_flags(t)
    t.set_defaults(func=cmd_theory)


def _weights_parser(sub):
    w = sub.add_parser("weights", help="optimal class weights from counts and dimension")
    w.add_argument("--counts", type=_int("--counts", 1), nargs="+", required=True,
                   metavar="N", help="training samples per class (two or more positive ints)")
    w.add_argument("--dim", type=_positive_float("--dim", allow_zero=True), required=True,
                   metavar="D", help="feature dimension (or effective dimension), >= 0")
    w.add_argument("--ridge", type=_positive_float("--ridge", allow_zero=True), default=0.0,
                   metavar="L", help="ridge, >= 0 (default 0: df = D, plus the intercept)")
    w.add_argument("--target", type=_positive_float("--target", allow_zero=True), nargs="+",
                   default=None, metavar="P", help="target mixture, one share per class "
                   "(normalised; default uniform)")
    w.add_argument("--max-leverage", type=_positive_float("--max-leverage", upper=1),
                   default=0.95, metavar="A", help="average leverage a class is held at "
                   "when it cannot carry its share, in (0, 1) (default 0.95)")
    w.add_argument("--no-intercept", action="store_true",
                   help="do not count the intercept as a degree of freedom")
    w.add_argument("--loss", choices=["square", "logistic"], default="square",
                   help="square: equal degrees-of-freedom weights (any number of classes); "
                        "logistic: two classes, the ratio equalising the cross-entropy "
                        "theory's class errors (needs --mean-norm)")
    w.add_argument("--mean-norm", type=_positive_float("--mean-norm"), default=None,
                   metavar="S", help="||mu|| of the antipodal Gaussian model, in noise "
                   "standard deviations (for --loss logistic; estimate it with "
                   "lastlayer.theory.estimate_mean_norm)")
    _output_flags(w)
    w.set_defaults(func=cmd_weights)


def _fit_parser(sub):
    from .weights import WEIGHTINGS
    f = sub.add_parser("fit", help="fit a last layer on a feature file")
    _feature_flags(f, test_required=False, auto_loss=True)
    schemes = ["auto", *sorted(WEIGHTINGS)]
    f.add_argument("--weighting", default="auto", choices=schemes, metavar="SCHEME",
                   help=f"loss weights, one of {', '.join(schemes)} (default: auto, chosen "
                        f"by leave-one-out with the loss)")
    f.add_argument("--alpha", default="auto", metavar="ALPHA",
                   help="ridge: 'auto' (leave-one-out on the training rows) or a float >= 0")
    f.add_argument("--precision", choices=["auto", "float64", "float32"], default="auto",
                   help="Gram products of the statistics: auto (float32 for float32 features),"
                        " float64 or float32 (see LastLayerClassifier)")
    f.add_argument("--out", default=None, metavar="LAYER.npz",
                   help="write the fitted layer here (.npz, atomically)")
    _output_flags(f)
    f.set_defaults(func=cmd_fit)


def _compare_parser(sub):
    from .weights import WEIGHTINGS
    c = sub.add_parser("compare", help="compare weighting schemes over repeated subsamples")
    _feature_flags(c, test_required=True)
    c.add_argument("--weightings", default="none,balanced,sqrt,effective_number,downsample,"
                   "optimal_theory,optimal", metavar="LIST",
                   help=f"comma-separated schemes among {', '.join(sorted(WEIGHTINGS))}")
    c.add_argument("--repeats", type=_int("--repeats", 1), default=None, metavar="R",
                   help="repeats (int >= 1; default 10 with --subsample, else 1)")
    c.add_argument("--subsample", type=_int("--subsample", 2), default=None, metavar="N",
                   help="draw N training rows per repeat, stratified (every class keeps at "
                        "least two: N >= 2 x classes); default: all rows, one repeat")
    c.add_argument("--figure", default=None, metavar="PNG",
                   help="write a figure (.png, .pdf or .svg; needs lastlayer[plots])")
    c.add_argument("--report", default=None, metavar="MD", help="write the table as text")
    _output_flags(c)
    c.set_defaults(func=cmd_compare)


def _nonneg_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"steps must be non-negative integers; got {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"steps must be non-negative integers; got {s!r}")
    return v


def _add_dynamics_parser(sub, parser):
    """Register ``lastlayer dynamics`` on ``sub``; returns ``parser``."""
    dy = sub.add_parser("dynamics", help="per-class curves of full-batch GD on the weighted "
                        "loss, and the step with the best leave-one-out worst-class accuracy")
    dy.add_argument("--train", required=True, metavar="TRAIN",
                    help="training feature file (as for fit)")
    dy.add_argument("--test", default=None, metavar="TEST",
                    help="held-out feature file: adds test per-class accuracy")
    dy.add_argument("--label-column", default="y", metavar="NAME",
                    help="name of the label array/column/tensor (default: y)")
    dy.add_argument("--group-column", default="groups", metavar="NAME",
                    help="name of the group array/column/tensor (default: groups; unused "
                         "by dynamics, which weights classes)")
    dy.add_argument("--weighting", default="none", metavar="W",
                    help="class weights: a scheme (none, balanced, sqrt, effective_number, "
                         "upsample, optimal_theory, optimal) or comma-separated per-class "
                         "weights in sorted class order; rescaled to mean one over samples")
    dy.add_argument("--loss", choices=["square", "logistic"], default="square",
                    help="square: exact closed-form GD with leave-one-out; logistic: explicit "
                         "GD with the step chosen by 5-fold CV")
    dy.add_argument("--lr", type=_positive_float("--lr"), required=True, metavar="LR",
                    help="GD step size (square loss: must be below 2 / s_max)")
    dy.add_argument("--steps", type=_nonneg_int, nargs="+", required=True, metavar="S",
                    help="steps at which to report (sorted, duplicates dropped)")
    dy.add_argument("--alpha", type=_positive_float("--alpha", allow_zero=True), default=0.0,
                    metavar="A", help="ridge on W in the (1/n)-scaled objective (default 0)")
    dy.add_argument("--seed", type=_int("--seed", 0), default=0, metavar="S",
                    help="seed for data-driven weightings and the CV folds (>= 0)")
    _output_flags(dy, "the curves")
    dy.set_defaults(func=cmd_dynamics)
    return parser


def build_parser():
    p = argparse.ArgumentParser(
        prog="lastlayer",
        description="Last-layer retraining with loss weights that are right the first time.",
        epilog="Exit status: 0 success, 2 bad usage or input (the message names the option "
               "or file), 1 only for an internal error (a bug: please report it). See "
               "docs/cli.md.")
    from . import __version__
    p.add_argument("--version", action="version", version=f"lastlayer {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _theory_parser(sub)
    _weights_parser(sub)
    _fit_parser(sub)
    _compare_parser(sub)
    d = sub.add_parser("demo", help="the README's main job (real images, small protocol)")
    d.add_argument("--out-dir", default="lastlayer-demo", metavar="DIR",
                   help="folder for the figures and the report (created; default "
                        "lastlayer-demo)")
    d.add_argument("--quick", action="store_true", help="an even smaller run")
    d.add_argument("--seed", type=_int("--seed", 0), default=0, metavar="S",
                   help="random seed (int >= 0)")
    _output_flags(d)
    d.set_defaults(func=cmd_demo)

    return _add_dynamics_parser(sub, p)


def _show_warning(command):
    """Warnings as one line on stderr: 'lastlayer fit: warning: ...'."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"lastlayer {command}: warning: {message}", file=sys.stderr, flush=True)
    return show


def main(argv=None):
    """Run the command line; returns the exit status (0, 2 for bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "fit" and args.alpha != "auto":
        try:
            if float(args.alpha) < 0 or not math.isfinite(float(args.alpha)):
                raise ValueError
        except ValueError:
            parser.error(f"argument --alpha: must be 'auto' or a float >= 0; got {args.alpha!r}")
    if args.command == "theory" and args.weight_ratio is None:
        args.weight_ratio = (1 - args.minority_prior) / args.minority_prior
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning(args.command)
        try:
            args.func(args)
        except (UsageError, ValueError, OSError, ImportError) as e:
            print(f"lastlayer {args.command}: error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
