"""The cross-entropy candidates' cost estimate against their measured time.

``loss="auto"`` compares its cross-entropy candidates only when
``lastlayer._fit.logistic_selection_flops`` is within ``logistic_selection_budget``.
This script fits ``LastLayerClassifier(loss="logistic")`` (one cross-entropy candidate:
the alpha path with its approximate leave-one-out, then the layer) and
``LastLayerClassifier(loss="square")`` on the power-law features of ``perf_fit.py``
at a few shapes near the budget, and reports the seconds, the estimate, whether the
default would compare cross-entropy, and the estimate's implied flop rate.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/ce_budget.py --out results/ce_budget.json
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _record import write_rows
from perf_fit import make_data

SHAPES = ((5000, 36, 26), (50000, 32, 10), (400, 1280, 20), (3000, 128, 5),
          (20000, 64, 10), (1000, 2048, 3), (3000, 512, 2), (2000, 256, 2))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    ap.add_argument("--out", default="", help="JSON output path ('' for none, the default)")
    args = ap.parse_args(argv)

    from lastlayer import LastLayerClassifier
    from lastlayer._fit import logistic_selection_budget, logistic_selection_flops

    warnings.simplefilter("ignore")
    rows = []
    for n, d, K in SHAPES:
        X, y, _, _ = make_data(n, d, 2.0, args.seed, spectrum="powerlaw",
                               dtype=np.dtype(np.float32), n_classes=K, n_test_per_class=1)
        row = {"n": n, "d": d, "classes": K, "estimate_flops": logistic_selection_flops(n, d, K),
               "budget_flops": logistic_selection_budget(K)}
        row["compared_by_default"] = row["estimate_flops"] <= row["budget_flops"]
        for loss in ("square", "logistic"):
            t0 = time.perf_counter()
            LastLayerClassifier(loss=loss).fit(X, y)
            row[f"{loss}_s"] = time.perf_counter() - t0
        row["implied_gflops"] = row["estimate_flops"] / row["logistic_s"] / 1e9
        rows.append(row)
        print(f"{n} x {d}, K = {K}: estimate {row['estimate_flops']:.3g} flops "
              f"(budget {row['budget_flops']:.0g}, compared: {row['compared_by_default']}); "
              f"cross-entropy {row['logistic_s']:.2f} s, square {row['square_s']:.2f} s; "
              f"{row['implied_gflops']:.1f} GFLOP/s implied", flush=True)
    if args.out:
        write_rows(args.out, "benchmarks/ce_budget.py", rows, seed=args.seed)


if __name__ == "__main__":
    main()
