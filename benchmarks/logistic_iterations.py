"""L-BFGS iterations of one cross-entropy fit, cold-started, at several alphas.

The kernel behind ``loss="logistic"`` (``lastlayer._core.logistic.logistic``) on
``perf_fit.py``'s power-law features (float64, ``--seed``), in the span of the rows
as the estimator fits them. Two classes get balanced row weights, more classes ones.
Runs unchanged on older checkouts (the kernel's first five arguments have not
changed), so ``PYTHONPATH=<old checkout>/src python benchmarks/logistic_iterations.py``
gives the before numbers.

Usage::

    python benchmarks/logistic_iterations.py --n 2500 --d 1024 --classes 2
    python benchmarks/logistic_iterations.py --n 600 --d 200 --classes 5
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perf_fit  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    perf_fit.add_task_args(ap)
    ap.add_argument("--alphas", type=float, nargs="+", default=[1e-1, 1e-3, 1e-5],
                    help="penalties, each fitted from zero")
    args = ap.parse_args(argv)

    from lastlayer._core.logistic import logistic, row_space

    X, y = perf_fit.task_data(args, np.float64)
    if args.classes == 2:
        r = np.where(y == 0, 0.5 / np.mean(y == 0), 0.5 / np.mean(y != 0))
    else:
        r = np.ones(args.n)
    Xw, _ = row_space(X)
    print(f"n={args.n} d={args.d} K={args.classes} seed={args.seed}")
    print(f"{'alpha':>8} {'iterations':>10} {'converged':>9} {'time':>8} {'objective':>16}")
    for alpha in args.alphas:
        t = time.perf_counter()
        sol = logistic(Xw, y, args.classes, r, alpha)
        dt = time.perf_counter() - t
        print(f"{alpha:8.0e} {sol.n_iter:10d} {str(sol.converged):>9} {dt:7.2f}s "
              f"{sol.objective:16.12g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
