"""Out-of-core fitting: the names of :mod:`lastlayer.sources`, at their former import path.

Everything here lives in :mod:`lastlayer.sources` (feature sources, streaming, dask
and torch statistics, exact leave-one-out in one more pass); this module keeps the
imports of earlier releases working.
"""

from .sources import (
    DEFAULT_BLOCK_ROWS,
    ArraySource,
    ChunkSource,
    DaskSource,
    FeatureSource,
    NpySource,
    ShardSource,
    as_source,
    dask_loo_path,
    dask_statistics,
    streaming_loo_path,
    streaming_statistics,
    torch_statistics,
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
