"""Data sources: features that need not fit in memory, and where their statistics are computed.

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
A :class:`FeatureSource` yields float blocks of at most ``block_rows`` rows in a
fixed row order, as many times as asked (float64 by default; float32 or float64 as
stored with ``iter_blocks(None)``; with ``reuse=True`` a block may live in a buffer
that the next one overwrites); labels (small) are held in memory.
:func:`as_source` builds one from a NumPy array or memory map, a ``.npy`` file (read
block by block with plain file reads: no page of it stays mapped), a directory of
``.npz`` or ``.parquet`` shards (the layouts of :func:`lastlayer.io.load_features`,
read one shard at a time), a dask array, or a zero-argument callable returning an
iterable of ``(X, y)`` / ``(X, y, groups)`` chunks.

Precision
---------
``precision="float32"`` (``"auto"``: when the source stores float32) takes the Gram
products in float32 (``ssyrk``, twice the flops per second of ``dsyrk``) on blocks
shifted by a fixed centre and accumulates them in float64, as the in-memory float32
statistics (:func:`lastlayer.solvers.sufficient_statistics`): accurate to about
``1e-7`` relative to the spread of the features, whatever their offset. The
default, ``"float64"``, gives the numbers of earlier versions. Either way the
blocks are used as stored: no float64 copy of a float32 block is made.

Memory bound
------------
With ``B = block_rows``, ``d`` features, ``J`` cells, ``r <= d`` kept eigenvalues
and ``itemsize`` the bytes of one stored entry, :func:`streaming_statistics` holds
at most

* one block as stored (``B d itemsize`` bytes), read into one reused buffer for
  ``.npy`` files; memory maps and in-memory arrays are read in place; shard
  sources hold one whole shard as read (plus one reused ``8 B d``-byte block when
  the shard holds integers);
* a fixed workspace of about ``4 * 16 MiB`` (the block is converted to float64, or
  shifted in float32, in sub-blocks of ``16 MiB``: ``2**21 / d`` or ``2**22 / d``
  rows);
* the statistics themselves, ``8 J (d + 1)^2`` bytes (plus a progress bar),

i.e. ``B d itemsize + 64 MiB + 8 J (d + 1)^2`` bytes, independent of the number of
rows. :func:`streaming_loo_path` adds one ``d x d`` eigendecomposition (``3 * 8
d^2`` bytes: the centred Gram, its eigenvectors, LAPACK workspace) and
``O(n_alphas)`` accumulators. Example: ``B = 65536``, ``d = 2048``, ``J = 10``:
512 MiB per float32 block (1 GiB float64), 64 MiB workspace, 336 MiB of
statistics, 100 MiB for the eigendecomposition -- take ``block_rows=8192`` for a
64 MiB float32 block.

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

from ._dask import dask_loo_path, dask_statistics
from ._sources import (
    DEFAULT_BLOCK_ROWS,
    ArraySource,
    ChunkSource,
    DaskSource,
    FeatureSource,
    NpySource,
    ShardSource,
    as_source,
    is_dask_array,
    is_out_of_core,
)
from ._streaming import streaming_loo_path, streaming_statistics
from ._torch import torch_statistics

__all__ = [
    "DEFAULT_BLOCK_ROWS",
    "FeatureSource",
    "ArraySource",
    "NpySource",
    "ShardSource",
    "DaskSource",
    "ChunkSource",
    "as_source",
    "is_dask_array",
    "is_out_of_core",
    "streaming_statistics",
    "streaming_loo_path",
    "dask_statistics",
    "dask_loo_path",
    "torch_statistics",
]
