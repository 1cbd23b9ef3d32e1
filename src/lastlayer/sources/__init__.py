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
