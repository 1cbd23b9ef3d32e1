"""Per-format readers of feature files (npz, npy, csv, parquet, safetensors).

The building blocks of :func:`lastlayer.io.load_features` and of the shard and
``.npy`` sources of :mod:`lastlayer.sources`. Each reader returns raw arrays
``(X, y, groups)``; validation of their contents happens once, in
:func:`lastlayer.io.validate_features` (or block by block in the sources).
Pickles are never loaded (``allow_pickle=False`` everywhere).
"""

from __future__ import annotations

import csv
import json
import os
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


IO_HINT = 'pip install "lastlayer[io]"'
DEFAULT_GROUP_COLUMN = "groups"


# --------------------------------------------------------------------------- #
# Optional dependencies
# --------------------------------------------------------------------------- #


def import_pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise ImportError(
            f"Reading and writing .parquet files needs pyarrow: {IO_HINT}"
        ) from exc
    return pyarrow, pyarrow.parquet


def import_safetensors():
    try:
        import safetensors
        import safetensors.numpy
    except ImportError as exc:
        raise ImportError(
            f"Reading and writing .safetensors files needs safetensors: {IO_HINT}"
        ) from exc
    return safetensors, safetensors.numpy


# --------------------------------------------------------------------------- #
# Readers
# --------------------------------------------------------------------------- #


def pickle_error(path, exc):
    if "Object arrays" in str(exc):
        return ValueError(
            f"'{path}' contains pickled objects; lastlayer never unpickles user files. "
            f"Save X and y as numeric/string arrays (np.savez(path, X=X, y=y))."
        )
    return ValueError(
        f"'{path}' is not a NumPy .npz/.npy file (numpy could only read it as a pickle, "
        f"and lastlayer never unpickles user files). Save X and y as numeric/string "
        f"arrays (np.savez(path, X=X, y=y))."
    )


@contextmanager
def open_npz(path):
    """``np.load(path, allow_pickle=False)`` of a .npz file, with clear errors."""
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise pickle_error(path, exc) from None
        raise
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"'{path}' is not a readable .npz file: {exc}.") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(
            f"'{path}' holds a single .npy array, not a .npz archive of named arrays. "
            f"Rename it to .npy, or save X and y with np.savez(path, X=X, y=y)."
        )
    with data:
        try:
            yield data
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise pickle_error(path, exc) from None
            raise


def missing_key(path, kind, name, found, param=None):
    what = f"(set by {param}=)" if param else "(the features)"
    return ValueError(
        f"'{path}' has no {kind} named '{name}' {what}. Found {kind}s: {sorted(found)!r}."
    )


def read_npz(path, label_column, group_column):
    with open_npz(path) as data:
        keys = set(data.files)
        if "X" not in keys:
            raise missing_key(path, "array", "X", keys)
        if label_column not in keys:
            raise missing_key(path, "array", label_column, keys, "label_column")
        X = data["X"]
        y = data[label_column]
        groups = optional(data, keys, group_column, path, "array")
    return X, y, groups


def optional(data, keys, group_column, path, kind):
    if group_column is None:
        return None
    if group_column in keys:
        return data[group_column]
    if group_column != DEFAULT_GROUP_COLUMN:
        raise missing_key(path, kind, group_column, keys, "group_column")
    return None


def load_npy(path, mmap):
    from tokenize import TokenError

    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise pickle_error(path, exc) from None
        raise
    except (EOFError, SyntaxError, TokenError) as exc:  # a truncated or garbled header
        raise ValueError(f"'{path}' is not a readable .npy file: {exc}.") from None


def npy_companion(value, name, path):
    """Labels or groups for a .npy feature file: a .npy path or an array."""
    if isinstance(value, (str, os.PathLike)):
        p = Path(value)
        if p.suffix.lower() != ".npy":
            raise ValueError(
                f"The '{name}' parameter must be a .npy path or an array when the "
                f"features are a .npy file ('{path}'). Got the path '{p}' instead."
            )
        if not p.is_file():
            raise FileNotFoundError(f"{name} file '{p}' (for features '{path}') not found.")
        return load_npy(p, mmap=False)
    return np.asarray(value)


def read_npy(path, labels, groups, mmap):
    if labels is None:
        if path.name != "X.npy":
            raise ValueError(
                f"'{path}' holds features only, and no labels were given for it: name "
                f"it X.npy with its labels in y.npy (and groups in groups.npy, if any) "
                f"in the same directory (the only way from the command line), or pass "
                f"the 'labels' parameter (a .npy path or an array) from Python."
            )
        labels = path.with_name("y.npy")
        if not labels.is_file():
            raise FileNotFoundError(
                f"'{path}' is named X.npy, so its labels are read from '{labels}', which "
                f"does not exist. Save the labels there (np.save), or pass the 'labels' "
                f"parameter from Python."
            )
        if groups is None and path.with_name("groups.npy").is_file():
            groups = path.with_name("groups.npy")
    X = load_npy(path, mmap)
    y = npy_companion(labels, "labels", path)
    g = None if groups is None else npy_companion(groups, "groups", path)
    return X, y, g


def parse_numeric_cell(text):
    try:
        return int(text), "int"
    except ValueError:
        pass
    try:
        return float(text), "float"
    except ValueError:
        return text, "str"


def parse_label_column(cells, name, path):
    """Parse one CSV column of labels: all ints, all numbers or all text."""
    missing = [i for i, c in enumerate(cells) if not c.strip()]
    if missing:
        raise ValueError(
            f"Column '{name}' in '{path}' must not have missing values. Got "
            f"{len(missing)} empty cell(s) (first at data row {missing[0]})."
        )
    parsed = [parse_numeric_cell(c.strip()) for c in cells]
    kinds = {}
    for i, (_, k) in enumerate(parsed):
        kinds.setdefault(k, i)
    if "str" in kinds and len(kinds) > 1:
        found = ", ".join(
            f"{'text' if k == 'str' else k} (e.g. {cells[i]!r} at data row {i})"
            for k, i in kinds.items()
        )
        raise ValueError(
            f"Column '{name}' in '{path}' has labels of mixed types: {found}. Labels must "
            f"be all numbers or all text."
        )
    if "str" in kinds:
        return np.asarray([c.strip() for c in cells], dtype=str)
    if "float" in kinds:
        return np.asarray([v for v, _ in parsed], dtype=np.float64)
    return np.asarray([v for v, _ in parsed], dtype=np.int64)


def check_columns(path, names, label_column, group_column):
    """Check that the label column (and a non-default group column) exist in a
    table's column ``names``; return whether the group column is there."""
    if label_column not in names:
        raise ValueError(
            f"'{path}' has no label column '{label_column}' (set by label_column=). "
            f"Columns found: {names!r}."
        )
    use_groups = group_column is not None and group_column in names
    if group_column is not None and not use_groups and group_column != DEFAULT_GROUP_COLUMN:
        raise ValueError(
            f"'{path}' has no group column '{group_column}' (set by group_column=). "
            f"Columns found: {names!r}."
        )
    return use_groups


def read_csv(path, label_column, group_column):
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ValueError(f"'{path}' is empty; expected a header row and data rows.") from None
        rows = [r for r in reader if r]
    use_groups = check_columns(path, header, label_column, group_column)
    for r, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(
                f"'{path}' data row {r} has {len(row)} cells; the header has "
                f"{len(header)} columns."
            )
    columns = list(zip(*rows)) if rows else [() for _ in header]
    label_idx = header.index(label_column)
    group_idx = header.index(group_column) if use_groups else None
    feature_idx = [j for j in range(len(header)) if j not in (label_idx, group_idx)]
    if not feature_idx:
        raise ValueError(
            f"'{path}' has no feature columns; columns found: {header!r} "
            f"(label column '{label_column}')."
        )
    y = parse_label_column(columns[label_idx], label_column, path)
    groups = (parse_label_column(columns[group_idx], group_column, path)
              if use_groups else None)
    X = np.empty((len(rows), len(feature_idx)), dtype=np.float64)
    for out, j in enumerate(feature_idx):
        try:
            X[:, out] = np.asarray(columns[j], dtype=str).astype(np.float64)
        except ValueError:
            values = []
            for r, cell in enumerate(columns[j]):
                try:
                    values.append(float(cell))
                except ValueError:
                    raise ValueError(
                        f"Feature column '{header[j]}' in '{path}' must be numeric. Got "
                        f"{cell!r} at data row {r}."
                    ) from None
            X[:, out] = values
    return X, y, groups


def arrow_column_to_numpy(pa, column):
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column.to_numpy()


def read_parquet(path, label_column, group_column):
    pa, pq = import_pyarrow()
    table = pq.read_table(path)
    names = list(table.column_names)
    use_groups = check_columns(path, names, label_column, group_column)
    y = arrow_column_to_numpy(pa, table.column(label_column))
    groups = arrow_column_to_numpy(pa, table.column(group_column)) if use_groups else None
    # pandas' to_parquet may store a non-default index as "__index_level_<k>__"
    rest = [c for c in names if c not in (label_column, group_column if use_groups else None)
            and not (c.startswith("__index_level_") and c.endswith("__"))]
    if "X" in rest and (pa.types.is_list(table.schema.field("X").type)
                        or pa.types.is_large_list(table.schema.field("X").type)
                        or pa.types.is_fixed_size_list(table.schema.field("X").type)):
        others = [c for c in rest if c != "X"]
        if others:
            raise ValueError(
                f"'{path}' has a list column 'X' of features and also other columns "
                f"{others!r}. Use either one list column 'X' or numeric feature columns, "
                f"not both."
            )
        X = list_column_to_matrix(pa, table.column("X"), path)
    else:
        if not rest:
            raise ValueError(
                f"'{path}' has no feature columns; columns found: {names!r} "
                f"(label column '{label_column}')."
            )
        cols = []
        for c in rest:
            t = table.schema.field(c).type
            if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
                raise ValueError(
                    f"Feature column '{c}' in '{path}' must be numeric. Got type {t}. "
                    f"Feature columns are every column except '{label_column}' and "
                    f"'{group_column}'."
                )
            cols.append(table.column(c).to_numpy())
        X = np.column_stack(cols) if cols else np.empty((table.num_rows, 0))
    return X, y, groups


def list_column_to_matrix(pa, column, path):
    import pyarrow.compute as pc

    arr = column.combine_chunks()
    n = len(arr)
    if arr.null_count:
        raise ValueError(f"List column 'X' in '{path}' has {arr.null_count} null row(s).")
    if pa.types.is_fixed_size_list(arr.type):
        width = arr.type.list_size
    else:
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        width = int(lengths[0]) if n else 0
        if n and not np.all(lengths == width):
            r = int(np.argmax(lengths != width))
            raise ValueError(
                f"List column 'X' in '{path}' must hold rows of equal length. Row 0 has "
                f"{width} features and row {r} has {int(lengths[r])}."
            )
    values = arr.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(n, width)


def read_safetensors(path, label_column, group_column):
    safetensors, _ = import_safetensors()
    try:
        return _read_safetensors(safetensors, path, label_column, group_column)
    except getattr(safetensors, "SafetensorError", ()) as exc:
        raise ValueError(f"'{path}' is not a readable .safetensors file: {exc}.") from None


def _read_safetensors(safetensors, path, label_column, group_column):
    with safetensors.safe_open(str(path), framework="np") as f:
        keys = set(f.keys())
        meta = f.metadata() or {}
        if "X" not in keys:
            raise missing_key(path, "tensor", "X", keys)
        if label_column not in keys:
            raise missing_key(path, "tensor", label_column, keys, "label_column")
        X = f.get_tensor("X")
        y = decode_codes(f.get_tensor(label_column), meta, label_column, path)
        groups = None
        if group_column is not None:
            if group_column in keys:
                groups = decode_codes(f.get_tensor(group_column), meta, group_column, path)
            elif group_column != DEFAULT_GROUP_COLUMN:
                raise missing_key(path, "tensor", group_column, keys, "group_column")
    return X, y, groups


def decode_codes(codes, meta, name, path):
    key = f"{name}_classes"
    if key not in meta:
        return codes
    classes = np.asarray(json.loads(meta[key]), dtype=str)
    codes = np.asarray(codes)
    if codes.dtype.kind not in "iu" or (codes.size and (codes.min() < 0
                                                        or codes.max() >= len(classes))):
        raise ValueError(
            f"Tensor '{name}' in '{path}' must hold integer codes in [0, {len(classes)}) "
            f"into the metadata list '{key}'."
        )
    return classes[codes]
