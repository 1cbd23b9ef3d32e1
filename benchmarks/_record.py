"""JSON records of the benchmark scripts, written atomically with lastlayer.io."""

from __future__ import annotations

import json
import os

from lastlayer.io import atomic_write_text


def write_json(path, record, **dump_options):
    """Write ``record`` as indented JSON to ``path``, creating its directory."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1, **dump_options))
