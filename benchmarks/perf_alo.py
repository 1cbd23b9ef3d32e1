"""The hat blocks of the multinomial approximate leave-one-out, by method.

``alo_cross_entropy`` needs, for every row, the (K-1) x (K-1) block of the inverse
Hessian seen by that row. Two ways give the same blocks (to rounding): ``hessian``
forms, factorises and inverts the ``p (K - 1)``-wide Hessian; ``class_blocks`` factorises
one ``p x p`` matrix per class and an ``(n + K - 1)``-row Woodbury capacitance.
``hat_method`` picks by an estimated flop count (``hat_flops``). This script times
one ALO evaluation both ways on a cross-entropy fit of Gaussian class means (``n``
rows, ``d`` features, ``K`` classes), reports the seconds, the estimates, the
largest difference of the leave-one-out logits and the method the estimate picks;
with ``--memory`` also the tracemalloc peak of one more evaluation each way (untimed).

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/perf_alo.py --repeats 3
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from _record import write_rows

SHAPES = ((200, 200, 20), (400, 400, 20), (200, 200, 10), (100, 100, 10), (1000, 1000, 3),
          (300, 64, 10), (500, 32, 10), (2000, 200, 5))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed evaluations per method and shape; the median is kept "
                         "(default 3)")
    ap.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    ap.add_argument("--alpha", type=float, default=1e-3,
                    help="ridge of the cross-entropy fit (default 1e-3)")
    ap.add_argument("--memory", action="store_true",
                    help="also record each method's tracemalloc peak (one more, untimed, "
                         "evaluation each)")
    ap.add_argument("--out", default="", help="JSON output path ('' for none, the default)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be at least 1 (evaluations per method). Got {args.repeats}.")
    if not args.alpha > 0:
        ap.error(f"--alpha must be positive. Got {args.alpha}.")

    from lastlayer._core.logistic import alo_cross_entropy, augment, hat_flops, hat_method
    from lastlayer.solvers import solve_logistic

    rng = np.random.default_rng(args.seed)
    rows = []
    for n, d, K in SHAPES:
        y = np.arange(n) % K
        X = rng.normal(size=(K, d))[y] + 1.5 * rng.normal(size=(n, d))
        r = np.ones(n)
        sol = solve_logistic(X, y, K, r, args.alpha, max_iter=200)
        Xa, Theta = augment(X), np.vstack([sol.coef, sol.intercept])
        row = {"n": n, "d": d, "classes": K, "estimate_flops": hat_flops(n, d + 1, K),
               "chosen": hat_method(n, d + 1, K)}
        logits = {}
        for method in ("hessian", "class_blocks"):
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                out = alo_cross_entropy(Xa, y, r, args.alpha, float(n), K, Theta,
                                        return_logits=True, hat=method)
                times.append(time.perf_counter() - t0)
            logits[method] = out[2]
            row[f"{method}_s"] = float(np.median(times))
            if args.memory:
                tracemalloc.start()
                alo_cross_entropy(Xa, y, r, args.alpha, float(n), K, Theta, hat=method)
                row[f"{method}_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
        row["max_logit_difference"] = float(np.abs(logits["hessian"]
                                                   - logits["class_blocks"]).max())
        rows.append(row)
        print(f"{n} x {d}, K = {K}: hessian {row['hessian_s']:.3f} s, class blocks "
              f"{row['class_blocks_s']:.3f} s (estimates {row['estimate_flops']['hessian']:.2g}"
              f" / {row['estimate_flops']['class_blocks']:.2g} flops; picks {row['chosen']}); "
              f"logits differ by {row['max_logit_difference']:.1e}"
              + (f"; peak {row['hessian_peak_mib']:.0f} / {row['class_blocks_peak_mib']:.0f} MiB"
                 if args.memory else ""), flush=True)
    if args.out:
        write_rows(args.out, "benchmarks/perf_alo.py", rows, seed=args.seed,
                   repeats=args.repeats, alpha=args.alpha)


if __name__ == "__main__":
    main()
