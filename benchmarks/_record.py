"""JSON records of the benchmark scripts, written atomically with lastlayer.io."""

from __future__ import annotations

import json
import os

from lastlayer.io import atomic_write_text


def write_json(path, record, **dump_options):
    """Write ``record`` as indented JSON to ``path``, creating its directory."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1, **dump_options))


def write_rows(path, script, rows, **fields):
    """A timing script's record: its name, ``fields`` (seed, repeats, ...), the library
    version, the BLAS threads asked for, the load average at the end, its ``rows``;
    printed "wrote ..." after."""
    import lastlayer

    write_json(path, {"script": script, **fields, "lastlayer": lastlayer.__version__,
                      "threads": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
                      "load_average": list(os.getloadavg()), "rows": rows})
    print(f"wrote {path}")
