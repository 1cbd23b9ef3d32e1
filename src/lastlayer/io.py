"""Reading and writing penultimate-layer features and fitted last layers.

Feature files
-------------
:func:`load_features` reads one held-out set of penultimate-layer features ``X`` of
shape ``(n_samples, n_features)``, its labels ``y`` and, optionally, group labels
``groups``. The format is chosen by the file suffix (case-insensitive):

``.npz``
    Arrays ``X``, ``y`` (the key is ``label_column``) and, optionally, ``groups``
    (``group_column``). Read with ``allow_pickle=False``: files that hold object
    arrays are refused, since lastlayer never unpickles user files.
``.npy``
    Features alone; labels come from ``labels=`` (a ``.npy`` path or an array).
    When ``labels`` is None the file must be named ``X.npy``; its labels are then
    ``y.npy`` in the same directory and its groups ``groups.npy`` there if that
    file exists. A directory holding ``X.npy`` may be passed instead of the file.
    ``mmap=True`` memory-maps the features (``np.load(..., mmap_mode="r")``).
``.csv``
    A header row; the label column (``label_column``, default ``"y"``), an optional
    group column (``group_column``, default ``"groups"``) and numeric feature
    columns (every other column, in file order). An empty cell is a missing value.
    A label column whose cells all parse as integers gives integer labels, all as
    numbers gives float labels, none as numbers gives string labels; a mix is an
    error.
``.parquet``
    The same column convention as CSV, or one list / fixed-size-list column named
    ``X`` holding each row's features (what :func:`save_features` writes). Needs
    pyarrow.
``.safetensors``
    Tensors ``X``, ``y`` and, optionally, ``groups``. Safetensors holds numbers
    only, so string labels are stored as integer codes into a JSON list kept in
    the header metadata under ``"<name>_classes"`` (what :func:`save_features`
    writes). Needs safetensors (no torch).

The optional readers import lazily and fail with ``pip install "lastlayer[io]"``.

Every writer is atomic: the bytes go to a temporary file in the target's directory,
which is flushed, fsynced and renamed over the target with :func:`os.replace`. On any
error the temporary file is removed and an existing target is left untouched.
"""

from __future__ import annotations

import csv
import io as _io
import json
import os
import secrets
import stat
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._formats import (
    import_pyarrow,
    import_safetensors,
    open_npz,
    parse_numeric_cell,
    read_csv,
    read_npy,
    read_npz,
    read_parquet,
    read_safetensors,
)
from ._validation import check_labels, validate_features

__all__ = [
    "atomic_open",
    "FeatureSet",
    "SUPPORTED_SUFFIXES",
    "load_features",
    "validate_features",
    "save_features",
    "save_npz",
    "save_layer",
    "load_layer",
    "atomic_write_bytes",
    "atomic_write_text",
    "json_default",
]

SUPPORTED_SUFFIXES = (".npz", ".npy", ".csv", ".parquet", ".safetensors")
_WRITABLE_SUFFIXES = (".npz", ".csv", ".parquet", ".safetensors")
_LAYER_FORMAT = "lastlayer.layer/1"


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #


@dataclass(eq=False)
class FeatureSet:
    """Features, labels and optional groups of one held-out set.

    Construction validates and normalises the arrays with :func:`validate_features`.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_features)
        float32 or float64, finite (a memory map when loaded with ``mmap=True``).
    y : ndarray of shape (n_samples,)
        Labels: numbers or unicode strings, never mixed, never object.
    groups : ndarray of shape (n_samples,) or None
        Group labels under the same rules as ``y``.
    source : str
        The path the arrays came from (``"<memory>"`` when built from arrays).
    """

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None = None
    source: str = "<memory>"

    def __post_init__(self):
        self.source = str(self.source)
        self.X, self.y, self.groups = validate_features(
            self.X, self.y, self.groups, source=self.source
        )

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def classes(self) -> np.ndarray:
        """Sorted distinct labels."""
        return np.unique(self.y)

    def __repr__(self):
        groups = "None" if self.groups is None else f"{len(np.unique(self.groups))} groups"
        return (
            f"FeatureSet(n_samples={self.n_samples}, n_features={self.n_features}, "
            f"dtype={self.X.dtype}, classes={self.classes.tolist()!r}, groups={groups}, "
            f"source={self.source!r})"
        )


def load_features(path, *, labels=None, groups=None, label_column="y",
                  group_column="groups", mmap=False) -> FeatureSet:
    """Read features, labels and optional groups from one file.

    Parameters
    ----------
    path : str or path-like
        A ``.npz``, ``.npy``, ``.csv``, ``.parquet`` or ``.safetensors`` file (see
        the module docstring for each layout), a directory holding ``X.npy``, or a
        directory of ``.npz`` (else ``.parquet``) shards, read in memory in sorted
        file-name order (:class:`lastlayer.sources.ShardSource`).
    labels : str, path-like or array-like, optional
        Only for ``.npy`` features: a ``.npy`` file of labels, or the labels
        themselves. When None, ``X.npy`` pairs with ``y.npy`` in its directory.
    groups : str, path-like or array-like, optional
        Only for ``.npy`` features: group labels, like ``labels``. When None and
        the features are ``X.npy``, ``groups.npy`` beside it is used if present.
    label_column : str, default "y"
        Name of the label array, column or tensor (npz, csv, parquet, safetensors).
    group_column : str or None, default "groups"
        Name of the group array, column or tensor. With the default the groups are
        optional (None when absent); any other name must be present. None skips
        groups.
    mmap : bool, default False
        Memory-map ``.npy`` features read-only instead of reading them into memory.

    Returns
    -------
    FeatureSet
        Validated by :func:`validate_features`.

    Raises
    ------
    FileNotFoundError
        ``path`` (or the labels file) does not exist.
    ValueError
        Unsupported suffix, pickled content, a missing label column or array,
        or arrays that fail :func:`validate_features`.
    ImportError
        pyarrow or safetensors missing for ``.parquet`` or ``.safetensors``.
    """
    path = Path(path)
    if path.is_dir() and (path / "X.npy").is_file():
        path = path / "X.npy"
    elif path.is_dir():
        return _load_shards(path, label_column, group_column, labels, groups, mmap)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ValueError(
            f"Unsupported feature file suffix {suffix!r} for '{path}'. Supported suffixes: "
            f"{', '.join(SUPPORTED_SUFFIXES)}."
        )
    if not path.is_file():
        raise FileNotFoundError(f"Feature file '{path}' not found.")
    if suffix != ".npy":
        for name, value in (("labels", labels), ("groups", groups)):
            if value is not None:
                raise ValueError(
                    f"The '{name}' parameter is only used with .npy features; '{path}' "
                    f"carries its own {name} (see label_column= and group_column=). "
                    f"Got {name}={value!r:.60}."
                )
        if mmap:
            raise ValueError(
                f"The 'mmap' parameter is only supported for .npy features. Got mmap=True "
                f"for '{path}'."
            )
    if suffix == ".npz":
        X, y, g = read_npz(path, label_column, group_column)
    elif suffix == ".npy":
        X, y, g = read_npy(path, labels, groups, mmap)
    elif suffix == ".csv":
        X, y, g = read_csv(path, label_column, group_column)
    elif suffix == ".parquet":
        X, y, g = read_parquet(path, label_column, group_column)
    else:
        X, y, g = read_safetensors(path, label_column, group_column)
    return FeatureSet(X, y, g, source=str(path))


def _load_shards(path, label_column, group_column, labels, groups, mmap):
    """A directory of ``.npz`` or ``.parquet`` shards, read in memory through
    :class:`lastlayer.sources.ShardSource` (sorted file-name order)."""
    from .sources import ShardSource

    shards = [sorted(path.glob(f"*{s}")) for s in (".npz", ".parquet")]
    found = [p for group in shards for p in group if p.is_file()]
    if not found:
        raise ValueError(
            f"Directory '{path}' holds no features: expected X.npy (with y.npy) or "
            f".npz / .parquet shards. Got {sorted(p.name for p in path.iterdir())[:10]!r}.")
    for name, value in (("labels", labels), ("groups", groups), ("mmap", mmap or None)):
        if value is not None:
            raise ValueError(f"The '{name}' parameter is not used with a directory of "
                             f"shards ('{path}'), which carry their own labels.")
    src = ShardSource(shards[0] or shards[1], label_column=label_column,
                      group_column=group_column)
    y, g = src.labels()
    X = np.concatenate(list(src.iter_blocks()), axis=0)
    return FeatureSet(X, y, g, source=str(path))


# --------------------------------------------------------------------------- #
# Atomic writers
# --------------------------------------------------------------------------- #


def _fsync_directory(directory):
    if os.name == "nt":  # pragma: no cover - directories cannot be fsynced on Windows
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_open(path):
    """Yield a binary file that replaces ``path`` only if the block completes.

    The temporary file ``.<name>.<random>.tmp`` lives beside ``path``, so the final
    :func:`os.replace` is a same-filesystem rename. New files get the usual
    ``0o666 & ~umask`` permissions; an existing target keeps its mode.
    """
    path = Path(path)
    directory = path.parent
    if not directory.is_dir():
        raise FileNotFoundError(f"Cannot write '{path}': directory '{directory}' does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"Cannot write '{path}': it is a directory.")
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
    except OSError as exc:  # name the target, not the hidden temporary file
        raise OSError(exc.errno, f"Cannot write '{path}': {exc.strerror}") from None
    try:
        try:
            os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode))
        except FileNotFoundError:
            pass
        with os.fdopen(fd, "wb") as f:
            fd = None
            yield f
            f.flush()
            os.fsync(f.fileno())
        try:
            os.replace(tmp, path)
        except OSError as exc:
            raise OSError(exc.errno, f"Cannot write '{path}': {exc.strerror}") from None
    except BaseException:
        if fd is not None:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_directory(directory if str(directory) else ".")


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, :func:`os.replace`)."""
    if isinstance(data, str):
        raise ValueError("The 'data' parameter must be bytes. Got str; use atomic_write_text.")
    data = memoryview(data)
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically. Newlines are written as given."""
    if not isinstance(text, str):
        raise ValueError(f"The 'text' parameter must be a str. Got {type(text).__name__}.")
    atomic_write_bytes(path, text.encode("utf-8"))


def _no_object_array(name, value):
    arr = np.asarray(value)
    if arr.dtype.hasobject:
        raise ValueError(
            f"Array '{name}' has dtype object, which would need pickling; lastlayer files "
            f"never contain pickles. Convert it first: np.asarray({name}, dtype=str) for "
            f"strings, or .astype(float) for numbers."
        )
    return arr


def save_npz(path, **arrays) -> None:
    """Save named arrays to an uncompressed ``.npz`` file, atomically and without pickles.

    The file is written as given (no ``.npz`` is appended) and reads back with
    ``np.load(path, allow_pickle=False)``.

    Raises
    ------
    ValueError
        An array of object dtype (strings must be unicode arrays, dtype ``<U``).
    """
    arrays = {k: _no_object_array(k, v) for k, v in arrays.items()}
    with atomic_open(path) as f:
        with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED,
                             allowZip64=True) as zf:
            for key, arr in arrays.items():
                with zf.open(key + ".npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


def _csv_bytes(X, y, groups):
    buf = _io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    header = [f"x{j}" for j in range(X.shape[1])] + ["y"]
    if groups is not None:
        header.append("groups")
    writer.writerow(header)
    # str(float) is the shortest repr that reads back exactly
    rows = np.asarray(X, dtype=np.float64).tolist()
    label_cols = [y] + ([groups] if groups is not None else [])
    label_lists = [(c.astype(np.int64) if c.dtype == bool else c).tolist() for c in label_cols]
    for i, row in enumerate(rows):
        writer.writerow(row + [lab[i] for lab in label_lists])
    return buf.getvalue().encode("utf-8")


def _check_csv_labels(values, name, path):
    """Refuse string labels that would not read back as strings of one type."""
    if values is None or values.dtype.kind != "U":
        return
    kinds = {parse_numeric_cell(v.strip())[1] if v.strip() else "empty" for v in values}
    if "empty" in kinds or ("str" in kinds and len(kinds) > 1):
        raise ValueError(
            f"Cannot write {name} to '{path}' as CSV: it mixes text labels with labels "
            f"that read back as numbers or as missing (empty). Use .npz or .parquet, "
            f"which keep string labels as they are."
        )


def _parquet_bytes(X, y, groups):
    pa, pq = import_pyarrow()
    n, d = X.shape
    flat = pa.array(np.ascontiguousarray(X).reshape(-1))
    columns = {"X": pa.FixedSizeListArray.from_arrays(flat, d), "y": pa.array(y)}
    if groups is not None:
        columns["groups"] = pa.array(groups)
    buf = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), buf)
    return buf.getvalue().to_pybytes()


def _safetensors_bytes(X, y, groups):
    _, st_numpy = import_safetensors()
    tensors = {"X": np.ascontiguousarray(X)}
    meta = {}
    for name, values in (("y", y), ("groups", groups)):
        if values is None:
            continue
        if values.dtype.kind == "U":
            classes, codes = np.unique(values, return_inverse=True)
            tensors[name] = codes.astype(np.int64)
            meta[f"{name}_classes"] = json.dumps(classes.tolist())
        else:
            tensors[name] = np.ascontiguousarray(values)
    return st_numpy.save(tensors, metadata=meta or None)


def save_features(path, X, y, groups=None) -> None:
    """Write features, labels and optional groups in the format named by the suffix.

    ``.npz`` (arrays ``X``, ``y``, ``groups``), ``.csv`` (columns ``x0 ... x{d-1}``,
    ``y``, ``groups``; features read back as float64, bool labels as 0/1),
    ``.parquet`` (a fixed-size-list column ``X`` keeping the float dtype, and ``y``,
    ``groups``) or ``.safetensors`` (tensors ``X``, ``y``, ``groups``; string labels
    as integer codes plus metadata). Every format reads back with
    :func:`load_features`. The arrays are validated first and written atomically.

    Raises
    ------
    ValueError
        Unsupported suffix, arrays failing :func:`validate_features`, or (CSV only)
        string labels that would not read back as strings.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _WRITABLE_SUFFIXES:
        raise ValueError(
            f"Unsupported suffix {suffix!r} for writing features to '{path}'. Supported "
            f"suffixes: {', '.join(_WRITABLE_SUFFIXES)}."
        )
    X, y, groups = validate_features(X, y, groups)
    if suffix == ".npz":
        arrays = {"X": X, "y": y}
        if groups is not None:
            arrays["groups"] = groups
        save_npz(path, **arrays)
    elif suffix == ".csv":
        _check_csv_labels(y, "y", path)
        _check_csv_labels(groups, "groups", path)
        atomic_write_bytes(path, _csv_bytes(X, y, groups))
    elif suffix == ".parquet":
        atomic_write_bytes(path, _parquet_bytes(X, y, groups))
    else:
        atomic_write_bytes(path, _safetensors_bytes(X, y, groups))


# --------------------------------------------------------------------------- #
# Fitted layers
# --------------------------------------------------------------------------- #


def json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serialisable")


def save_layer(path, coef, intercept, classes, **meta) -> None:
    """Save a fitted linear last layer to ``.npz``, atomically and without pickles.

    Parameters
    ----------
    path : str or path-like
        Target file (conventionally ``*.npz``).
    coef : array-like of shape (n_outputs, n_features)
        Weights; ``n_outputs`` is ``n_classes``, or 1 for two classes.
    intercept : float or array-like of shape (n_outputs,)
    classes : array-like of shape (n_classes,)
        Labels, numbers or strings (stored as a unicode array, never object).
    **meta
        JSON-serialisable metadata (numpy scalars and arrays are converted),
        stored as a JSON string under the key ``"meta"``.

    Raises
    ------
    ValueError
        Shapes that do not fit together, non-finite weights, mixed-type classes or
        metadata that cannot be JSON-encoded.
    """
    coef = np.asarray(coef)
    if coef.dtype.kind not in "biuf" or coef.ndim != 2:
        raise ValueError(
            f"The 'coef' parameter must be a numeric array of shape (n_outputs, "
            f"n_features). Got dtype {coef.dtype} and shape {coef.shape} instead."
        )
    intercept = np.atleast_1d(np.asarray(intercept))
    if intercept.dtype.kind not in "biuf" or intercept.shape != (coef.shape[0],):
        raise ValueError(
            f"The 'intercept' parameter must be numeric of shape ({coef.shape[0]},) to "
            f"match coef of shape {coef.shape}. Got dtype {intercept.dtype} and shape "
            f"{intercept.shape} instead."
        )
    if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
        raise ValueError("The 'coef' and 'intercept' parameters must be finite.")
    classes = check_labels(classes, "classes")
    if len(np.unique(classes)) != len(classes):
        raise ValueError(
            f"The 'classes' parameter must hold distinct labels. Got {classes.tolist()!r}."
        )
    k_out, k = coef.shape[0], len(classes)
    if not (k_out == k or (k_out == 1 and k == 2)):
        raise ValueError(
            f"coef has {k_out} output row(s) but there are {k} classes; expected one row "
            f"per class, or a single row for two classes."
        )
    try:
        meta_json = json.dumps(meta, default=json_default)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"The layer metadata must be JSON-serialisable: {exc}.") from None
    save_npz(path, format=np.asarray(_LAYER_FORMAT), coef=coef, intercept=intercept,
             classes=classes, meta=np.asarray(meta_json))


def load_layer(path) -> dict:
    """Read a layer written by :func:`save_layer`.

    Returns
    -------
    dict
        ``{"coef": ndarray (n_outputs, n_features), "intercept": ndarray (n_outputs,),
        "classes": ndarray (n_classes,), "meta": dict}``.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing file; pickled content or keys other than a saved layer's.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Layer file '{path}' not found.")
    with open_npz(path) as data:
        keys = set(data.files)
        need = {"coef", "intercept", "classes"}
        if not need <= keys:
            raise ValueError(
                f"'{path}' is not a lastlayer layer file: it must hold arrays "
                f"{sorted(need)!r}. Found arrays: {sorted(keys)!r}."
            )
        out = {k: data[k] for k in ("coef", "intercept", "classes")}
        out["meta"] = json.loads(str(data["meta"][()])) if "meta" in keys else {}
    return out
