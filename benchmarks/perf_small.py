"""Small fits: the per-fit overhead that hundreds of fits (a grid search, a CLI loop) pay.

Times ``LastLayerClassifier().fit`` on Gaussian features of a few small sizes (``n``
rows, ``d`` features, ``K`` classes with the first holding 60% of the rows), one
untimed fit first, then ``--repeats`` timed fits; reports the median and the minimum
in milliseconds. Run it from two checkouts one after the other (``PYTHONPATH``) to
compare code; absolute times move by several percent between runs here.

Usage::

    OPENBLAS_NUM_THREADS=1 python benchmarks/perf_small.py --repeats 30
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _record import write_rows

SIZES = ((200, 10, 2), (600, 32, 5))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=30, help="timed fits per size (default 30)")
    ap.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
    ap.add_argument("--out", default="", help="JSON output path ('' for none, the default)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be at least 1 (timed fits per size). Got {args.repeats}.")

    from lastlayer import LastLayerClassifier

    warnings.simplefilter("ignore")
    rng = np.random.default_rng(args.seed)
    rows = []
    for n, d, K in SIZES:
        y = rng.choice(K, size=n, p=np.r_[0.6, np.full(K - 1, 0.4 / (K - 1))])
        X = rng.normal(size=(n, d)) + 0.8 * np.eye(K, d)[y]
        LastLayerClassifier().fit(X, y)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            LastLayerClassifier().fit(X, y)
            times.append(time.perf_counter() - t0)
        rows.append({"n": n, "d": d, "classes": K, "median_ms": 1e3 * float(np.median(times)),
                     "min_ms": 1e3 * min(times), "runs_s": times})
        print(f"{n} x {d}, K = {K}: median {rows[-1]['median_ms']:.1f} ms, "
              f"min {rows[-1]['min_ms']:.1f} ms", flush=True)
    if args.out:
        write_rows(args.out, "benchmarks/perf_small.py", rows, seed=args.seed,
                   repeats=args.repeats)


if __name__ == "__main__":
    main()
