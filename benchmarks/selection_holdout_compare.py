"""The holdout yardstick against the suite's methods (docs/results.md, issue 11).

Prints a markdown table of the paired gap to the per-draw oracle of
``benchmarks/results/selection_suite.json`` (oracle - method, worst-class or
worst-group accuracy, pp, mean +/- SE over the draws) for ``holdout`` (from the given
``--holdout`` runs) and the suite's selection, old default, peers and oracle_fixed,
on the cells where every draw has a holdout row.

Usage::

    PYTHONPATH=src python benchmarks/selection_holdout_compare.py \
        benchmarks/results/selection_holdout.json
"""
import json
import os
import sys

import numpy as np

from lastlayer.metrics import mean_and_sem

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "results", "selection_suite.json")) as fh:
    old = json.load(fh)
parts = []
for path in sys.argv[1:]:
    with open(path) as fh:
        parts.append(json.load(fh))
def rows(res, m):
    return {(r["task"], r["n"], r["repeat"]): r for r in res["rows"] if r["method"] == m and r.get("status") == "ok"}
orc_old = rows(old, "oracle")
hold = {}
for p in parts: hold.update(rows(p, "holdout"))
cells = sorted({(k[0], k[1]) for k in hold}, key=lambda c: (list(old["tasks"]).index(c[0]), c[1]))
ms = ["holdout", "selection", "old_default", "logit_adjust", "lrcv_balanced", "dfr", "oracle_fixed"]
tot = {m: [] for m in ms}
print("| task | n | " + " | ".join(ms) + " |")
print("|:---|---:|" + "---:|" * len(ms))
for c in cells:
    ks = [k for k in hold if (k[0], k[1]) == c]
    if len(ks) < 10: continue
    line = f"| {c[0]} | {c[1]} |"
    for m in ms:
        src = hold if m == "holdout" else rows(old, m)
        g = np.array([orc_old[k]["worst"] - src[k]["worst"] for k in ks if k in src and k in orc_old])
        if len(g) == len(ks):
            mu, se = mean_and_sem(g)
            tot[m].append(mu); line += f" {100*mu:.1f} ± {100*se:.1f} |"
        else:
            line += " - |"
    print(line)
print(f"| mean over {len(tot['holdout'])} cells | |" + "".join(f" {100*np.mean(v):.1f} |" for v in tot.values()))
