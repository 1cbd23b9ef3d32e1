"""The default fit with each in-memory layout of the per-cell Gram matrices, interleaved.

``plan_["cell_grams"]`` says how a fit holds the per-cell Gram matrices: ``packed``
(lower triangles, half the memory of ``dense``), ``dense`` (``J d x d`` arrays, the
in-memory layout before December 2026) or ``rows`` (the rows themselves). This script
fits ``LastLayerClassifier()`` on the same power-law features of
``perf_fit.py`` (``--n``, ``--d``, ``--classes``, ``--seed``) with each layout of
``--layouts`` forced, the layouts taking turns within every repeat, so that the machine's
drift between runs falls on all of them alike (two separate runs of ``perf_fit.py`` of
the same fit differed by 11% here in December 2026). Reported per layout: the median and every run's time, the peak of
one more fit (tracemalloc, over the size of ``X``), and whether the fitted layers are
the same as the first layout's (largest relative difference of ``coef_``).

Usage::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/perf_layouts.py \\
        --n 10000 --d 2048 --classes 5 --repeats 3 --out results/perf_layouts.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings

import numpy as np
import perf_fit
from _record import write_json


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    perf_fit.add_task_args(ap, n=10000, d=2048)
    ap.add_argument("--layouts", nargs="+", default=["packed", "dense"],
                    choices=perf_fit.CELL_GRAMS[1:], help="layouts to force (default packed dense)")
    ap.add_argument("--repeats", type=int, default=3, help="fits per layout (default 3)")
    ap.add_argument("--out", default="", help="JSON output path ('' for none, the default)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be at least 1 (fits per layout). Got {args.repeats}.")

    import lastlayer
    from lastlayer import LastLayerClassifier, _fit

    X, y = perf_fit.task_data(args, np.float32)
    warnings.simplefilter("ignore")
    times = {lay: [] for lay in args.layouts}
    coefs = {}
    for _ in range(args.repeats):
        for lay in args.layouts:
            perf_fit.force_cell_grams(_fit, lay)
            t0 = time.perf_counter()
            m = LastLayerClassifier().fit(X, y)
            times[lay].append(time.perf_counter() - t0)
            if m.plan_["cell_grams"] != lay:
                raise SystemExit(f"asked for {lay}, the plan says {m.plan_['cell_grams']}")
            coefs[lay] = m.coef_
    rows = []
    first = args.layouts[0]
    for lay in args.layouts:
        perf_fit.force_cell_grams(_fit, lay)
        peak = perf_fit.peak_memory(LastLayerClassifier, X, y)
        diff = float(np.abs(coefs[lay] - coefs[first]).max() / np.abs(coefs[first]).max())
        rows.append({"layout": lay, "median_s": statistics.median(times[lay]),
                     "runs_s": times[lay], "peak_bytes": peak,
                     "peak_over_X": peak / X.nbytes, "coef_rel_diff_to_first": diff})
        print(f"{lay:7s} median {rows[-1]['median_s']:.3f} s  runs "
              f"{', '.join(f'{t:.3f}' for t in times[lay])}  peak {peak / X.nbytes:.2f} x X  "
              f"coef vs {first}: {diff:.1e}", flush=True)
    if args.out:
        write_json(args.out, {
            "script": "benchmarks/perf_layouts.py", "n": args.n, "d": args.d,
            "classes": args.classes, "seed": args.seed, "repeats": args.repeats,
            "features": "float32 powerlaw (perf_fit.task_data)",
            "threads": os.environ.get("OMP_NUM_THREADS", "unset"),
            "lastlayer": lastlayer.__version__, "load_average": list(os.getloadavg()),
            "rows": rows})
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
