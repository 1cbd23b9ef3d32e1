"""Does ``weighting="optimal"`` converge on real draws with more than two units?

For every task of the selection suite with more than two classes (or groups), each
retraining size and each repeat (the suite's draws: ``numpy.random.default_rng([seed,
n, r])``), fits ``LastLayerClassifier(weighting="optimal", loss="square",
random_state=r)`` and records the fixed-point iteration's ``iterations`` and final
``leverage_gap`` from ``weighting_info_`` (converged: gap below the tolerance, 1e-6).
Prints one line per cell and the totals; writes JSON. The library is whatever
``PYTHONPATH`` points at (an old worktree reports without its ``converged`` key: the
gap decides).

Usage::

    PYTHONPATH=src python benchmarks/optimal_convergence.py --out R.json
    PYTHONPATH=src python benchmarks/optimal_convergence.py --tasks sk_wine_lt3 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import selection_suite as suite  # noqa: E402
from _record import write_json  # noqa: E402

TOL = 1e-6  # lastlayer.weights.weighting_optimal's default tolerance


def multi_unit_tasks():
    """The suite's tasks with more than two classes, or with groups."""
    return [name for name, spec in suite.TASKS.items()
            if spec[2] > 2 or name.startswith("dominoes")]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default=",".join(multi_unit_tasks()),
                    help="comma-separated suite tasks (default: every task with more "
                         "than two units)")
    ap.add_argument("--repeats", type=int, default=10, help="draws per size (default 10)")
    ap.add_argument("--seed", type=int, default=0, help="the suite's draw seed (default 0)")
    ap.add_argument("--out", default="", help="JSON output path ('' for none)")
    args = ap.parse_args(argv)
    from lastlayer import LastLayerClassifier

    warnings.simplefilter("ignore")  # the NotConvergedWarning is what is being counted
    cells = {}
    for name in args.tasks.split(","):
        task = suite.build_task(name)
        for n in suite.TASKS[name][3]:
            its, gaps = [], []
            for r in range(args.repeats):
                rows = suite.draw(task, n, np.random.default_rng([args.seed, n, r]))
                X, y = task["X_pool"][rows], task["y_pool"][rows]
                g = task["g_pool"][rows] if "g_pool" in task else None
                clf = LastLayerClassifier(weighting="optimal", loss="square", random_state=r)
                clf.fit(X, y, groups=g) if g is not None else clf.fit(X, y)
                its.append(int(clf.weighting_info_["iterations"]))
                gaps.append(float(clf.weighting_info_["leverage_gap"]))
            cells[f"{name}@{n}"] = {"iterations": its, "leverage_gap": gaps}
            conv = sum(x < TOL for x in gaps)
            print(f"{name:28s} {n:4d}  converged {conv:2d}/{len(gaps)}  steps max {max(its):3d}"
                  f"  largest gap {max(gaps):.2g}", flush=True)
    gaps = [x for c in cells.values() for x in c["leverage_gap"]]
    its = [x for c in cells.values() for x in c["iterations"]]
    total = {"fits": len(gaps), "converged": int(sum(x < TOL for x in gaps)),
             "max_iterations": max(its), "largest_gap": max(gaps)}
    print(f"total: {total['converged']} of {total['fits']} converged, at most "
          f"{total['max_iterations']} steps, largest gap {total['largest_gap']:.2g}")
    if args.out:
        write_json(args.out, {"command": " ".join(sys.argv), "library": suite.library_version(),
                              "seed": args.seed, "repeats": args.repeats, "tol": TOL,
                              "cells": cells, "total": total})
    return 0


if __name__ == "__main__":
    sys.exit(main())
