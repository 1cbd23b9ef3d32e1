"""Sufficient statistics of weighted least squares, and the centring every ridge kernel shares.

Kernels: no input checks (see :mod:`lastlayer._validation`; the checked entry
points are :func:`lastlayer.solvers.sufficient_statistics` and
:func:`lastlayer.solvers.merge_statistics`). The conventions (cells, cell weights
``omega``, sample weights ``s``, the (1/n)-scaled ridge) are those of
:mod:`lastlayer.solvers`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg

__all__ = [
    "EPS",
    "PRECISIONS",
    "MIN_BLOCK_ROWS",
    "WORK_ELEMS",
    "Centred",
    "StatsAccumulator",
    "SufficientStats",
    "CellRows",
    "PackedGrams",
    "accumulate",
    "all_constant",
    "block_rows",
    "block_statistics",
    "check_finite",
    "cell_leverage",
    "cell_squares",
    "centre_stats",
    "covariance_spectrum",
    "fill_lower_from_upper",
    "gram_diagonals",
    "merge",
    "noise_tol",
    "one_norm",
    "pack_lower",
    "packed_matrix",
    "packed_offsets",
    "packed_statistics",
    "resolve_precision",
    "row_statistics",
    "symmetric_update",
    "weighted_gram",
    "well_conditioned_cholesky",
]

EPS = float(np.finfo(np.float64).eps)


class SufficientStats(NamedTuple):
    """Per-cell sufficient statistics of a weighted least-squares problem.

    Attributes
    ----------
    weight_sums : ndarray of shape (n_cells,)
        ``N_j = sum_{i in j} s_i`` (the row counts when there are no sample weights).
    n_rows : ndarray of shape (n_cells,), dtype int64
        Number of rows in each cell (zero-weight rows included).
    sums : ndarray of shape (n_cells, n_features)
        ``m_j = sum_{i in j} s_i x_i``.
    grams : ndarray of shape (n_cells, n_features, n_features), PackedGrams or CellRows
        ``G_j = sum_{i in j} s_i x_i x_i^T`` (raw, not centred; symmetric); in an
        in-memory fit their lower triangles packed (:class:`PackedGrams`,
        :func:`packed_statistics`) or, with many cells, the rows themselves
        (:class:`CellRows`, :func:`row_statistics`). Read them through
        :func:`weighted_gram`, :func:`cell_leverage`, :func:`cell_squares` and
        :func:`gram_diagonals`, which take any of the three.
    """

    weight_sums: np.ndarray
    n_rows: np.ndarray
    sums: np.ndarray
    grams: np.ndarray

    @property
    def n_cells(self):
        return self.weight_sums.shape[0]

    @property
    def n_features(self):
        return self.sums.shape[1]


#: Float64 entries per sub-block of the statistics pass (16 MiB of workspace).
WORK_ELEMS = 2**21
#: Passes over the rows take blocks of at most an eighth of the rows, but at least
#: this many (:func:`block_rows`).
MIN_BLOCK_ROWS = 256


def block_rows(n, width):
    """Rows per block of a pass over ``n`` rows whose temporaries are ``width`` numbers
    a row: within :data:`WORK_ELEMS`, and at most an eighth of the rows (at least
    :data:`MIN_BLOCK_ROWS`), so that a block's temporaries (its float64 projections
    and their float32 product, about 16 bytes a number) stay near half the size of a
    float32 ``X`` of ``width`` columns, not several times it (a 16 MiB workspace is
    twice a 1,000 x 2,048 float32 ``X``)."""
    return max(1, min(WORK_ELEMS // max(width, 1), max(MIN_BLOCK_ROWS, -(-n // 8))))
#: Precisions of the Gram products (:func:`sufficient_statistics`).
PRECISIONS = ("float64", "float32")


def resolve_precision(precision, dtype):
    """The Gram precision for features stored as ``dtype``: ``"auto"`` is float32 for
    float32 features and float64 otherwise; ``"float64"`` / ``"float32"`` as given."""
    if precision != "auto":
        return precision
    return "float32" if dtype is not None and np.dtype(dtype) == np.float32 else "float64"


class StatsAccumulator:
    """In-place per-cell statistics, Gram lower triangles accumulated with ``?syrk``.

    ``precision="float64"``: every block is cast to float64 and added with
    ``dsyrk``. ``precision="float32"``: every block is shifted by a fixed centre
    ``c`` (the mean of the first block, rounded to float32) and its Gram product is
    taken in float32 (``ssyrk``, twice the flops per second) and added to float64
    accumulators; :meth:`result` undoes the shift exactly in float64. Shifting makes
    the float32 rounding relative to the spread of the features, not their offset.
    """

    def __init__(self, n_cells, d, precision="float64", dense=True):
        self.J, self.d = n_cells, d
        self.dtype = np.dtype(precision)
        self.syrk = scipy.linalg.blas.get_blas_funcs("syrk", dtype=self.dtype)
        self.centre = None if self.dtype == np.float64 else np.empty(0)
        self.weight_sums = np.zeros(n_cells)
        self.n_rows = np.zeros(n_cells, dtype=np.int64)
        self.sums = np.zeros((n_cells, d))
        # dense=False: no J d x d accumulators (packed_statistics passes its own)
        self.grams = np.zeros((n_cells, d, d)) if dense else None

    def add(self, X, cells, s):
        """``X`` rows (rows, d) of any float dtype; ``cells`` int; ``s`` weights or None."""
        self.count(X, cells, s)
        for j, rows in self.cell_blocks(cells):
            self.add_block(j, X, rows, s)

    def count(self, X, cells, s):
        """Row counts and weight sums of a block of rows (the float32 centre: the mean
        of the first block)."""
        J = self.J
        self.n_rows += np.bincount(cells, minlength=J)
        self.weight_sums += (np.bincount(cells, minlength=J) if s is None
                             else np.bincount(cells, weights=s, minlength=J))
        if self.centre is not None and self.centre.size == 0 and X.shape[0]:
            self.centre = X.mean(axis=0, dtype=np.float64).astype(np.float32)

    def cell_blocks(self, cells):
        """``(j, rows)`` sub-blocks of one cell each, cell by cell, as many rows per
        ``?syrk`` call as the workspace holds (``rows`` a slice or row indices)."""
        step = max(1, WORK_ELEMS * 8 // (self.dtype.itemsize * max(self.d, 1)))
        if cells.size and cells.min() == cells.max():
            j = int(cells[0])
            return [(j, slice(lo, lo + step)) for lo in range(0, cells.shape[0], step)]
        order = np.argsort(cells, kind="stable")
        present, first = np.unique(cells[order], return_index=True)
        bounds = np.append(first, cells.shape[0])
        return [(int(j), order[lo:min(lo + step, b)])
                for j, a, b in zip(present, bounds[:-1], bounds[1:])
                for lo in range(a, b, step)]

    def add_block(self, j, X, rows, s, gram=None):
        """Add rows ``rows`` of ``X`` (all of cell ``j``) to the cell's sums and to its
        Gram accumulator (``gram``: another ``d x d`` accumulator instead)."""
        sj = None if s is None else s[rows]
        if isinstance(rows, slice):
            Xj = self._working_copy(X[rows])
        else:
            Xj = self._working_copy(X, rows)
        self._add_cell(j, Xj, sj, self.grams[j] if gram is None else gram)

    def _working_copy(self, X, rows=None):
        """Rows in the Gram dtype (gathered, shifted), copying only when needed."""
        if rows is not None:
            X = X[rows]
        if self.centre is None:
            return np.asarray(X, dtype=np.float64)
        if X.dtype == np.float32 and rows is not None:
            X -= self.centre  # a fresh copy: shift in place
            return X
        return np.subtract(X, self.centre, dtype=np.float32)

    def _add_cell(self, j, Xj, sj, G):
        if sj is None:
            self.sums[j] += Xj.sum(axis=0, dtype=np.float64)
            Xs = Xj
        else:
            self.sums[j] += sj.astype(Xj.dtype) @ Xj
            Xs = Xj * np.sqrt(sj).astype(Xj.dtype)[:, None]
        if self.centre is None:
            # G.T is F-contiguous: dsyrk updates its upper = G's lower triangle in place
            self.syrk(1.0, np.ascontiguousarray(Xs).T, beta=1.0, c=G.T, trans=0,
                      lower=0, overwrite_c=1)
        else:
            G.T[...] += self.syrk(1.0, np.ascontiguousarray(Xs).T, trans=0, lower=0)

    def finish_cell(self, j, G):
        """Undo the float32 shift of cell ``j``'s accumulated lower triangle in ``G``
        (``d x d``) in place; call after the cell's last rows, before :meth:`sums_unshifted`."""
        if self.centre is not None and self.centre.size:
            # sum s (x - c)(x - c)^T + c m^T + m c^T + N c c^T, m = sum s (x - c):
            # one rank-2 update c w^T + w c^T of the lower triangle, w = m + N c / 2
            c = self.centre.astype(np.float64)
            w = self.sums[j] + 0.5 * self.weight_sums[j] * c
            scipy.linalg.blas.dsyr2(1.0, c, w, a=G.T, lower=0, overwrite_a=1)

    def sums_unshifted(self):
        """The first moments, the shift undone (in place; call once, after every cell
        is finished)."""
        if self.centre is not None and self.centre.size:
            self.sums += self.weight_sums[:, None] * self.centre.astype(np.float64)
        return self.sums

    def result(self):
        """The statistics; the accumulators are finished in place (call once)."""
        grams = self.grams
        for j in range(self.J):
            self.finish_cell(j, grams[j])
            fill_lower_from_upper(grams[j].T)  # the accumulated lower triangle, up
        sums = self.sums_unshifted()
        check_finite(sums, grams)
        return SufficientStats(self.weight_sums, self.n_rows, sums, grams)


def check_finite(sums, grams):
    """Refuse statistics with NaN or inf (the rows were not finite, or their squares
    overflowed)."""
    if not (np.all(np.isfinite(sums)) and np.all(np.isfinite(grams))):
        raise ValueError("The 'X' parameter must be finite. Got NaN or inf values (or "
                         "values whose squares overflow).")


def accumulate(X, cells, n_cells, sw, chunk_size, precision):
    """Statistics of row-sliceable ``X`` read ``chunk_size`` rows at a time.

    ``cells`` are valid cell indices, ``sw`` the sample weights or None (all ones).
    """
    n, d = int(X.shape[0]), int(X.shape[1])
    acc = StatsAccumulator(n_cells, d, precision)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        Xc = np.asarray(X[start:stop])
        if Xc.dtype.kind != "f":
            Xc = Xc.astype(np.float64)
        acc.add(Xc, cells[start:stop], None if sw is None else sw[start:stop])
    return acc.result()



def merge(stats):
    """Statistics of the union of disjoint row sets (a list of SufficientStats with
    ``d x d`` Gram arrays)."""
    return SufficientStats(*(sum(field) for field in zip(*stats)))


class PackedGrams(NamedTuple):
    """The per-cell Gram matrices of in-memory rows, each kept as its lower triangle
    packed by rows (``G[i, :i + 1]`` for ``i = 0..d-1``; LAPACK's upper packed storage
    of the same symmetric matrix): ``d (d + 1) / 2`` float64 numbers a cell, half of a
    ``d x d`` array, the same values (:func:`packed_statistics`). Read through
    :func:`weighted_gram`, :func:`cell_leverage`, :func:`cell_squares` and
    :func:`gram_diagonals`."""

    values: np.ndarray  # (J, d (d + 1) / 2) float64

    @property
    def shape(self):
        J, D = self.values.shape
        d = int((np.sqrt(8 * D + 1) - 1) // 2)
        return (J, d, d)

    def offsets(self):
        """Where each packed row starts (``i (i + 1) / 2``), and the end."""
        return packed_offsets(self.shape[1])

    def matrix(self, v):
        """The symmetric ``d x d`` matrix (a new array) of packed vector ``v``."""
        return packed_matrix(v, self.shape[1])

    def pack(self, M, out, symmetrise=False):
        """``M``'s lower triangle into packed ``out`` (:func:`pack_lower`)."""
        return pack_lower(M, out, symmetrise)

    def combine(self, omega, out=None, block=256):
        """``sum_j omega_j G_j``, the symmetric ``d x d`` matrix (a new array, or
        written into ``out``), the packed rows combined a block at a time (no packed
        vector of the sum beside it: :meth:`matrix` of ``omega @ values``)."""
        d = self.shape[1]
        off = self.offsets()
        M = np.empty((d, d)) if out is None else out
        omega = np.asarray(omega, dtype=np.float64)
        for lo in range(0, d, block):
            hi = min(lo + block, d)
            seg = omega @ self.values[:, off[lo]:off[hi]]
            for i in range(lo, hi):
                M[i, :i + 1] = seg[off[i] - off[lo]:off[i + 1] - off[lo]]
        fill_lower_from_upper(M.T)  # the lower triangle, up
        return M

    def weigh(self, M, block=256):
        """``sum_ab G_j,ab M_ab`` of every cell ``j`` (J,) for a symmetric ``d x d``
        ``M``: the packed values times ``M``'s symmetrised packed lower triangle
        (:func:`pack_lower`), a block of rows at a time (no packed copy of ``M``)."""
        d = self.shape[1]
        off = self.offsets()
        out = np.zeros(self.values.shape[0])
        buf = np.empty(off[d] - off[max(d - block, 0)])  # the largest block's entries
        for lo in range(0, d, block):
            hi = min(lo + block, d)
            seg = buf[:off[hi] - off[lo]]
            for i in range(lo, hi):
                row = seg[off[i] - off[lo]:off[i + 1] - off[lo]]
                row[...] = M[i, :i + 1]
                row[:i] += M[:i, i]
            out += self.values[:, off[lo]:off[hi]] @ seg
        return out


def packed_offsets(d):
    """Where row ``i`` of a packed ``d x d`` lower triangle starts (``i (i + 1) / 2``),
    and the end (``d (d + 1) / 2``)."""
    i = np.arange(d + 1)
    return i * (i + 1) // 2


def pack_lower(M, out, symmetrise=False):
    """``M``'s lower triangle by rows (``M[i, :i + 1]``) into ``out`` (``d (d + 1) / 2``);
    ``symmetrise``: ``M + M^T``'s, its diagonal ``M``'s own, i.e. what
    ``sum_ab G_ab M_ab`` weighs a symmetric ``G``'s packed lower triangle with."""
    off = packed_offsets(M.shape[0])
    for i in range(M.shape[0]):
        row = out[off[i]:off[i + 1]]
        row[...] = M[i, :i + 1]
        if symmetrise:
            row[:i] += M[:i, i]
    return out


def packed_matrix(v, d):
    """The symmetric ``d x d`` matrix (a new C-ordered array) whose lower triangle by
    rows is packed ``v`` (:func:`pack_lower`)."""
    M = np.empty((d, d))
    off = packed_offsets(d)
    for i in range(d):
        M[i, :i + 1] = v[off[i]:off[i + 1]]
    fill_lower_from_upper(M.T)  # the lower triangle, up
    return M


def packed_statistics(X, cells, n_cells, sw, chunk_size, precision):
    """:func:`accumulate`'s statistics of in-memory ``X`` with the Gram matrices packed
    (:class:`PackedGrams`): one cell at a time in one ``d x d`` accumulator, so
    ``J d (d + 1) / 2`` numbers instead of ``J d^2``. The rows of each cell go
    through ``?syrk`` in the same blocks and order as :func:`accumulate`'s, so every
    entry equals its entry there (the same floating-point operations)."""
    X = np.asarray(X)
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    n, d = X.shape
    acc = StatsAccumulator(n_cells, d, precision, dense=False)
    chunks = []
    for lo in range(0, n, chunk_size):
        hi = min(lo + chunk_size, n)
        s = None if sw is None else sw[lo:hi]
        acc.count(X[lo:hi], cells[lo:hi], s)
        chunks.append((X[lo:hi], s, acc.cell_blocks(cells[lo:hi])))
    grams = PackedGrams(np.empty((n_cells, d * (d + 1) // 2)))
    G = np.empty((d, d))
    for j in range(n_cells):
        G.fill(0.0)
        for Xc, s, blocks in chunks:
            for k, rows in blocks:
                if k == j:
                    acc.add_block(j, Xc, rows, s, gram=G)
        acc.finish_cell(j, G)
        grams.pack(G, grams.values[j])
    del G
    sums = acc.sums_unshifted()
    check_finite(sums, grams.values)
    return SufficientStats(acc.weight_sums, acc.n_rows, sums, grams)


def block_statistics(X, cells, n_cells, s, precision="float64"):
    """Statistics of one block (a dask task); the accumulator casts and checks finiteness.

    With ``precision="float32"`` the block is shifted by its own centre, which
    :meth:`StatsAccumulator.result` undoes, so blocks with different centres merge.
    """
    X = np.asarray(X)
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    acc = StatsAccumulator(n_cells, X.shape[1], precision)
    acc.add(X, np.asarray(cells, dtype=np.intp), s)
    return acc.result()


class CellRows(NamedTuple):
    """The per-cell Gram matrices ``G_j = sum_{i in j} s_i x_i x_i^T`` of in-memory
    rows, kept as the rows (a reference to ``X``, not a copy) instead of ``J d x d``
    arrays: with many cells those arrays are larger than ``X`` itself (``J`` Gram
    matrices of ``d^2`` float64 each against ``n d``) and every combination of them
    reads all of them (``J d^2``). Here a weighted sum of the cells' Gram matrices is
    one ``?syrk`` pass over the rows (:func:`weighted_gram`) and the per-cell traces
    and diagonals are one product with the rows (:func:`cell_leverage`,
    :func:`cell_squares`, :func:`gram_diagonals`): ``O(n d^2)`` time and ``O(d^2)``
    memory, whatever ``J``.

    ``precision`` is that of the Gram products (float32: shifted ``ssyrk`` and float32
    projections, as :class:`StatsAccumulator`).
    """

    X: np.ndarray  # (n, d) float rows
    cells: np.ndarray  # (n,) cell index of each row
    s: np.ndarray | None  # (n,) sample weights, None for all ones
    n_cells: int
    precision: str
    memo: dict  # the last weighted Gram matrices by weights (:func:`weighted_gram`)

    @property
    def shape(self):
        d = self.X.shape[1]
        return (self.n_cells, d, d)

    def blocks(self):
        """``(lo, hi)`` row ranges of about :data:`WORK_ELEMS` entries."""
        n, d = self.X.shape
        step = max(1, WORK_ELEMS // max(d, 1))
        return ((lo, min(lo + step, n)) for lo in range(0, n, step))

    def weights(self, lo, hi, omega=None):
        """``s_i omega_{c(i)}`` of rows ``lo:hi`` (``omega`` None: ones)."""
        v = np.ones(hi - lo) if self.s is None else self.s[lo:hi]
        return v if omega is None else v * omega[self.cells[lo:hi]]

    def per_cell(self, values, k):
        """``sum_{i in j} s_i f_i`` per cell (J, k), ``f = values(lo, hi)`` the float64
        ``(hi - lo, k)`` values of a block of rows."""
        import scipy.sparse

        out = np.zeros((self.n_cells, k))
        for lo, hi in self.blocks():
            ind = scipy.sparse.csr_matrix(
                (self.weights(lo, hi), (self.cells[lo:hi], np.arange(hi - lo))),
                shape=(self.n_cells, hi - lo))
            out += ind @ values(lo, hi)
        return out


def row_statistics(X, cells, n_cells, sw, precision):
    """:class:`SufficientStats` of in-memory ``X`` whose ``grams`` are the rows
    (:class:`CellRows`): counts and first moments computed here (float64), no
    ``d x d`` array. Same conventions as :func:`accumulate`."""
    X = np.asarray(X)
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    cells = np.asarray(cells, dtype=np.intp)
    g = CellRows(X, cells, sw, int(n_cells), precision, {})
    n_rows = np.bincount(cells, minlength=n_cells).astype(np.int64)
    weight_sums = (n_rows.astype(np.float64) if sw is None
                   else np.bincount(cells, weights=sw, minlength=n_cells))
    sums = g.per_cell(lambda lo, hi: np.asarray(X[lo:hi], np.float64), X.shape[1])
    if not np.all(np.isfinite(sums)):
        raise ValueError("The 'X' parameter must be finite. Got NaN or inf values (or "
                         "values whose squares overflow).")
    return SufficientStats(weight_sums, n_rows, sums, g)


def weighted_gram(stats, omega, out=None):
    """``sum_j omega_j G_j`` (d x d, float64, raw: not centred); ``out``: written there
    (any ``d x d`` float64 array or view; with packed Gram matrices, without a
    ``d x d`` temporary)."""
    g = stats.grams
    if isinstance(g, PackedGrams):
        return g.combine(omega, out)
    if out is not None:
        out[...] = weighted_gram(stats, omega)
        return out
    if not isinstance(g, CellRows):
        return np.tensordot(omega, g, axes=1)
    # the fit asks again for weights it has seen (a scheme's weights, then the final
    # solve at them): the last two are kept when each is at most a quarter of X
    key = np.asarray(omega, dtype=np.float64).tobytes()
    if key in g.memo:
        return g.memo[key].copy()
    acc = StatsAccumulator(1, g.X.shape[1], g.precision)
    for lo, hi in g.blocks():
        acc.add(g.X[lo:hi], np.zeros(hi - lo, dtype=np.intp), g.weights(lo, hi, omega))
    G = acc.result().grams[0]
    if 4 * G.nbytes <= g.X.nbytes:
        if len(g.memo) >= 2:
            del g.memo[next(iter(g.memo))]
        g.memo[key] = G.copy()
    return G


def cell_squares(stats, shift, Q, q0=None):
    """``D[j, k] = sum_{i in j} s_i ((x_i - shift) . Q[:, k] + q0_k)^2`` (J, k)."""
    g = stats.grams
    q0 = np.zeros(Q.shape[1]) if q0 is None else q0
    if isinstance(g, CellRows):
        dt = np.dtype(g.precision)
        Qd, q0d = Q.astype(dt), q0.astype(dt)

        def squares(lo, hi):
            Z = np.subtract(g.X[lo:hi], shift, dtype=dt, casting="same_kind") @ Qd
            Z += q0d
            return (Z * Z).astype(np.float64)

        return g.per_cell(squares, Q.shape[1])
    out = np.empty((stats.n_cells, Q.shape[1]))
    cQ = shift @ Q
    for j in range(stats.n_cells):
        m, N = stats.sums[j], stats.weight_sums[j]
        # (G - m c^T - c m^T + N c c^T) Q with the rank-one terms applied to Q: no
        # d x d temporary but the packed cell's matrix
        G = g.matrix(g.values[j]) if isinstance(g, PackedGrams) else g[j]
        GcQ = G @ Q
        del G
        GcQ -= np.outer(m, cQ)
        GcQ += np.outer(shift, N * cQ - m @ Q)
        sc = m - N * shift
        out[j] = (np.einsum("ik,ik->k", GcQ, Q) + 2.0 * q0 * (sc @ Q) + N * q0**2)
    return out


def gram_diagonals(stats):
    """The diagonals of the cells' raw Gram matrices, ``sum_{i in j} s_i x_i^2`` (J, d)."""
    g = stats.grams
    if isinstance(g, PackedGrams):
        return g.values[:, g.offsets()[1:] - 1]
    if not isinstance(g, CellRows):
        return np.einsum("jii->ji", g)
    return g.per_cell(lambda lo, hi: np.asarray(g.X[lo:hi], dtype=np.float64) ** 2,
                      g.X.shape[1])


def noise_tol(dim, scale):
    """Eigenvalues below this are numerically zero (relative to ``scale``)."""
    return 10.0 * max(dim, 1) * EPS * scale


class Centred(NamedTuple):
    C: np.ndarray  # (d, d) weighted centred Gram
    rhs: np.ndarray  # (d, m) weighted centred cross-moment
    mu: np.ndarray  # (d,)
    tbar: np.ndarray  # (m,)
    V: float  # sum of v
    n: float  # sum of s
    tol: float  # numerical-zero threshold for eigenvalues of C


def centre_stats(stats, omega, T):
    N = stats.weight_sums
    wN = omega * N
    V = float(wN.sum())
    if not V > 0:
        raise ValueError(
            "The 'cell_weights' parameter must give a positive total weight "
            "sum_j omega_j N_j over cells with rows. Got 0 instead."
        )
    n = float(N.sum())
    mu = (omega @ stats.sums) / V
    tbar = (wN @ T) / V
    # S = weighted_gram, centred in place: d x d temporaries cost memory where a d x d
    # matrix is the size of X
    C = weighted_gram(stats, omega)
    s_diag = np.abs(np.diag(C)).max()
    symmetric_update(C, -V, mu)
    rhs = stats.sums.T @ (omega[:, None] * T) - V * np.outer(mu, tbar)
    scale = max(one_norm(C), s_diag)
    return Centred(C, rhs, mu, tbar, V, n, noise_tol(C.shape[0], scale))


def symmetric_update(C, alpha, a, b=None, block=256):
    """``C += alpha a a^T`` (or ``alpha (a b^T + b a^T)``) in place on symmetric
    ``C`` (d x d, float64): no ``d x d`` temporary, and the result is exactly
    symmetric. C-ordered ``C``: a BLAS rank-1 (rank-2) update of one triangle then a
    copy onto the other. Any other ``C`` (a view, e.g. a corner of a larger matrix,
    where BLAS would work on a copy): by blocks of rows, each entry
    ``alpha (a_i b_j + b_i a_j)`` added once (the two products summed in either
    order, so ``C`` stays symmetric)."""
    if not C.flags.c_contiguous:
        for lo in range(0, C.shape[0], block):
            hi = min(lo + block, C.shape[0])
            R = np.multiply.outer(a[lo:hi], a if b is None else b)
            if b is not None:
                R += np.multiply.outer(b[lo:hi], a)
            R *= alpha
            C[lo:hi] += R
        return C
    Ct = C.T  # Fortran-ordered view: BLAS updates C's memory
    if b is None:
        out = scipy.linalg.blas.dsyr(alpha, a, lower=1, a=Ct, overwrite_a=1)
    else:
        out = scipy.linalg.blas.dsyr2(alpha, a, b, lower=1, a=Ct, overwrite_a=1)
    if not np.shares_memory(out, C):  # not expected: f2py works in place on Ct
        C[...] = out.T
    return fill_lower_from_upper(C)  # lower of Ct = upper of C


def one_norm(A, block=256):
    """``max_j sum_i |A_ij|`` by blocks of rows (no ``|A|`` temporary of A's size)."""
    col = np.zeros(A.shape[1])
    for lo in range(0, A.shape[0], block):
        col += np.abs(A[lo:lo + block]).sum(axis=0)
    return float(col.max())


def fill_lower_from_upper(M, block=64):
    """Copy the strict upper triangle of square ``M`` onto its lower one, in place, by
    square tiles (the result of ``np.triu(M) + np.triu(M, 1).T`` without its
    temporaries). Tiles of 64 keep each transposed copy in cache (panels of 256 rows
    did not: about twice the time at d = 2,048)."""
    d = M.shape[0]
    for lo in range(0, d, block):
        hi = min(lo + block, d)
        D = M[lo:hi, lo:hi]
        D[...] = np.triu(D) + np.triu(D, 1).T
        for lo2 in range(hi, d, block):
            hi2 = min(lo2 + block, d)
            M[lo2:hi2, lo:hi] = M[lo:hi, lo2:hi2].T
    return M


def cell_leverage(stats, omega, cen, B):
    """``omega_j [N_j / V + tr(B G^c_j)]`` with ``G^c_j`` centred at ``mu``."""
    J, d = stats.n_cells, stats.n_features
    g = stats.grams
    if isinstance(g, CellRows):
        return omega * (stats.weight_sums / cen.V + _row_quadratic_sums(g, B, cen.mu))
    if isinstance(g, PackedGrams):  # sum_ab G_ab B_ab over the lower triangle
        tr_BG = g.weigh(B)
    else:
        # B is symmetric: its memory in either order is the same vector (no copy of a
        # Fortran-ordered B)
        tr_BG = g.reshape(J, d * d) @ B.ravel(order="K")
    Bmu = B @ cen.mu
    tr = tr_BG - 2.0 * (stats.sums @ Bmu) + stats.weight_sums * (cen.mu @ Bmu)
    return omega * (stats.weight_sums / cen.V + tr)


def _row_quadratic_sums(g, B, mu):
    """``sum_{i in j} s_i (x_i - mu)^T B (x_i - mu)`` per cell of :class:`CellRows`
    ``g``, a block of rows at a time. With many rows (``n >= 2 d``) through the
    Cholesky factor of ``B = L L^T``: ``||L^T (x_i - mu)||^2`` is a triangular
    product, half the flops of ``(x_i - mu)^T B``, for ``d^3 / 3`` once."""
    n, d = g.X.shape
    dt = np.dtype(g.precision)
    Lt = None
    if n >= 2 * d:
        try:
            Lt = np.linalg.cholesky(B).T.astype(dt)
        except np.linalg.LinAlgError:  # a pseudo-inverse (singular): the full product
            pass
    trmm = scipy.linalg.blas.get_blas_funcs("trmm", dtype=dt)
    Bd, tr = B.astype(dt), np.zeros(g.n_cells)
    for lo, hi in g.blocks():
        Y = np.subtract(g.X[lo:hi], mu, dtype=dt, casting="same_kind")
        if Lt is None:
            q = np.einsum("ij,ij->i", Y @ Bd, Y)
        else:
            Z = trmm(1.0, Lt, Y.T, side=0, lower=0)  # L^T Y^T (Y^T is Fortran-ordered)
            q = np.einsum("ij,ij->j", Z, Z)
        tr += np.bincount(g.cells[lo:hi], weights=q.astype(np.float64) * g.weights(lo, hi),
                          minlength=g.n_cells)
    return tr


def well_conditioned_cholesky(A, tol=None, overwrite=False):
    """Upper Cholesky factor of ``A``, or None when it fails or ``A`` is ill-conditioned.

    Ill-conditioned: the LAPACK estimate ``rcond * ||A||_1`` is not above ``tol``
    (default :func:`noise_tol` of ``A``'s size and 1-norm). ``overwrite``: factor in
    ``A``'s memory (then ``A`` is lost either way).
    """
    anorm = one_norm(A)
    if overwrite and A.flags.c_contiguous:
        A = A.T  # the same symmetric matrix, Fortran-ordered: LAPACK factors it in place
    try:
        c, _ = scipy.linalg.cho_factor(A, lower=False, check_finite=False,
                                       overwrite_a=overwrite)
    except np.linalg.LinAlgError:
        return None
    rcond, info = scipy.linalg.lapack.dpocon(c, anorm)
    if tol is None:
        tol = noise_tol(A.shape[0], anorm)
    return c if info == 0 and rcond * anorm > tol else None


def covariance_spectrum(X, stats):
    """Eigenvalues of the (sample-weighted) feature covariance.

    From the rows when they are in memory and fewer than the features (the
    ``n x n`` centred kernel over ``n``), else from the statistics (the ``d x d``
    covariance).
    """
    if X is not None and X.shape[1] > X.shape[0]:
        n = X.shape[0]
        Xc = X - X.mean(axis=0, dtype=np.float64)
        return np.linalg.eigvalsh(Xc @ Xc.T) / n
    N = stats.weight_sums.sum()
    mean = stats.sums.sum(axis=0) / N
    cov = weighted_gram(stats, np.ones(stats.n_cells))
    cov /= N
    symmetric_update(cov, -1.0, mean)  # - mean mean^T, no d x d temporary
    return np.linalg.eigvalsh(cov)


def all_constant(X, stats):
    """Every column of ``X`` constant; the exact check runs only when the statistics
    say every variance is at round-off level."""
    N = stats.weight_sums.sum()
    mean = stats.sums.sum(axis=0) / N
    var = gram_diagonals(stats).sum(axis=0) / N - mean**2
    if np.any(var > 1e-8 * (mean**2 + np.finfo(float).tiny)):
        return False
    return bool(np.all(np.ptp(X, axis=0) == 0))
