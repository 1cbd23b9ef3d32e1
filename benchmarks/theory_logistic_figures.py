"""Per-class errors against the weight ratio, square loss and cross-entropy side by side.

Theory only (no randomness): ``lastlayer.theory.binary_errors`` (square loss, closed
form) and ``lastlayer.theory.logistic_errors`` (cross-entropy, CGMT fixed point), for
two Gaussian classes with antipodal means of norm ``--mean-norm``, minority prior
``--prior``, ridgeless, at two dimension ratios below the cross-entropy separability
threshold. Vertical lines: the square-loss equalising ratio ``(2 n_- - d)/(2 n_+ - d)``
and the cross-entropy equalising ratio (``lastlayer.theory.equalizing_ratio``).

    python benchmarks/theory_logistic_figures.py --out docs/figures/errors_vs_ratio_logistic.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import write_json  # noqa: E402

from lastlayer.theory import (  # noqa: E402
    binary_errors,
    equalizing_ratio,
    logistic_errors,
    optimal_weight_ratio,
    separability_threshold,
)


def curves(prior, delta, mean_norm, ratios):
    sq = [binary_errors(prior, delta, weight_ratio=r, mean_norm=mean_norm) for r in ratios]
    ce = []
    for r in ratios:
        try:
            ce.append(logistic_errors(prior, delta, weight_ratio=r, mean_norm=mean_norm))
        except RuntimeError:  # the fixed point did not converge at this ratio
            ce.append(None)
    get = lambda preds, a: [np.nan if p is None else getattr(p, a) for p in preds]  # noqa: E731
    return {"square": {"pos": get(sq, "error_pos"), "neg": get(sq, "error_neg")},
            "logistic": {"pos": get(ce, "error_pos"), "neg": get(ce, "error_neg")}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prior", type=float, default=0.1, help="minority prior")
    ap.add_argument("--mean-norm", type=float, default=1.2)
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.6],
                    help="d/n as fractions of the cross-entropy separability threshold")
    ap.add_argument("--out", default="docs/figures/errors_vs_ratio_logistic.png")
    ap.add_argument("--json", default="benchmarks/results/theory_logistic_figures.json")
    args = ap.parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    thr = separability_threshold(args.prior, mean_norm=args.mean_norm)
    ratios = np.geomspace(1.0, 200.0, 41)
    fig, axes = plt.subplots(1, len(args.fractions), figsize=(5.2 * len(args.fractions), 4),
                             squeeze=False)
    record = {"prior": args.prior, "mean_norm": args.mean_norm, "threshold": thr,
              "ratios": ratios.tolist(), "panels": []}
    for ax, frac in zip(axes[0], args.fractions):
        delta = frac * thr
        c = curves(args.prior, delta, args.mean_norm, ratios)
        rho_sq = optimal_weight_ratio(args.prior, delta)
        rho_ce = equalizing_ratio(args.prior, delta, mean_norm=args.mean_norm)
        for loss, style in (("square", "-"), ("logistic", "--")):
            ax.plot(ratios, c[loss]["pos"], style, color="C3", label=f"{loss}: minority")
            ax.plot(ratios, c[loss]["neg"], style, color="C0", label=f"{loss}: majority")
        ax.axvline(rho_sq, color="0.4", lw=0.8, ls="-", label=f"square equalising {rho_sq:.1f}")
        if np.isfinite(rho_ce):
            ax.axvline(rho_ce, color="0.4", lw=0.8, ls="--",
                       label=f"cross-entropy equalising {rho_ce:.1f}")
        ax.set_xscale("log")
        ax.set_xlabel("weight ratio omega_minority / omega_majority")
        ax.set_ylabel("test error")
        ax.set_title(f"pi+ = {args.prior:g}, d/n = {delta:.3g} ({frac:g} x threshold), "
                     f"||mu|| = {args.mean_norm:g}", fontsize=9)
        ax.legend(fontsize=7)
        record["panels"].append({"fraction": frac, "dim_ratio": delta, "square_ratio": rho_sq,
                                 "logistic_ratio": rho_ce, "curves": c})
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    write_json(args.json, record, default=float)
    print(f"wrote {args.out} and {args.json}")


if __name__ == "__main__":
    main()
