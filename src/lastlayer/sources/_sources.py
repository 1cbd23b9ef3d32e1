"""Feature sources: row blocks of data that need not fit in memory.

A :class:`FeatureSource` yields float blocks of at most ``block_rows`` rows in a
fixed row order, as many times as asked; labels (small) are held in memory.
:func:`as_source` builds one from a NumPy array or memory map, a ``.npy`` file (read
block by block with plain file reads: no page of it stays mapped), a directory of
``.npz`` or ``.parquet`` shards (the layouts of :func:`lastlayer.io.load_features`,
read one shard at a time), a dask array, or a zero-argument callable returning an
iterable of ``(X, y)`` / ``(X, y, groups)`` chunks.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .._formats import (
    DEFAULT_GROUP_COLUMN,
    arrow_column_to_numpy,
    import_pyarrow,
    load_npy,
    missing_key,
    npy_companion,
    open_npz,
    optional,
    read_npy,
)
from .._validation import check_int, check_row_labels, label_family
from ..io import load_features

__all__ = ["DEFAULT_BLOCK_ROWS", "ArraySource", "ChunkSource", "DaskSource", "FeatureSource",
           "NpySource", "ShardSource", "as_source", "compute_if_dask", "is_dask_array",
           "is_out_of_core"]

#: Default rows per block of :func:`as_source`.
DEFAULT_BLOCK_ROWS = 65536


def _load_label_file(value, name):
    """Labels given as a ``.npy`` path are read (they are small)."""
    if isinstance(value, (str, os.PathLike)):
        p = Path(value)
        if p.suffix.lower() != ".npy" or not p.is_file():
            raise ValueError(
                f"The '{name}' parameter must be an array or the path of an existing .npy "
                f"file. Got '{p}' instead."
            )
        return load_npy(p, mmap=False)
    return value


class FeatureSource:
    """Features read block by block, re-iterable, with in-memory labels.

    Subclasses implement :meth:`_raw_blocks` (arrays of any real dtype and any
    number of rows, in a fixed order); :meth:`iter_blocks` splits them into float
    blocks (float64, or as stored) of at most :attr:`block_rows` rows, checks the
    feature count and that every value is finite, and checks that every pass
    yields the same number of rows.

    Attributes
    ----------
    block_rows : int
        Largest number of rows per block.
    """

    block_rows: int = DEFAULT_BLOCK_ROWS
    _n_samples: int | None = None
    _dtype: np.dtype | None = None

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

    def _raw_blocks(self, reuse=False):
        """Yield ``(array, where)`` with ``where`` naming the origin for errors; with
        ``reuse`` an array may live in a buffer that the next one overwrites."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------
    @property
    def n_samples(self) -> int:
        """Number of rows (may need a pass over the data for chunk callables)."""
        if self._n_samples is None:
            self.labels()
        return int(self._n_samples)

    @property
    def dtype(self):
        """The stored dtype of the features (of the first block when the source does
        not know it up front: then one block or shard is read)."""
        d = self.n_features  # a chunk source learns its dtype here
        if self._dtype is None:
            gen = self._raw_blocks()
            try:
                raw, where = next(gen)
            except StopIteration:
                raise ValueError("The source yielded no rows.") from None
            finally:
                gen.close()
            self._dtype = np.dtype(self._check_raw(raw, where, d).dtype)
        return self._dtype

    def iter_blocks(self, dtype=np.float64, *, reuse=False):
        """Yield the features as C-contiguous float blocks of at most ``block_rows`` rows.

        Parameters
        ----------
        dtype : dtype or None, default=float64
            Of the blocks; None keeps float32 and float64 as stored (native byte
            order) and gives float64 for other stored dtypes.
        reuse : bool, default=False
            Let the source read or convert into buffers that it reuses: a block is
            then valid only until the next one is asked for (copy it to keep it).
            With ``reuse=False`` every block is a fresh array or a read-only-use
            view of the source's own rows, and may be kept.

        Raises
        ------
        ValueError
            A block with another number of features than :attr:`n_features`, a
            non-finite value (its global row is named), or a pass that yields a
            different number of rows than the first.
        """
        d = self.n_features
        total = 0
        out = None
        for raw, where in self._raw_blocks(reuse):
            raw = self._check_raw(raw, where, d)
            want = _block_dtype(raw.dtype, dtype)
            for lo in range(0, raw.shape[0], self.block_rows):
                part = raw[lo:lo + self.block_rows]
                if reuse and not (part.dtype == want and part.flags.c_contiguous):
                    if out is None or out.dtype != want:
                        out = np.empty((self.block_rows, d), dtype=want)
                    blk = out[:part.shape[0]]
                    np.copyto(blk, part, casting="unsafe")
                else:
                    blk = np.ascontiguousarray(part, dtype=want)
                _check_finite(blk, where, total + lo)
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


def _block_dtype(stored, dtype):
    """The dtype of the blocks: ``dtype``, or with None float32 / float64 as stored."""
    if dtype is not None:
        return np.dtype(dtype)
    stored = np.dtype(stored)
    if stored.kind == "f" and stored.itemsize in (4, 8):
        return stored.newbyteorder("=")
    return np.dtype(np.float64)


def _check_finite(blk, where, first_row):
    """Refuse a block with NaN or inf, naming the global row of the first one."""
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(blk.sum())
    if not finite and not np.isfinite(blk).all():
        bad = int(np.argmax(~np.isfinite(blk).all(axis=1)))
        raise ValueError(
            f"X{where} must be finite. Got NaN or inf at row {first_row + bad} (counting "
            f"from the first row of the source).")


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
        self._y = check_row_labels(_load_label_file(y, "y"), "y", self._n_samples, None)
        self._groups = check_row_labels(_load_label_file(groups, "groups"), "groups",
                                         self._n_samples, None)
        self._mmap_base = _readonly_map_base(X)
        self._dtype = np.dtype(X.dtype)

    @property
    def n_features(self):
        return int(self.X.shape[1])

    def labels(self):
        if self._y is None:
            raise ValueError(
                "This source has no labels: pass y= (an array or a .npy path) to as_source.")
        return self._y, self._groups

    def _raw_blocks(self, reuse=False):
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
            X = load_npy(path, mmap=True)
            y_raw = None
            g_raw = None if groups is None else npy_companion(groups, "groups", path)
        else:
            X, y_raw, g_raw = read_npy(path, y, groups, mmap=True)
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
        self._y = check_row_labels(y_raw, "y", self._n_samples, str(path))
        self._groups = check_row_labels(g_raw, "groups", self._n_samples, str(path))
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

    def _raw_blocks(self, reuse=False):
        n, d = self._n_samples, self._d
        if self._fortran:
            X = np.load(self.path, mmap_mode="r", allow_pickle=False)
            yield from ArraySource(X, block_rows=self.block_rows)._raw_blocks()
            return
        row_bytes = d * self._dtype.itemsize
        # with reuse, every block is read into one buffer (no allocation per block)
        buf = np.empty((min(self.block_rows, n), d), dtype=self._dtype) if reuse else None
        with open(self.path, "rb", buffering=0) as f:
            for lo in range(0, n, self.block_rows):
                rows = min(self.block_rows, n - lo)
                f.seek(self._offset + lo * row_bytes)
                blk = (buf[:rows] if reuse else np.empty((rows, d), dtype=self._dtype))
                if _read_into(f, blk) != blk.nbytes:
                    raise ValueError(
                        f"'{self.path}' is truncated: expected {n} rows of {d} features.")
                yield blk, f" in '{self.path}'"


def _read_into(f, arr):
    """Fill C-contiguous ``arr`` from unbuffered file ``f``; the number of bytes read."""
    view = memoryview(arr.reshape(-1).view(np.uint8))
    got = 0
    while got < view.nbytes:
        k = f.readinto(view[got:])
        if not k:
            break
        got += k
    return got


def _npz_member_header(path, member):
    """(shape, dtype) of one array of a .npz archive, read from its header only (None
    when the header's version is not known)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            name = member + ".npy"
            if name not in zf.namelist():
                raise missing_key(path, "array", member,
                                       [m[:-4] for m in zf.namelist() if m.endswith(".npy")])
            with zf.open(name) as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                else:  # pragma: no cover - other versions: read the array
                    return None
    except zipfile.BadZipFile as exc:
        raise ValueError(f"'{path}' is not a readable .npz file: {exc}.") from None
    return tuple(shape), np.dtype(dtype)


def _parquet_shape(path, label_column, group_column):
    """(rows, features or None), dtype or None of a parquet shard from its metadata
    and schema."""
    pa, pq = import_pyarrow()
    pf = pq.ParquetFile(path)
    rows = pf.metadata.num_rows
    schema = pf.schema_arrow
    names = [n for n in schema.names if n not in (label_column, group_column)
             and not (n.startswith("__index_level_") and n.endswith("__"))]
    if "X" in names:
        t = schema.field("X").type
        if pa.types.is_fixed_size_list(t):
            return (rows, t.list_size), _arrow_float_dtype(pa, [t.value_type])
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return (rows, None), None
    return (rows, len(names)), _arrow_float_dtype(pa, [schema.field(n).type for n in names])


def _arrow_float_dtype(pa, types):
    """float32 / float64 when every arrow type is that one, else None (not known)."""
    if len(set(types)) == 1 and pa.types.is_floating(types[0]) \
            and types[0].bit_width in (32, 64):
        return np.dtype(f"float{types[0].bit_width}")
    return None


class ShardSource(FeatureSource):
    """A directory (or list) of ``.npz`` or ``.parquet`` shards, read one at a time.

    Every shard holds ``X``, the labels (``label_column``) and optionally the
    groups (``group_column``) in the layouts of :func:`lastlayer.io.load_features`;
    shards are taken in sorted file-name order. Shapes are read from the file
    headers up front, so shards with different feature counts are refused before
    any data is read. Memory: one shard as stored (plus one float64 block when the
    blocks are asked for in float64 and the shard holds another dtype).
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
        shapes, dtypes = [], []
        for p in paths:
            if not p.is_file():
                raise FileNotFoundError(f"Shard '{p}' not found.")
            if self.kind == ".npz":
                shape, dtype = _npz_member_header(p, "X") or (None, None)
                if shape is not None and len(shape) != 2:
                    raise ValueError(
                        f"X in shard '{p}' must be 2-D (n_rows, n_features). Got shape "
                        f"{shape} instead.")
            else:
                shape, dtype = _parquet_shape(p, label_column, group_column)
            if shape is None or shape[1] is None:
                X = load_features(p, label_column=label_column,
                                  group_column=group_column).X
                shape, dtype = X.shape, X.dtype
            shapes.append(tuple(int(s) for s in shape))
            dtypes.append(dtype)
        d0 = shapes[0][1]
        for p, (_, d) in zip(paths, shapes):
            if d != d0:
                raise ValueError(
                    f"Shards must have the same number of features: '{paths[0].name}' has "
                    f"{d0} and '{p.name}' has {d}.")
        self._shapes = shapes
        self._dtype = dtypes[0]  # None: the first shard is read when asked
        self._d = d0
        self._n_samples = int(sum(s[0] for s in shapes))
        self._labels = None

    @property
    def n_features(self):
        return self._d

    def _read_labels(self, path):
        if self.kind == ".npz":
            with open_npz(path) as data:
                keys = set(data.files)
                if self.label_column not in keys:
                    raise missing_key(path, "array", self.label_column, keys,
                                           "label_column")
                y = data[self.label_column]
                g = optional(data, keys, self.group_column, path, "array")
            return y, g
        pa, pq = import_pyarrow()
        names = pq.ParquetFile(path).schema_arrow.names
        if self.label_column not in names:
            raise ValueError(
                f"'{path}' has no label column '{self.label_column}' (set by label_column=). "
                f"Columns found: {names!r}.")
        cols = [self.label_column]
        if self.group_column is not None and self.group_column in names:
            cols.append(self.group_column)
        elif self.group_column not in (None, DEFAULT_GROUP_COLUMN):
            raise ValueError(
                f"'{path}' has no group column '{self.group_column}' (set by "
                f"group_column=). Columns found: {names!r}.")
        table = pq.read_table(path, columns=cols)
        y = arrow_column_to_numpy(pa, table.column(self.label_column))
        g = (arrow_column_to_numpy(pa, table.column(cols[1])) if len(cols) == 2
             else None)
        return y, g

    def labels(self):
        if self._labels is None:
            ys, gs = [], []
            for p, (rows, _) in zip(self.paths, self._shapes):
                y, g = self._read_labels(p)
                ys.append(check_row_labels(y, "y", rows, str(p)))
                gs.append(check_row_labels(g, "groups", rows, str(p)))
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

    def _raw_blocks(self, reuse=False):
        for p, (rows, _) in zip(self.paths, self._shapes):
            fs = load_features(p, label_column=self.label_column,
                                   group_column=self.group_column)
            if fs.X.shape[0] != rows:
                raise ValueError(
                    f"Shard '{p}' changed while being read: {fs.X.shape[0]} rows now, "
                    f"{rows} before.")
            yield fs.X, f" in shard '{p}'"


def _concat_labels(parts, name, paths):
    fams = {label_family(a) for a in parts}
    if len(fams) > 1:
        kinds = {p.name: label_family(a) for p, a in zip(paths, parts)}
        raise ValueError(
            f"{name} must be all numbers or all strings across shards. Got {kinds!r}.")
    return np.concatenate(parts)


def is_dask_array(obj):
    mod = type(obj).__module__ or ""
    return mod.split(".")[0] == "dask" and hasattr(obj, "chunks") and hasattr(obj, "ndim")


def compute_if_dask(value):
    if value is not None and is_dask_array(value):
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
        self._dtype = np.dtype(X.dtype)
        self._y = check_row_labels(compute_if_dask(y), "y", self._n_samples, None)
        self._groups = check_row_labels(compute_if_dask(groups), "groups",
                                         self._n_samples, None)

    @property
    def n_features(self):
        return int(self.X.shape[1])

    def labels(self):
        if self._y is None:
            raise ValueError("This source has no labels: pass y= to as_source.")
        return self._y, self._groups

    def _raw_blocks(self, reuse=False):
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
            self._dtype = np.dtype(X.dtype)
            self._last_iterator = None  # the peek is not a pass
        return self._d

    def labels(self):
        if self._labels is None:
            d = self.n_features
            ys, gs, total = [], [], 0
            for k, X, y, g in self._chunks():
                X = self._check_raw(X, f" in chunk {k}", d)
                rows = int(X.shape[0])
                ys.append(check_row_labels(np.asarray(y), "y", rows, f"chunk {k}"))
                gs.append(None if g is None else
                          check_row_labels(np.asarray(g), "groups", rows, f"chunk {k}"))
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

    def _raw_blocks(self, reuse=False):
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
    if is_dask_array(obj):
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


def is_out_of_core(X):
    """Inputs fitted from sufficient statistics without loading all rows.

    Arrays (memory-mapped ones included) are fitted in memory; wrap a memmap in
    :func:`as_source` (or pass its ``.npy`` path) to stream it.
    """
    if isinstance(X, (str, os.PathLike)) or callable(X):
        return True
    return isinstance(X, FeatureSource) or is_dask_array(X)
