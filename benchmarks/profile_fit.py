"""Where one fit's time goes: cProfile of ``LastLayerClassifier(**params).fit``.

``perf_fit.py``'s float32 power-law features (``--seed``); prints the fit's wall time
and the functions with the most own time. ``--cell-grams`` forces the layout of the
per-cell Gram matrices as in ``perf_fit.py``.

Usage::

    python benchmarks/profile_fit.py --n 2500 --d 1024 --classes 2 \\
        --params "loss='logistic', weighting='optimal'"
    python benchmarks/profile_fit.py --n 10000 --d 2048 --classes 100
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import perf_fit  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    perf_fit.add_task_args(ap)
    ap.add_argument("--params", default="",
                    help="estimator parameters as Python keyword arguments, "
                         "e.g. \"loss='logistic'\" (default: the default estimator)")
    ap.add_argument("--cell-grams", choices=perf_fit.CELL_GRAMS, default="auto",
                    help="force the per-cell Gram layout (as in perf_fit.py)")
    ap.add_argument("--top", type=int, default=14, help="functions listed")
    args = ap.parse_args(argv)

    from lastlayer import LastLayerClassifier, _fit

    perf_fit.force_cell_grams(_fit, args.cell_grams)
    params = eval(f"dict({args.params})", {})  # a benchmark's own command line
    X, y = perf_fit.task_data(args, np.float32)
    warnings.simplefilter("ignore")
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    LastLayerClassifier(**params).fit(X, y)
    prof.disable()
    print(f"fit {time.perf_counter() - t:.2f} s (n={args.n}, d={args.d}, "
          f"K={args.classes}, {params or 'default'})")
    pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
