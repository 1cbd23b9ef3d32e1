"""Fitting features that do not fit in memory: streamed statistics and leave-one-out.

The ridge of :func:`lastlayer.solvers.solve_ridge`,

.. math::

    \\min_{W, b}\\; \\frac{1}{n} \\sum_i s_i \\, \\omega_{c(i)}
        \\lVert T_{c(i)} - W^\\top x_i - b \\rVert^2 + \\alpha \\lVert W \\rVert_F^2,
    \\qquad n = \\sum_i s_i,

needs only per-cell sufficient statistics (sums and Gram matrices), so one pass over
the rows is enough to fit it, to choose the loss weights (every weighting scheme of
:mod:`lastlayer.weights` reads the leverages off the statistics) and to choose alpha
by GCV (:func:`lastlayer.paths.select_alpha_gcv`). The exact leave-one-out error of
:func:`lastlayer.solvers.ridge_loo_path` needs the per-row leverages: one more pass.

Sources
-------
A :class:`FeatureSource` yields float64 blocks of at most ``block_rows`` rows in a
fixed row order, as many times as asked; labels (small) are held in memory.
:func:`as_source` builds one from a NumPy array or memory map, a ``.npy`` file (read
block by block with plain file reads: no page of it stays mapped), a directory of
``.npz`` or ``.parquet`` shards (the layouts of :func:`lastlayer.io.load_features`,
read one shard at a time), a dask array, or a zero-argument callable returning an
iterable of ``(X, y)`` / ``(X, y, groups)`` chunks.

Memory bound
------------
With ``B = block_rows``, ``d`` features, ``J`` cells and ``r <= d`` kept
eigenvalues, :func:`streaming_statistics` holds at most

* one block as read (``B d`` entries of the stored dtype) and its float64 copy
  (``8 B d`` bytes; no copy when the source already holds float64 in memory), or
  for shard sources one whole shard as read plus one float64 block,
* a fixed workspace of about ``4 * 16 MiB`` (the block is processed in sub-blocks
  of ``2**21 / d`` rows),
* the statistics themselves, ``8 J (d + 1)^2`` bytes (plus a progress bar),

i.e. ``8 B d (1 + itemsize/8) + 64 MiB + 8 J (d + 1)^2`` bytes, independent of the
number of rows. :func:`streaming_loo_path` adds one ``d x d`` eigendecomposition
(``3 * 8 d^2`` bytes: the centred Gram, its eigenvectors, LAPACK workspace) and
``O(n_alphas)`` accumulators. Example: ``B = 65536``, ``d = 2048``, ``J = 10``:
1 GiB per float64 block, 64 MiB workspace, 336 MiB of statistics, 100 MiB for the
eigendecomposition -- take ``block_rows=8192`` for a 128 MiB block.

Memory maps passed in directly (``np.load(path, mmap_mode="r")``) are read through
the map; each block's pages are released (``madvise(MADV_DONTNEED)``, read-only
maps only) once it has been used, so the resident set stays bounded as well.

Optional backends
-----------------
:func:`dask_statistics` / :func:`dask_loo_path` compute the same quantities with
dask (per-block partial results, then a tree sum; they run under a
``dask.distributed`` client when one is active), and :func:`torch_statistics` on
a torch device (GPU). Both import lazily and fail with ``pip install
"lastlayer[dask]"`` / ``pip install "lastlayer[torch]"``.
"""

from __future__ import annotations

import mmap
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import scipy.linalg
from tqdm.auto import tqdm

from . import io as _io
from ._validation import check_int
from .solvers import (
    SufficientStats,
    _WORK_ELEMS,
    _StatsAccumulator,
    _centre_stats,
    _check_alphas,
    _check_cell_targets,
    _check_cell_weights,
    _check_labels,
    _check_nonneg_vector,
    _check_stats,
    _noise_tol,
    merge_statistics,
)

__all__ = [
    "DEFAULT_BLOCK_ROWS",
    "FeatureSource",
    "ArraySource",
    "NpySource",
    "ShardSource",
    "DaskSource",
    "ChunkSource",
    "as_source",
    "streaming_statistics",
    "streaming_loo_path",
    "dask_statistics",
    "dask_loo_path",
    "torch_statistics",
]

#: Default rows per block of :func:`as_source`.
DEFAULT_BLOCK_ROWS = 65536
_DASK_HINT = 'pip install "lastlayer[dask]"'
_TORCH_HINT = 'pip install "lastlayer[torch]"'
_EPS = float(np.finfo(np.float64).eps)


# --------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------


def _validated_labels(values, name, n_rows, source):
    if values is None:
        return None
    arr = _io._as_labels(values, name, source=source)
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(
            f"{name}{_io._where(source)} must have one entry per row of X. Got "
            f"len({name}) = {arr.shape[0]} and {n_rows} rows of X."
        )
    return arr


def _load_label_file(value, name):
    """Labels given as a ``.npy`` path are read (they are small)."""
    if isinstance(value, (str, os.PathLike)):
        p = Path(value)
        if p.suffix.lower() != ".npy" or not p.is_file():
            raise ValueError(
                f"The '{name}' parameter must be an array or the path of an existing .npy "
                f"file. Got '{p}' instead."
            )
        return _io._load_npy(p, mmap=False)
    return value


class FeatureSource:
    """Features read block by block, re-iterable, with in-memory labels.

    Subclasses implement :meth:`_raw_blocks` (arrays of any real dtype and any
    number of rows, in a fixed order); :meth:`iter_blocks` splits them into float64
    blocks of at most :attr:`block_rows` rows, checks the feature count and that
    every value is finite, and checks that every pass yields the same number of
    rows.

    Attributes
    ----------
    block_rows : int
        Largest number of rows per block.
    """

    block_rows: int = DEFAULT_BLOCK_ROWS
    _n_samples: int | None = None

    def __init__(self, block_rows=DEFAULT_BLOCK_ROWS):
        self.block_rows = check_int(block_rows, "block_rows", low=1)

    # -- to implement -----------------------------------------------------------------
    @property
    def n_features(self) -> int:
        """Number of feature columns ``d``."""
        raise NotImplementedError

    def labels(self):
        """Labels ``y`` and groups (or None) of every row, in the block order.

        Returns
        -------
        y : ndarray of shape (n_samples,)
        groups : ndarray of shape (n_samples,) or None
        """
        raise NotImplementedError

    def _raw_blocks(self):
        """Yield ``(array, where)`` with ``where`` naming the origin for errors."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        """Number of rows (may need a pass over the data for chunk callables)."""
        if self._n_samples is None:
            self.labels()
        return int(self._n_samples)

    def iter_blocks(self):
        """Yield the features as C-contiguous float64 blocks of at most ``block_rows`` rows.

        Raises
        ------
        ValueError
            A block with another number of features than :attr:`n_features`, a
            non-finite value (its global row is named), or a pass that yields a
            different number of rows than the first.
        """
        d = self.n_features
        total = 0
        for raw, where in self._raw_blocks():
            raw = self._check_raw(raw, where, d)
            for lo in range(0, raw.shape[0], self.block_rows):
                blk = np.ascontiguousarray(raw[lo:lo + self.block_rows], dtype=np.float64)
                with np.errstate(over="ignore", invalid="ignore"):
                    finite = np.isfinite(blk.sum())
                if not finite and not np.isfinite(blk).all():
                    bad = int(np.argmax(~np.isfinite(blk).all(axis=1)))
                    raise ValueError(
                        f"X{where} must be finite. Got NaN or inf at row "
                        f"{total + lo + bad} (counting from the first row of the source)."
                    )
                yield blk
            total += raw.shape[0]
        self._check_total(total)

    def _check_raw(self, raw, where, d):
        if not hasattr(raw, "shape") or not hasattr(raw, "dtype"):
            raw = np.asarray(raw)
        if len(raw.shape) != 2:
            raise ValueError(
                f"X{where} must be 2-D of shape (n_rows, n_features). Got shape "
                f"{tuple(raw.shape)} instead."
            )
        if raw.shape[1] != d:
            raise ValueError(
                f"X{where} has {raw.shape[1]} features, but the source has {d} (from its "
                f"first block): every block, shard or chunk needs the same feature columns."
            )
        if np.dtype(raw.dtype).kind not in "biuf":
            raise ValueError(f"X{where} must be numeric. Got dtype {raw.dtype} instead.")
        return raw

    def _check_total(self, total):
        if self._n_samples is None:
            self._n_samples = int(total)
        elif total != self._n_samples:
            raise ValueError(
                f"This pass over the source yielded {total} rows, but it has "
                f"{self._n_samples} rows. A source must yield the same rows every time it "
                f"is iterated (for a chunk callable: return a fresh iterable over the same "
                f"data on every call)."
            )

    def __repr__(self):
        n = "?" if self._n_samples is None else self._n_samples
        return f"{type(self).__name__}(n_samples={n}, block_rows={self.block_rows})"


class ArraySource(FeatureSource):
    """Rows of an in-memory array, a ``np.memmap`` or any row-sliceable 2-D array.

    Read-only memory maps (``np.load(path, mmap_mode="r")``) have each block's
    pages released after use, so the resident memory stays bounded.
    """

    def __init__(self, X, y=None, groups=None, block_rows=DEFAULT_BLOCK_ROWS):
        super().__init__(block_rows)
        if not hasattr(X, "shape") or not hasattr(X, "dtype"):
            X = np.asarray(X)
        if len(X.shape) != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(
                "The 'X' parameter must be a 2-D array of shape (n_samples, n_features) "
                f"with at least one row and column. Got shape {tuple(X.shape)} instead."
            )
        self.X = X
        self._n_samples = int(X.shape[0])
        self._y = _validated_labels(_load_label_file(y, "y"), "y", self._n_samples, None)
        self._groups = _validated_labels(_load_label_file(groups, "groups"), "groups",
                                         self._n_samples, None)
        self._mmap_base = _readonly_map_base(X)

    @property
    def n_features(self):
        return int(self.X.shape[1])

    def labels(self):
        if self._y is None:
            raise ValueError(
                "This source has no labels: pass y= (an array or a .npy path) to as_source.")
        return self._y, self._groups

    def _raw_blocks(self):
        n = self._n_samples
        for lo in range(0, n, self.block_rows):
            blk = self.X[lo:min(lo + self.block_rows, n)]
            yield blk, ""
            if self._mmap_base is not None:
                _release_pages(self.X, blk, self._mmap_base)


def _readonly_map_base(X):
    """(mmap, base address) of a read-only ``np.memmap``, else None."""
    mm = getattr(X, "_mmap", None)
    if not isinstance(X, np.memmap) or mm is None or getattr(X, "mode", None) != "r" \
            or not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return None
    try:
        base = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError, BufferError):  # pragma: no cover - exotic maps
        return None
    return mm, base


def _release_pages(X, blk, mapping):
    """Drop the pages of ``blk`` from the process (the data stays in the page cache)."""
    mm, base = mapping
    if not blk.flags.c_contiguous or blk.size == 0:
        return
    start = blk.ctypes.data - base
    stop = start + blk.nbytes
    page = mmap.PAGESIZE
    start = (start // page) * page
    stop = min(-(-stop // page) * page, len(mm))
    if 0 <= start < stop:
        try:
            mm.madvise(mmap.MADV_DONTNEED, start, stop - start)
        except (OSError, ValueError):  # pragma: no cover - advisory only
            pass


class NpySource(FeatureSource):
    """A ``.npy`` feature file read block by block with plain file reads.

    Labels come from ``y=`` (an array or a ``.npy`` path); when None and the file
    is named ``X.npy``, from ``y.npy`` beside it (and ``groups.npy`` if present),
    as :func:`lastlayer.io.load_features`. Fortran-ordered files are read through
    a read-only memory map instead.
    """

    def __init__(self, path, y=None, groups=None, block_rows=DEFAULT_BLOCK_ROWS):
        super().__init__(block_rows)
        path = Path(path)
        if path.is_dir() and (path / "X.npy").is_file():
            path = path / "X.npy"
        if not path.is_file():
            raise FileNotFoundError(f"Feature file '{path}' not found.")
        self.path = path
        if y is None and not (path.name == "X.npy" and path.with_name("y.npy").is_file()):
            # labels are optional here (statistics need only the cells)
            X = _io._load_npy(path, mmap=True)
            y_raw = None
            g_raw = None if groups is None else _io._npy_companion(groups, "groups", path)
        else:
            X, y_raw, g_raw = _io._read_npy(path, y, groups, mmap=True)
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(
                f"X in '{path}' must be 2-D of shape (n_samples, n_features) with at least "
                f"one row and column. Got shape {X.shape} instead.")
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X in '{path}' must be numeric. Got dtype {X.dtype} instead.")
        self._n_samples = int(X.shape[0])
        self._d = int(X.shape[1])
        self._dtype = X.dtype
        self._offset = int(X.offset)
        self._fortran = bool(X.flags.f_contiguous and not X.flags.c_contiguous)
        self._y = _validated_labels(y_raw, "y", self._n_samples, str(path))
        self._groups = _validated_labels(g_raw, "groups", self._n_samples, str(path))
        del X

    @property
    def n_features(self):
        return self._d

    def labels(self):
        if self._y is None:
            raise ValueError(
                f"The source '{self.path}' has no labels: pass y= (an array or a .npy "
                f"path), or name the file X.npy with y.npy beside it.")
        return self._y, self._groups

    def _raw_blocks(self):
        n, d = self._n_samples, self._d
        if self._fortran:
            X = np.load(self.path, mmap_mode="r", allow_pickle=False)
            yield from ArraySource(X, block_rows=self.block_rows)._raw_blocks()
            return
        row_bytes = d * self._dtype.itemsize
        with open(self.path, "rb") as f:
            for lo in range(0, n, self.block_rows):
                rows = min(self.block_rows, n - lo)
                f.seek(self._offset + lo * row_bytes)
                blk = np.fromfile(f, dtype=self._dtype, count=rows * d)
                if blk.size != rows * d:
                    raise ValueError(
                        f"'{self.path}' is truncated: expected {n} rows of {d} features.")
                yield blk.reshape(rows, d), f" in '{self.path}'"


def _npz_member_shape(path, member):
    """Shape of one array of a .npz archive, read from its header only."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            name = member + ".npy"
            if name not in zf.namelist():
                raise _io._missing_key(path, "array", member,
                                       [m[:-4] for m in zf.namelist() if m.endswith(".npy")])
            with zf.open(name) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, _ = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, _ = np.lib.format.read_array_header_2_0(f)
                else:  # pragma: no cover - other versions: read the array
                    return None
    except zipfile.BadZipFile as exc:
        raise ValueError(f"'{path}' is not a readable .npz file: {exc}.") from None
    return tuple(shape)


def _parquet_shape(path, label_column, group_column):
    """(rows, features or None) of a parquet shard from its metadata and schema."""
    pa, pq = _io._import_pyarrow()
    pf = pq.ParquetFile(path)
    rows = pf.metadata.num_rows
    schema = pf.schema_arrow
    names = [n for n in schema.names if n not in (label_column, group_column)
             and not (n.startswith("__index_level_") and n.endswith("__"))]
    if "X" in names:
        t = schema.field("X").type
        if pa.types.is_fixed_size_list(t):
            return rows, t.list_size
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return rows, None
    return rows, len(names)


class ShardSource(FeatureSource):
    """A directory (or list) of ``.npz`` or ``.parquet`` shards, read one at a time.

    Every shard holds ``X``, the labels (``label_column``) and optionally the
    groups (``group_column``) in the layouts of :func:`lastlayer.io.load_features`;
    shards are taken in sorted file-name order. Shapes are read from the file
    headers up front, so shards with different feature counts are refused before
    any data is read. Memory: one shard as stored plus one float64 block.
    """

    def __init__(self, paths, block_rows=DEFAULT_BLOCK_ROWS, *, label_column="y",
                 group_column="groups"):
        super().__init__(block_rows)
        paths = [Path(p) for p in paths]
        if not paths:
            raise ValueError("The 'paths' parameter must name at least one shard. Got none.")
        suffixes = {p.suffix.lower() for p in paths}
        if len(suffixes) != 1 or not suffixes <= {".npz", ".parquet"}:
            raise ValueError(
                "Shards must all be .npz or all be .parquet files. Got suffixes "
                f"{sorted(suffixes)!r} instead.")
        self.paths = paths
        self.kind = suffixes.pop()
        self.label_column, self.group_column = label_column, group_column
        shapes = []
        for p in paths:
            if not p.is_file():
                raise FileNotFoundError(f"Shard '{p}' not found.")
            if self.kind == ".npz":
                shape = _npz_member_shape(p, "X")
                if shape is not None and len(shape) != 2:
                    raise ValueError(
                        f"X in shard '{p}' must be 2-D (n_rows, n_features). Got shape "
                        f"{shape} instead.")
            else:
                shape = _parquet_shape(p, label_column, group_column)
            if shape is None or shape[1] is None:
                shape = _io.load_features(p, label_column=label_column,
                                          group_column=group_column).X.shape
            shapes.append(tuple(int(s) for s in shape))
        d0 = shapes[0][1]
        for p, (_, d) in zip(paths, shapes):
            if d != d0:
                raise ValueError(
                    f"Shards must have the same number of features: '{paths[0].name}' has "
                    f"{d0} and '{p.name}' has {d}.")
        self._shapes = shapes
        self._d = d0
        self._n_samples = int(sum(s[0] for s in shapes))
        self._labels = None

    @property
    def n_features(self):
        return self._d

    def _read_labels(self, path):
        if self.kind == ".npz":
            with _io._open_npz(path) as data:
                keys = set(data.files)
                if self.label_column not in keys:
                    raise _io._missing_key(path, "array", self.label_column, keys,
                                           "label_column")
                y = data[self.label_column]
                g = _io._optional(data, keys, self.group_column, path, "array")
            return y, g
        pa, pq = _io._import_pyarrow()
        names = pq.ParquetFile(path).schema_arrow.names
        if self.label_column not in names:
            raise ValueError(
                f"'{path}' has no label column '{self.label_column}' (set by label_column=). "
                f"Columns found: {names!r}.")
        cols = [self.label_column]
        if self.group_column is not None and self.group_column in names:
            cols.append(self.group_column)
        elif self.group_column not in (None, _io._DEFAULT_GROUP_COLUMN):
            raise ValueError(
                f"'{path}' has no group column '{self.group_column}' (set by "
                f"group_column=). Columns found: {names!r}.")
        table = pq.read_table(path, columns=cols)
        y = _io._arrow_column_to_numpy(pa, table.column(self.label_column))
        g = (_io._arrow_column_to_numpy(pa, table.column(cols[1])) if len(cols) == 2
             else None)
        return y, g

    def labels(self):
        if self._labels is None:
            ys, gs = [], []
            for p, (rows, _) in zip(self.paths, self._shapes):
                y, g = self._read_labels(p)
                ys.append(_validated_labels(y, "y", rows, str(p)))
                gs.append(_validated_labels(g, "groups", rows, str(p)))
            has_g = [g is not None for g in gs]
            if any(has_g) and not all(has_g):
                raise ValueError(
                    "Either every shard or none must hold groups. Shards with groups: "
                    f"{[p.name for p, h in zip(self.paths, has_g) if h]!r}; without: "
                    f"{[p.name for p, h in zip(self.paths, has_g) if not h]!r}.")
            y = _concat_labels(ys, "y", self.paths)
            g = _concat_labels(gs, "groups", self.paths) if all(has_g) else None
            self._labels = (y, g)
        return self._labels

    def _raw_blocks(self):
        for p, (rows, _) in zip(self.paths, self._shapes):
            fs = _io.load_features(p, label_column=self.label_column,
                                   group_column=self.group_column)
            if fs.X.shape[0] != rows:
                raise ValueError(
                    f"Shard '{p}' changed while being read: {fs.X.shape[0]} rows now, "
                    f"{rows} before.")
            yield fs.X, f" in shard '{p}'"


def _concat_labels(parts, name, paths):
    fams = {_io._label_family(a) for a in parts}
    if len(fams) > 1:
        kinds = {p.name: _io._label_family(a) for p, a in zip(paths, parts)}
        raise ValueError(
            f"{name} must be all numbers or all strings across shards. Got {kinds!r}.")
    return np.concatenate(parts)


def _is_dask_array(obj):
    mod = type(obj).__module__ or ""
    return mod.split(".")[0] == "dask" and hasattr(obj, "chunks") and hasattr(obj, "ndim")


def _compute_if_dask(value):
    if value is not None and _is_dask_array(value):
        return np.asarray(value.compute())
    return value


class DaskSource(FeatureSource):
    """Rows of a dask array, computed one block (within one row chunk) at a time.

    For parallel statistics use :func:`dask_statistics` instead; this source is
    the sequential, bounded-memory way to feed a dask array to the streaming
    functions.
    """

    def __init__(self, X, y=None, groups=None, block_rows=DEFAULT_BLOCK_ROWS):
        super().__init__(block_rows)
        if X.ndim != 2:
            raise ValueError(
                f"The 'X' parameter must be a 2-D dask array. Got {X.ndim} dimensions.")
        if any(np.isnan(c) for c in X.chunks[0]):
            raise ValueError(
                "The 'X' dask array has unknown chunk sizes; call X.compute_chunk_sizes() "
                "first.")
        self.X = X
        self._n_samples = int(X.shape[0])
        self._y = _validated_labels(_compute_if_dask(y), "y", self._n_samples, None)
        self._groups = _validated_labels(_compute_if_dask(groups), "groups",
                                         self._n_samples, None)

    @property
    def n_features(self):
        return int(self.X.shape[1])

    def labels(self):
        if self._y is None:
            raise ValueError("This source has no labels: pass y= to as_source.")
        return self._y, self._groups

    def _raw_blocks(self):
        lo = 0
        for size in self.X.chunks[0]:
            hi = lo + int(size)
            for a in range(lo, hi, self.block_rows):
                yield np.asarray(self.X[a:min(a + self.block_rows, hi)].compute()), ""
            lo = hi


class ChunkSource(FeatureSource):
    """Chunks from a zero-argument callable returning an iterable of
    ``(X, y)`` or ``(X, y, groups)``.

    The callable is called once per pass and must return a fresh iterable over the
    same rows every time (a generator *function*, not a generator). Labels are
    collected by one pass (cached); the row count is checked on every pass.
    """

    def __init__(self, make_chunks, block_rows=DEFAULT_BLOCK_ROWS):
        super().__init__(block_rows)
        if not callable(make_chunks):
            raise ValueError(
                "The chunk source must be a zero-argument callable returning an iterable "
                "of (X, y) or (X, y, groups) chunks, so that the data can be passed over "
                f"more than once. Got a {type(make_chunks).__name__}, which "
                + ("can be iterated only once; wrap the code that makes it in a function, "
                   "e.g. as_source(lambda: make_chunks())."
                   if isinstance(make_chunks, Iterator) else "is not callable."))
        self._make = make_chunks
        self._d = None
        self._labels = None
        self._last_iterator = None

    def _chunks(self):
        it = self._make()
        try:
            iterator = iter(it)
        except TypeError:
            raise ValueError(
                "The chunk callable must return an iterable of (X, y) or (X, y, groups). "
                f"Got {type(it).__name__} instead.") from None
        if iterator is it:  # an iterator: make sure it is not the same one again
            if self._last_iterator is not None and it is self._last_iterator:
                raise ValueError(
                    "The chunk callable returned the same iterator as on the previous "
                    "pass, so it cannot be iterated twice. Return a fresh iterable on "
                    "every call (e.g. a generator function, or a list).")
            self._last_iterator = it
        for k, chunk in enumerate(iterator):
            if not isinstance(chunk, (tuple, list)) or len(chunk) not in (2, 3):
                raise ValueError(
                    f"Chunk {k} must be a tuple (X, y) or (X, y, groups). Got "
                    f"{type(chunk).__name__} instead.")
            X = chunk[0]
            if not hasattr(X, "shape") or not hasattr(X, "dtype"):
                X = np.asarray(X)
            elif type(X).__module__.split(".")[0] == "torch":
                X = X.detach().cpu().numpy()
            yield k, X, chunk[1], (chunk[2] if len(chunk) == 3 else None)

    @property
    def n_features(self):
        if self._d is None:
            gen = self._chunks()
            try:
                _, X, _, _ = next(gen)
            except StopIteration:
                raise ValueError("The chunk callable yielded no chunks.") from None
            finally:
                gen.close()
            if len(X.shape) != 2 or X.shape[1] < 1:
                raise ValueError(
                    f"X in chunk 0 must be 2-D of shape (n_rows, n_features). Got shape "
                    f"{tuple(X.shape)} instead.")
            self._d = int(X.shape[1])
            self._last_iterator = None  # the peek is not a pass
        return self._d

    def labels(self):
        if self._labels is None:
            d = self.n_features
            ys, gs, total = [], [], 0
            for k, X, y, g in self._chunks():
                X = self._check_raw(X, f" in chunk {k}", d)
                rows = int(X.shape[0])
                ys.append(_validated_labels(np.asarray(y), "y", rows, f"chunk {k}"))
                gs.append(None if g is None else
                          _validated_labels(np.asarray(g), "groups", rows, f"chunk {k}"))
                total += rows
            if not ys:
                raise ValueError("The chunk callable yielded no chunks.")
            has_g = [g is not None for g in gs]
            if any(has_g) and not all(has_g):
                raise ValueError(
                    "Either every chunk or none must carry groups. Chunks with groups: "
                    f"{[k for k, h in enumerate(has_g) if h]!r}.")
            names = [Path(f"chunk {k}") for k in range(len(ys))]
            y = _concat_labels(ys, "y", names)
            g = _concat_labels(gs, "groups", names) if all(has_g) else None
            self._check_total(total)
            self._labels = (y, g)
        return self._labels

    def _raw_blocks(self):
        for k, X, y, _ in self._chunks():
            if len(y) != X.shape[0]:
                raise ValueError(
                    f"y in chunk {k} must have one label per row of X. Got len(y) = "
                    f"{len(y)} and {X.shape[0]} rows of X.")
            yield X, f" in chunk {k}"


def as_source(obj, y=None, groups=None, block_rows=DEFAULT_BLOCK_ROWS):
    """Wrap features that may not fit in memory as a :class:`FeatureSource`.

    Parameters
    ----------
    obj : array, np.memmap, str or path, dask array, callable or FeatureSource
        * a NumPy array, ``np.memmap`` or ``np.load(path, mmap_mode="r")`` array
          (any row-sliceable 2-D array) -> :class:`ArraySource`;
        * the path of a ``.npy`` file, or of a directory holding ``X.npy``
          -> :class:`NpySource` (plain file reads);
        * a directory of ``.npz`` or ``.parquet`` shards, a single shard, or a
          list of shard paths -> :class:`ShardSource`;
        * a dask array -> :class:`DaskSource` (``y``/``groups`` NumPy or dask);
        * a torch tensor -> :class:`ArraySource` over its CPU copy (a view on CPU);
        * a zero-argument callable returning an iterable of ``(X, y)`` or
          ``(X, y, groups)`` chunks -> :class:`ChunkSource`;
        * a FeatureSource is returned as is.
    y, groups : array-like or .npy path, optional
        Labels and groups for array, ``.npy`` and dask sources (shards and chunks
        carry their own).
    block_rows : int, default=65536
        Largest number of rows per block (see the module's memory bound).

    Returns
    -------
    FeatureSource
    """
    if isinstance(obj, FeatureSource):
        if y is not None or groups is not None:
            raise ValueError("The 'y' and 'groups' parameters cannot be given with a "
                             "FeatureSource, which carries its own labels.")
        return obj
    carried = "carry their own labels (label_column / the chunk tuples)"
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(p, (str, os.PathLike))
                                                      for p in obj):
        _no_labels(y, groups, "Shards " + carried)
        return ShardSource(obj, block_rows)
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if path.is_dir():
            if (path / "X.npy").is_file():
                return NpySource(path / "X.npy", y, groups, block_rows)
            files = sorted(p for p in path.iterdir() if p.is_file())
            npz = [p for p in files if p.suffix.lower() == ".npz"]
            parquet = [p for p in files if p.suffix.lower() == ".parquet"]
            if npz and parquet:
                raise ValueError(
                    f"Directory '{path}' holds both .npz and .parquet shards; put one kind "
                    f"per directory.")
            if not (npz or parquet):
                raise ValueError(
                    f"Directory '{path}' holds no X.npy and no .npz or .parquet shards.")
            _no_labels(y, groups, "Shards " + carried)
            return ShardSource(npz or parquet, block_rows)
        if not path.is_file():
            raise FileNotFoundError(f"Feature file '{path}' not found.")
        suffix = path.suffix.lower()
        if suffix == ".npy":
            return NpySource(path, y, groups, block_rows)
        if suffix in (".npz", ".parquet"):
            _no_labels(y, groups, "Shards " + carried)
            return ShardSource([path], block_rows)
        raise ValueError(
            f"Unsupported feature file suffix {suffix!r} for '{path}'. Out-of-core sources "
            f"read .npy files and directories of .npz or .parquet shards.")
    if _is_dask_array(obj):
        return DaskSource(obj, y, groups, block_rows)
    if (type(obj).__module__ or "").split(".")[0] == "torch" and hasattr(obj, "detach"):
        obj = obj.detach().cpu().numpy()  # a view for CPU tensors
    if callable(obj) or isinstance(obj, Iterator):
        _no_labels(y, groups, "Chunks " + carried)
        return ChunkSource(obj, block_rows)
    return ArraySource(obj, y, groups, block_rows)


def _no_labels(y, groups, why):
    if y is not None or groups is not None:
        raise ValueError(f"The 'y' and 'groups' parameters are not used here: {why}.")


# --------------------------------------------------------------------------------------
# Block kernels (shared by the streaming and dask paths)
# --------------------------------------------------------------------------------------


def _block_statistics(X, cells, n_cells, s):
    """Statistics of one block (a dask task); the accumulator casts and checks finiteness."""
    X = np.asarray(X)
    acc = _StatsAccumulator(n_cells, X.shape[1])
    acc.add(X, np.asarray(cells, dtype=np.intp), s)
    return acc.result()


class _LooPlan(NamedTuple):
    """Everything a block needs to add its rows' leave-one-out terms."""

    Qs: np.ndarray  # (d, r) eigenvectors / sqrt(lam)
    mu: np.ndarray  # (d,)
    tbar: np.ndarray  # (m,)
    T: np.ndarray  # (J, m)
    omega: np.ndarray  # (J,)
    V: float
    UtT: np.ndarray  # (r, m)
    F: np.ndarray  # (r, L) shrinkage factors lam / (lam + alpha n)


def _loo_plan(stats, omega, T, alphas, n_active):
    cen = _centre_stats(stats, omega, T)
    d = stats.n_features
    if d > n_active:
        raise ValueError(
            f"The streaming leave-one-out solves the primal problem and needs n_features "
            f"<= the number of weighted rows. Got n_features = {d} and {n_active} rows; "
            f"with fewer rows than features the data fits in memory: use "
            f"lastlayer.solvers.ridge_loo_path.")
    lam, Q = scipy.linalg.eigh(cen.C, check_finite=False)
    keep = lam > _noise_tol(max(n_active, d), max(float(lam[-1]), 0.0))
    lam, Q = lam[keep], Q[:, keep]
    sq = np.sqrt(lam)
    UtT = (Q.T @ cen.rhs) / sq[:, None]
    F = lam[:, None] / (lam[:, None] + alphas[None, :] * cen.n)
    return _LooPlan(Q / sq, cen.mu, cen.tbar, T, omega, cen.V, UtT, F), 1.0 + F.sum(axis=0)


def _loo_partial(X, cells, s, plan):
    """Per-alpha sums of ``||e_i||^2 / (1 - h_ii)^2`` over a block's weighted rows,
    and whether any row had ``h_ii`` numerically one."""
    L = plan.F.shape[1]
    sq_sum = np.zeros(L)
    bad = np.zeros(L, dtype=bool)
    cells = np.asarray(cells, dtype=np.intp)
    v_all = plan.omega[cells] if s is None else s * plan.omega[cells]
    r, m = plan.UtT.shape
    d = plan.Qs.shape[0]
    step = max(1, _WORK_ELEMS // max(d, r * m, 1))
    l_step = max(1, r // max(m, 1))
    for lo in range(0, X.shape[0], step):
        v = v_all[lo:lo + step]
        act = v > 0
        if not np.any(act):
            continue
        Xa = np.asarray(X[lo:lo + step], dtype=np.float64)
        if not act.all():
            Xa = Xa[act]
        v = v[act]
        c = cells[lo:lo + step][act]
        sv = np.sqrt(v)
        U = (Xa - plan.mu) @ plan.Qs
        U *= sv[:, None]
        U2 = U * U
        Tt = sv[:, None] * (plan.T[c] - plan.tbar)
        base = v / plan.V
        for a in range(0, L, l_step):
            F = plan.F[:, a:a + l_step]
            lc = F.shape[1]
            h = base[:, None] + U2 @ F
            coefs = (F[:, None, :] * plan.UtT[:, :, None]).reshape(r, m * lc)
            E = Tt[:, :, None] - (U @ coefs).reshape(-1, m, lc)
            omh = 1.0 - h
            ok = omh > 1e3 * _EPS
            safe = np.where(ok, omh, 1.0)
            sq_sum[a:a + lc] += (np.einsum("imk,imk->ik", E, E) / safe**2).sum(axis=0)
            bad[a:a + lc] |= ~ok.all(axis=0)
    return sq_sum, bad


def _add_partials(*parts):
    return sum(p[0] for p in parts), np.logical_or.reduce([p[1] for p in parts])


def _check_row_inputs(cells, n_cells, n, sample_weight):
    cells = _check_labels(cells, n, n_cells, "cells")
    sw = None if sample_weight is None else _check_nonneg_vector(
        sample_weight, n, "sample_weight", "one per row")
    return cells, sw


def _progress(progress, total, desc):
    return tqdm(total=total, unit="row", unit_scale=True, desc=desc, file=sys.stderr,
                disable=not progress, leave=False, dynamic_ncols=True)


def _stream(source, cells, sw, bar):
    """Yield ``(block, cells, sample_weight)`` aligned with the source's row order."""
    n = cells.shape[0]
    lo = 0
    for blk in source.iter_blocks():
        hi = lo + blk.shape[0]
        if hi > n:
            raise ValueError(
                f"The 'cells' parameter has {n} entries, but the source yields more rows.")
        yield blk, cells[lo:hi], None if sw is None else sw[lo:hi]
        bar.update(blk.shape[0])
        lo = hi


# --------------------------------------------------------------------------------------
# Streaming (one process, bounded memory)
# --------------------------------------------------------------------------------------


def streaming_statistics(source, cells, n_cells, sample_weight=None, progress=True):
    """Per-cell sufficient statistics in one bounded-memory pass over a source.

    Equal (to round-off) to :func:`lastlayer.solvers.sufficient_statistics` on the
    same rows held in memory; the result feeds :func:`lastlayer.solvers.solve_ridge`,
    the leverage hook of :mod:`lastlayer.weights`, :mod:`lastlayer.paths` and
    :func:`streaming_loo_path`.

    Parameters
    ----------
    source : FeatureSource or anything :func:`as_source` accepts
    cells : array-like of int of shape (n_samples,)
        Cell of every row, in the source's row order (from ``source.labels()``).
    n_cells : int
        Number of cells ``J``.
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative sample weights ``s_i``.
    progress : bool, default=True
        Show a tqdm progress bar on stderr.

    Returns
    -------
    SufficientStats

    Notes
    -----
    Memory (see the module docstring): one block (``8 * block_rows * d`` bytes,
    plus the stored block when it is not float64), about 64 MiB of workspace and
    the statistics, ``8 J (d + 1)^2`` bytes. Gram matrices are accumulated with
    the symmetric rank-k update (``dsyrk``, half the flops of ``X^T X``).
    """
    source = as_source(source)
    n_cells = check_int(n_cells, "n_cells", low=1)
    n = source.n_samples
    cells, sw = _check_row_inputs(cells, n_cells, n, sample_weight)
    acc = _StatsAccumulator(n_cells, source.n_features)
    with _progress(progress, n, "statistics") as bar:
        for blk, cb, sb in _stream(source, cells, sw, bar):
            acc.add(blk, cb, sb)
    return acc.result()


def streaming_loo_path(source, stats, cells, cell_weights, cell_targets, alphas,
                       sample_weight=None, progress=True):
    """Exact weighted leave-one-out error for many alphas in one more pass.

    The same quantity as :func:`lastlayer.solvers.ridge_loo_path` (primal case,
    ``d <=`` the number of weighted rows): with ``C = Q diag(lam) Q^T`` the
    eigendecomposition of the weighted centred Gram matrix, obtained from
    ``stats`` alone, each row's leverage and residual for every alpha follow from
    its projection ``u_i = sqrt(v_i) diag(lam)^{-1/2} Q^T (x_i - mu)``:

    .. math::

        h_{ii} = \\frac{v_i}{V} + \\sum_k u_{ik}^2 F_k,\\quad
        e_i = \\sqrt{v_i}(t_i - \\bar t) - \\sum_k u_{ik} F_k (U^\\top \\tilde T)_k,
        \\quad F_k = \\frac{\\lambda_k}{\\lambda_k + \\alpha n},

    and ``LOO(alpha) = sum_i ||e_i||^2 / (1 - h_ii)^2 / V``.

    Parameters
    ----------
    source : FeatureSource or anything :func:`as_source` accepts
    stats : SufficientStats
        Of the same rows (:func:`streaming_statistics`).
    cells, sample_weight
        As in :func:`streaming_statistics`.
    cell_weights : array-like of shape (n_cells,)
    cell_targets : array-like of shape (n_cells, n_targets) or (n_cells,)
    alphas : array-like of shape (n_alphas,)
        Non-negative ridge strengths.
    progress : bool, default=True

    Returns
    -------
    dict
        ``"alphas"``, ``"loo_mse"`` (``inf`` where a weighted row has ``h_ii``
        numerically one) and ``"df"``, as :func:`ridge_loo_path`.

    Notes
    -----
    Cost: one ``d x d`` eigendecomposition, then ``O(n d r + n r m L)`` for the
    pass. Memory: the streaming bound plus ``3 * 8 d^2`` bytes.
    """
    source = as_source(source)
    stats = _check_stats(stats)
    omega = _check_cell_weights(cell_weights, stats.n_cells)
    T = _check_cell_targets(cell_targets, stats.n_cells)
    alphas = _check_alphas(alphas)
    n = source.n_samples
    if source.n_features != stats.n_features:
        raise ValueError(
            f"The 'stats' parameter has {stats.n_features} features but the source has "
            f"{source.n_features}.")
    cells, sw = _check_row_inputs(cells, stats.n_cells, n, sample_weight)
    v = omega[cells] if sw is None else sw * omega[cells]
    plan, df = _loo_plan(stats, omega, T, alphas, int(np.count_nonzero(v > 0)))
    total = np.zeros(alphas.size)
    bad = np.zeros(alphas.size, dtype=bool)
    with _progress(progress, n, "leave-one-out") as bar:
        for blk, cb, sb in _stream(source, cells, sw, bar):
            part, b = _loo_partial(blk, cb, sb, plan)
            total += part
            bad |= b
    loo = total / plan.V
    loo[bad] = np.inf
    return {"alphas": alphas, "loo_mse": loo, "df": df}


# --------------------------------------------------------------------------------------
# Dask
# --------------------------------------------------------------------------------------


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        raise ImportError(f"dask input needs dask and distributed: {_DASK_HINT}") from exc
    return dask, da


def _dask_rows(X, da):
    if not isinstance(X, da.Array):
        X = da.from_array(np.asarray(X), chunks=(DEFAULT_BLOCK_ROWS, -1))
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(
            "The 'X' parameter must be a 2-D dask array of shape (n_samples, n_features) "
            f"with at least one row and column. Got shape {X.shape} instead.")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            "The 'X' dask array has unknown chunk sizes; call X.compute_chunk_sizes() first.")
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    bounds = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(int)
    return X, X.to_delayed()[:, 0], bounds


def _tree_sum(dask, parts, combine, split_every):
    while len(parts) > 1:
        parts = [dask.delayed(combine)(*parts[i:i + split_every])
                 for i in range(0, len(parts), split_every)]
    return parts[0]


def dask_statistics(X, cells, n_cells, sample_weight=None, *, split_every=8):
    """Per-cell sufficient statistics of a dask array, in parallel.

    Each row chunk (all columns) becomes one task computing its partial statistics;
    the partials are summed in a tree (``split_every`` at a time, like dask's own
    reductions). Runs on the active scheduler -- a ``dask.distributed`` client
    when one exists.

    Parameters
    ----------
    X : dask array of shape (n_samples, n_features)
        A NumPy array is wrapped with ``dask.array.from_array``.
    cells : array-like of int of shape (n_samples,)
        NumPy or dask (computed first: labels are small).
    n_cells : int
    sample_weight : array-like of shape (n_samples,), default=None
        NumPy or dask.
    split_every : int, default=8
        Fan-in of the tree sum.

    Returns
    -------
    SufficientStats
        Equal (to round-off) to :func:`lastlayer.solvers.sufficient_statistics`.

    Notes
    -----
    Memory per worker: one row chunk of ``X`` plus ``split_every + 1`` partial
    statistics (``8 J (d + 1)^2`` bytes each).
    """
    dask, da = _import_dask()
    n_cells = check_int(n_cells, "n_cells", low=1)
    split_every = check_int(split_every, "split_every", low=2)
    X, blocks, bounds = _dask_rows(X, da)
    cells, sw = _check_row_inputs(_compute_if_dask(cells), n_cells, int(X.shape[0]),
                                  _compute_if_dask(sample_weight))
    parts = [
        dask.delayed(_block_statistics)(blk, cells[lo:hi], n_cells,
                                        None if sw is None else sw[lo:hi])
        for blk, lo, hi in zip(blocks, bounds[:-1], bounds[1:])
    ]
    (stats,) = dask.compute(_tree_sum(dask, parts, merge_statistics, split_every))
    return stats


def dask_loo_path(X, stats, cells, cell_weights, cell_targets, alphas, sample_weight=None,
                  *, split_every=8):
    """:func:`streaming_loo_path` on a dask array, one task per row chunk.

    The eigendecomposition is done once, locally, from ``stats``
    (:func:`dask_statistics`); the plan (``d x r`` projection and small vectors) is
    shipped once to the workers, each row chunk returns per-alpha partial sums and
    these are added in a tree.

    Returns
    -------
    dict
        ``"alphas"``, ``"loo_mse"``, ``"df"`` as :func:`lastlayer.solvers.ridge_loo_path`.
    """
    dask, da = _import_dask()
    stats = _check_stats(stats)
    omega = _check_cell_weights(cell_weights, stats.n_cells)
    T = _check_cell_targets(cell_targets, stats.n_cells)
    alphas = _check_alphas(alphas)
    split_every = check_int(split_every, "split_every", low=2)
    X, blocks, bounds = _dask_rows(X, da)
    if X.shape[1] != stats.n_features:
        raise ValueError(
            f"The 'stats' parameter has {stats.n_features} features but X has "
            f"{X.shape[1]}.")
    cells, sw = _check_row_inputs(_compute_if_dask(cells), stats.n_cells, int(X.shape[0]),
                                  _compute_if_dask(sample_weight))
    v = omega[cells] if sw is None else sw * omega[cells]
    plan, df = _loo_plan(stats, omega, T, alphas, int(np.count_nonzero(v > 0)))
    plan_d = dask.delayed(plan, traverse=False)
    parts = [
        dask.delayed(_loo_partial)(blk, cells[lo:hi], None if sw is None else sw[lo:hi],
                                   plan_d)
        for blk, lo, hi in zip(blocks, bounds[:-1], bounds[1:])
    ]
    (total, bad), = dask.compute(_tree_sum(dask, parts, _add_partials, split_every))
    loo = total / plan.V
    loo[bad] = np.inf
    return {"alphas": alphas, "loo_mse": loo, "df": df}


# --------------------------------------------------------------------------------------
# Torch
# --------------------------------------------------------------------------------------


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"torch_statistics needs torch: {_TORCH_HINT}") from exc
    return torch


def torch_statistics(X, cells, n_cells, sample_weight=None, *, device="cuda", dtype=None,
                     block_rows=DEFAULT_BLOCK_ROWS, progress=False):
    """Per-cell sufficient statistics computed with torch on a device (e.g. a GPU).

    Blocks of rows are moved to ``device``, cast to ``dtype`` and reduced there;
    the Gram matrices and sums are accumulated on the device in float64.

    Parameters
    ----------
    X : torch tensor, array, np.memmap or anything :func:`as_source` accepts
        A tensor is sliced in blocks as it is (it may already live on the device);
        anything else is read block by block through :func:`as_source`.
    cells : array-like of int of shape (n_samples,)
    n_cells : int
    sample_weight : array-like of shape (n_samples,), default=None
    device : str or torch.device, default="cuda"
    dtype : torch.dtype, default=None
        Compute dtype of the block products; None is ``torch.float64`` (exact
        agreement with :func:`lastlayer.solvers.sufficient_statistics`).
        ``torch.float32`` is much faster on most GPUs but each block's Gram carries
        float32 round-off (relative ``~1e-7 * sqrt(block_rows)``).
    block_rows : int, default=65536
    progress : bool, default=False

    Returns
    -------
    SufficientStats
        NumPy float64 arrays.

    Raises
    ------
    RuntimeError
        ``device`` is a CUDA device and ``torch.cuda.is_available()`` is False.
    ImportError
        torch is not installed (``pip install "lastlayer[torch]"``).
    """
    torch = _import_torch()
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"torch_statistics(device={str(device)!r}) needs a CUDA device, but "
            f"torch.cuda.is_available() is False (torch {torch.__version__}). Pass "
            f"device='cpu', or use a CUDA build of torch on a machine with a GPU.")
    dtype = torch.float64 if dtype is None else dtype
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(
            f"The 'dtype' parameter must be a floating torch dtype. Got {dtype!r} instead.")
    n_cells = check_int(n_cells, "n_cells", low=1)
    block_rows = check_int(block_rows, "block_rows", low=1)
    if isinstance(X, torch.Tensor):
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(
                "The 'X' parameter must be a 2-D tensor of shape (n_samples, n_features) "
                f"with at least one row and column. Got shape {tuple(X.shape)} instead.")
        n, d = int(X.shape[0]), int(X.shape[1])
        blocks = (X[lo:lo + block_rows] for lo in range(0, n, block_rows))
    else:
        src = as_source(X, block_rows=block_rows)
        n, d = src.n_samples, src.n_features
        blocks = src.iter_blocks()
    cells, sw = _check_row_inputs(cells, n_cells, n, sample_weight)
    f64 = torch.float64
    grams = torch.zeros((n_cells, d, d), dtype=f64, device=dev)
    sums = torch.zeros((n_cells, d), dtype=f64, device=dev)
    lo = 0
    with _progress(progress, n, "statistics") as bar:
        for blk in blocks:
            hi = lo + int(blk.shape[0])
            xb = torch.as_tensor(blk).to(device=dev, dtype=dtype)
            if not bool(torch.isfinite(xb).all()):
                raise ValueError("The 'X' parameter must be finite. Got NaN or inf values.")
            cb = cells[lo:hi]
            order = np.argsort(cb, kind="stable")
            cb = cb[order]
            xb = xb[torch.as_tensor(order, device=dev)]
            sb = None if sw is None else torch.as_tensor(sw[lo:hi][order], device=dev,
                                                         dtype=dtype)
            present, first = np.unique(cb, return_index=True)
            bounds = np.append(first, cb.shape[0])
            for j, a, b in zip(present, bounds[:-1], bounds[1:]):
                Xj = xb[a:b]
                if sb is None:
                    sums[j] += Xj.sum(dim=0).to(f64)
                    Xs = Xj
                else:
                    sums[j] += (sb[a:b] @ Xj).to(f64)
                    Xs = Xj * torch.sqrt(sb[a:b])[:, None]
                grams[j] += (Xs.T @ Xs).to(f64)
            bar.update(hi - lo)
            lo = hi
    if lo != n:  # pragma: no cover - sources check their own row counts
        raise ValueError(f"X yielded {lo} rows, expected {n}.")
    G = grams.cpu().numpy()
    G = 0.5 * (G + G.transpose(0, 2, 1))
    weight_sums = (np.bincount(cells, minlength=n_cells).astype(float) if sw is None
                   else np.bincount(cells, weights=sw, minlength=n_cells))
    return SufficientStats(weight_sums, np.bincount(cells, minlength=n_cells).astype(np.int64),
                           sums.cpu().numpy(), G)
