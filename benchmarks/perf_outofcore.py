"""Out-of-core fitting: peak memory of the streaming passes on a file larger than RAM needs.

Writes a ``.npy`` feature file of ``--size-gib`` GiB (``--d`` features, five
imbalanced classes, written block by block into a temporary directory under
``--dir``; removed at the end unless ``--keep``), then, in a fresh child process
per run (so that each peak resident set size is its own), runs

* ``streaming_statistics`` (one pass), then
* ``streaming_loo_path`` at ``--alphas`` alphas (one more pass),

reading the file either as a path (``mode=npy``: plain file reads, block by block)
or as ``np.load(path, mmap_mode="r")`` (``mode=mmap``: read through the map, each
block's pages released after use), once per ``--precisions`` entry (the
``precision=`` of both passes: ``float64``, ``float32`` or ``auto``). The floor,
in its own child processes as well: one float32 Gram over the same file
(``ssyrk`` of every block, read with ``readinto`` into one buffer, accumulated in
float32 -- the least work that touches every byte and every product once).
Reported per mode and precision (median of ``--repeats`` runs for the times,
maximum for the memory):

* time of each pass, its throughput and the statistics time over the floor's;
* ``peak_rss``: the child's ``ru_maxrss``; ``baseline_rss``: its resident set after
  the imports, before reading; ``extra_rss = peak_rss - baseline_rss``;
* ``tracemalloc_peak``: the peak of Python-heap allocations (NumPy's included);
* ``bound``: the documented bound of :mod:`lastlayer.sources`,
  ``B d itemsize + 64 MiB + 8 J (d + 1)^2 + 3 * 8 d^2`` (one block as stored);
* ``in_memory``: what holding the data would take instead: the file's bytes as
  float64 (``8 n d``) plus the ``n x d`` weighted copy and ``n x d`` projection
  that :func:`lastlayer.solvers.ridge_loo_path` builds (about ``3 * 8 n d``).

The file is read from the page cache when RAM allows (the OS cannot be asked to
drop it without root); the times are then CPU-bound, which is what the streaming
code controls.

Usage::

    python benchmarks/perf_outofcore.py --size-gib 4.5
    python benchmarks/perf_outofcore.py --size-gib 1 --dtype float32 \
        --precisions float64 auto --out benchmarks/results/perf_outofcore_float32.json
    python benchmarks/perf_outofcore.py --size-gib 0.05 --d 256 --out ''   # smoke run

Output: a table on stdout and a JSON record (``--out``, default
``benchmarks/results/perf_outofcore.json``) (settings, versions,
machine, one row per mode with every run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from _record import write_json

PRIORS = np.array([0.45, 0.25, 0.15, 0.10, 0.05])
MODES = ("npy", "mmap")
PRECISIONS = ("float64", "float32", "auto")


def _rss_bytes():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0  # pragma: no cover - not Linux


def write_features(directory, size_gib, d, dtype, seed, block_rows=16384):
    """Write X.npy and y.npy block by block (bounded memory). Returns (path, n)."""
    dtype = np.dtype(dtype)
    n = int(math.ceil(size_gib * 2**30 / (d * dtype.itemsize)))
    rng = np.random.default_rng(seed)
    K = PRIORS.size
    means = rng.normal(size=(K, d)).astype(dtype)
    means *= 2.0 / np.linalg.norm(means, axis=1, keepdims=True)
    y = rng.choice(K, size=n, p=PRIORS)
    path = os.path.join(directory, "X.npy")
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": (n, d)}
    with open(path, "wb") as fh:
        np.lib.format.write_array_header_2_0(fh, header)
        for lo in range(0, n, block_rows):
            yb = y[lo:lo + block_rows]
            blk = rng.standard_normal((yb.size, d), dtype=np.float32).astype(dtype)
            blk += means[yb]
            fh.write(blk.tobytes())
    np.save(os.path.join(directory, "y.npy"), y)
    return path, n


def gram_floor(path, block_rows):
    """One float32 Gram over a .npy file: read each block into one buffer, ``ssyrk``."""
    from scipy.linalg.blas import get_blas_funcs

    X = np.load(path, mmap_mode="r")
    (n, d), offset, dtype = X.shape, X.offset, X.dtype
    del X
    buf = np.empty((min(block_rows, n), d), dtype=dtype)
    G = np.zeros((d, d), dtype=np.float32, order="F")
    syrk = get_blas_funcs("syrk", dtype=np.float32)
    with open(path, "rb", buffering=0) as f:
        f.seek(offset)
        for lo in range(0, n, block_rows):
            blk = buf[:min(block_rows, n - lo)]
            f.readinto(memoryview(blk.reshape(-1).view(np.uint8)))
            G = syrk(1.0, np.asarray(blk, dtype=np.float32).T, beta=1.0, c=G, trans=0,
                     overwrite_c=1)
    return G


def worker(args):
    """One measured run in this (fresh) process; prints a JSON line."""
    import tracemalloc

    if args.worker == "floor":
        t0 = time.perf_counter()
        G = gram_floor(args.file, args.block_rows)
        t1 = time.perf_counter()
        print(json.dumps({"statistics_s": t1 - t0, "gram_trace": float(np.trace(G))}))
        return

    from lastlayer.outofcore import as_source, streaming_loo_path, streaming_statistics

    y = np.load(os.path.join(os.path.dirname(args.file), "y.npy"))
    J = int(y.max()) + 1
    obj = args.file if args.worker == "npy" else np.load(args.file, mmap_mode="r")
    src = as_source(obj, y=y, block_rows=args.block_rows)
    baseline = _rss_bytes()
    tracemalloc.start()
    t0 = time.perf_counter()
    # precision= only when asked for: the float64 rows also run on versions without it
    kw = {} if args.precision == "float64" else {"precision": args.precision}
    stats = streaming_statistics(src, y, J, progress=args.progress, **kw)
    t1 = time.perf_counter()
    alphas = np.logspace(-6, 2, args.alphas)
    cell_w = y.size / (J * np.bincount(y, minlength=J))  # balanced weights
    loo = streaming_loo_path(src, stats, y, cell_w, np.eye(J), alphas, progress=args.progress,
                             **kw)
    t2 = time.perf_counter()
    _, tm_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(json.dumps({
        "statistics_s": t1 - t0, "loo_s": t2 - t1, "peak_rss": peak, "baseline_rss": baseline,
        "tracemalloc_peak": tm_peak, "loo_mse": loo["loo_mse"].tolist(),
        "gram_trace": float(np.trace(stats.grams.sum(axis=0))),
    }))


def run_child(mode, path, args, precision="float64"):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", mode, "--file", path,
           "--block-rows", str(args.block_rows), "--alphas", str(args.alphas),
           "--precision", precision]
    if args.progress:
        cmd.append("--progress")
    res = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def measure(path, args, file_bytes, bound, in_memory):
    """The floor and every (mode, precision), interleaved repeat by repeat (so that
    a change of load on a shared machine touches every row alike)."""
    configs = [(m, p) for m in args.modes for p in args.precisions]
    floor_runs, runs = [], {c: [] for c in configs}
    for _ in range(args.repeats):
        floor_runs.append(run_child("floor", path, args))
        print(f"  floor (one float32 Gram): {floor_runs[-1]['statistics_s']:.2f} s",
              flush=True)
        for mode, prec in configs:
            r = run_child(mode, path, args, prec)
            runs[mode, prec].append(r)
            print(f"  {mode} {prec}: statistics {r['statistics_s']:.2f} s, LOO "
                  f"{r['loo_s']:.2f} s, peak RSS {_gib(r['peak_rss'])} (baseline "
                  f"{_gib(r['baseline_rss'])})", flush=True)
    floor_s = statistics.median(r["statistics_s"] for r in floor_runs)
    rows = []
    for (mode, prec), rs in runs.items():
        st = statistics.median(r["statistics_s"] for r in rs)
        lo = statistics.median(r["loo_s"] for r in rs)
        peak = max(r["peak_rss"] for r in rs)
        base = min(r["baseline_rss"] for r in rs)
        rows.append({
            "mode": mode, "precision": prec, "statistics_s": st, "loo_s": lo,
            "statistics_over_floor": st / floor_s,
            "statistics_s_range": [min(r["statistics_s"] for r in rs),
                                   max(r["statistics_s"] for r in rs)],
            "statistics_gib_per_s": file_bytes / 2**30 / st,
            "loo_gib_per_s": file_bytes / 2**30 / lo,
            "peak_rss": peak, "baseline_rss": base, "extra_rss": peak - base,
            "tracemalloc_peak": max(r["tracemalloc_peak"] for r in rs),
            "bound": bound, "in_memory": in_memory, "file_bytes": file_bytes,
            "runs": rs,
        })
    return floor_runs, rows


def report(rows, floor_s, file_bytes, bound, in_memory):
    """Print the table; return the largest relative LOO difference from the first row."""
    print()
    print(f"file {_gib(file_bytes)}; documented bound {_gib(bound)}; in-memory estimate "
          f"{_gib(in_memory)}; floor (one float32 Gram over the file) {floor_s:.2f} s "
          f"({file_bytes / 2**30 / floor_s:.2f} GiB/s)")
    print(f"{'mode':<5} {'precision':<9} {'stats':>8} {'/floor':>6} {'LOO':>8} {'GiB/s':>6} "
          f"{'peak RSS':>10} {'extra RSS':>10} {'tracemalloc':>11} {'extra/file':>10}")
    for r in rows:
        print(f"{r['mode']:<5} {r['precision']:<9} {r['statistics_s']:>6.2f} s "
              f"{r['statistics_over_floor']:>6.2f} {r['loo_s']:>6.2f} s "
              f"{r['statistics_gib_per_s']:>6.2f} {_gib(r['peak_rss']):>10} "
              f"{_gib(r['extra_rss']):>10} {_gib(r['tracemalloc_peak']):>11} "
              f"{r['extra_rss'] / file_bytes:>10.3f}")
    print("extra RSS = peak - resident set after the imports; it includes the BLAS "
          "library's thread buffers (a constant, not tracked by tracemalloc).")
    if len(rows) < 2:
        return None
    a = np.array(rows[0]["runs"][0]["loo_mse"])
    agree = max(float(np.max(np.abs(np.array(r["runs"][0]["loo_mse"]) - a) / np.abs(a)))
                for r in rows[1:])
    print(f"LOO agreement with the first row: max relative difference {agree:.1e}")
    return agree


def _gib(b):
    return f"{b / 2**30:.2f} GiB" if b >= 2**30 else f"{b / 2**20:.0f} MiB"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-gib", type=float, default=4.5,
                    help="size of the feature file (default 4.5 GiB)")
    ap.add_argument("--d", type=int, default=1024, help="features (default 1024)")
    ap.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    ap.add_argument("--block-rows", type=int, default=8192, help="rows per block")
    ap.add_argument("--alphas", type=int, default=41, help="alphas of the LOO path")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--precisions", nargs="+", default=["float64"], choices=PRECISIONS,
                    help="precision= of the passes, one row per mode and precision")
    ap.add_argument("--repeats", type=int, default=3, help="runs per mode (median times)")
    ap.add_argument("--dir", default=tempfile.gettempdir(),
                    help="where the temporary directory goes (default: the system temp)")
    ap.add_argument("--keep", action="store_true", help="keep the feature file")
    ap.add_argument("--progress", action="store_true", help="progress bars (stderr)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                 "results", "perf_outofcore.json"),
                    help="JSON output path (default benchmarks/results/perf_outofcore.json; "
                         "'' for none)")
    ap.add_argument("--worker", choices=(*MODES, "floor"), help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="float64", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    if args.repeats < 3:
        ap.error("--repeats must be at least 3 (timings are medians)")

    import lastlayer

    tmp = tempfile.mkdtemp(prefix="lastlayer-ooc-", dir=args.dir)
    rows = []
    try:
        t0 = time.perf_counter()
        path, n = write_features(tmp, args.size_gib, args.d, args.dtype, args.seed)
        t_write = time.perf_counter() - t0
        file_bytes = os.path.getsize(path)
        d, J, B = args.d, PRIORS.size, args.block_rows
        item = np.dtype(args.dtype).itemsize
        bound = int(B * d * item + (64 << 20) + 8 * J * (d + 1) ** 2 + 3 * 8 * d * d)
        in_memory = 3 * 8 * n * d
        print(f"perf_outofcore: wrote {_gib(file_bytes)} ({n} x {d} {args.dtype}) in "
              f"{t_write:.1f} s to {tmp}; block_rows={B}, alphas={args.alphas}, "
              f"repeats={args.repeats}", flush=True)
        floor_runs, rows = measure(path, args, file_bytes, bound, in_memory)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    floor_s = statistics.median(r["statistics_s"] for r in floor_runs)
    agree = report(rows, floor_s, file_bytes, bound, in_memory)

    if args.out:
        record = {
            "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
            "settings": {k: v for k, v in vars(args).items() if k not in ("worker", "file")},
            "n": n, "file_bytes": file_bytes, "bound": bound, "in_memory": in_memory,
            "write_s": t_write, "loo_agreement": agree,
            "floor": {"what": "one float32 Gram (ssyrk) over the file, read into one buffer",
                      "statistics_s": floor_s, "runs": floor_runs},
            "load_average": os.getloadavg(),
            "versions": {"lastlayer": lastlayer.__version__, "numpy": np.__version__,
                         "python": platform.python_version()},
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
            "rows": rows,
        }
        write_json(args.out, record)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
