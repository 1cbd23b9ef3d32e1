"""Out-of-core statistics in float32 (the shifted float32 accumulator of in-memory fits)
and the reused read buffers of the sources: float32 against float64 references computed
with NumPy, streamed against in-memory, dask against both, and blocks that stay correct
however they are consumed."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lastlayer.io import save_features
from lastlayer.outofcore import (
    as_source,
    dask_loo_path,
    dask_statistics,
    streaming_loo_path,
    streaming_statistics,
)
from lastlayer.solvers import ridge_loo_path, sufficient_statistics


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    with threadpool_limits(limits=1):
        yield


N, D, J, BLOCK = 3001, 8, 3, 500  # a last block of one row
OFFSET = 100.0  # features offset 100 times their spread
ALPHAS = np.logspace(-4, 1, 6)
OMEGA = np.array([0.5, 2.0, 1.0])
TARGETS = np.eye(J)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    cells = rng.integers(0, J, size=N)
    X = (OFFSET + rng.normal(size=(J, D))[cells] + rng.normal(size=(N, D)))
    s = rng.uniform(0.2, 2.0, size=N)
    return X.astype(np.float32), cells, s


@pytest.fixture(scope="module")
def npy_path(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("f32") / "X.npy"
    np.save(path, data[0])
    return path


def centred_grams_reference(X, cells, s):
    """Per-cell weighted centred Gram matrices, in float64 from the rows (NumPy)."""
    X = np.asarray(X, dtype=np.float64)
    out = []
    for j in range(J):
        Xj, sj = X[cells == j], s[cells == j]
        Xc = Xj - (sj @ Xj) / sj.sum()
        out.append((Xc * sj[:, None]).T @ Xc)
    return np.array(out)


def centred_grams(stats):
    """The same from the statistics (the centring every ridge kernel does)."""
    mean = stats.sums / stats.weight_sums[:, None]
    return stats.grams - stats.weight_sums[:, None, None] * np.einsum("ji,jk->jik", mean,
                                                                       mean)


def rel_err(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def test_float32_streamed_statistics_match_float64_on_offset_features(data, npy_path):
    X, cells, s = data
    src = as_source(npy_path, block_rows=BLOCK)
    st32 = streaming_statistics(src, cells, J, s, progress=False, precision="float32")
    st64 = streaming_statistics(src, cells, J, s, progress=False, precision="float64")
    ref = centred_grams_reference(X, cells, s)
    # relative to the spread of the features, not their offset (100x larger)
    assert rel_err(centred_grams(st64), ref) < 1e-10
    assert rel_err(centred_grams(st32), ref) < 1e-5
    assert rel_err(st32.sums, st64.sums) < 1e-6
    np.testing.assert_array_equal(st32.n_rows, np.bincount(cells, minlength=J))
    np.testing.assert_allclose(st32.weight_sums, np.bincount(cells, s, minlength=J),
                               rtol=1e-12)


def test_auto_is_float32_for_float32_files_and_float64_otherwise(data, npy_path, tmp_path):
    X, cells, _ = data
    src = as_source(npy_path, block_rows=BLOCK)
    auto = streaming_statistics(src, cells, J, progress=False, precision="auto")
    f32 = streaming_statistics(src, cells, J, progress=False, precision="float32")
    f64 = streaming_statistics(src, cells, J, progress=False)
    np.testing.assert_array_equal(auto.grams, f32.grams)
    assert not np.array_equal(auto.grams, f64.grams)
    path64 = tmp_path / "X64.npy"
    np.save(path64, X.astype(np.float64))
    auto64 = streaming_statistics(as_source(path64, block_rows=BLOCK), cells, J,
                                  progress=False, precision="auto")
    np.testing.assert_array_equal(auto64.grams, f64.grams)


def test_float32_streamed_equals_in_memory_float32(data, npy_path):
    X, cells, s = data
    mem = sufficient_statistics(X, cells, J, s, precision="float32")
    # one block of all rows: the same centre and products as in memory
    one = streaming_statistics(as_source(npy_path, block_rows=N), cells, J, s,
                               progress=False, precision="float32")
    for a, b in zip(one, mem):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=0)
    # blocks of 500 rows: another centre (the first block's mean), round-off only
    st = streaming_statistics(as_source(npy_path, block_rows=BLOCK), cells, J, s,
                              progress=False, precision="float32")
    assert rel_err(centred_grams(st), centred_grams(mem)) < 1e-5
    assert rel_err(st.grams, mem.grams) < 1e-7  # raw: the offset makes it smaller
    assert rel_err(st.sums, mem.sums) < 1e-7


def test_float32_of_a_float64_source_and_a_memmap(data, tmp_path):
    X, cells, s = data
    path = tmp_path / "X64.npy"
    np.save(path, X.astype(np.float64))
    ref = centred_grams_reference(X, cells, s)
    for obj in (path, np.load(path, mmap_mode="r"), X.astype(np.float64)):
        st = streaming_statistics(as_source(obj, block_rows=BLOCK), cells, J, s,
                                  progress=False, precision="float32")
        assert rel_err(centred_grams(st), ref) < 1e-5


def test_float32_streaming_loo_matches_float64_and_in_memory(data, npy_path):
    X, cells, s = data
    src = as_source(npy_path, block_rows=BLOCK)
    st64 = streaming_statistics(src, cells, J, s, progress=False)
    st32 = streaming_statistics(src, cells, J, s, progress=False, precision="float32")
    ref = ridge_loo_path(X.astype(np.float64), cells, OMEGA, TARGETS, ALPHAS,
                         sample_weight=s)["loo_mse"]
    args = (cells, OMEGA, TARGETS, ALPHAS, s)
    loo64 = streaming_loo_path(src, st64, *args, progress=False)["loo_mse"]
    loo32 = streaming_loo_path(src, st32, *args, progress=False,
                               precision="float32")["loo_mse"]
    np.testing.assert_allclose(loo64, ref, rtol=1e-9)
    np.testing.assert_allclose(loo32, ref, rtol=1e-5)


def test_precision_is_checked(data, npy_path):
    _, cells, _ = data
    with pytest.raises(ValueError, match="'precision' parameter must be one of"):
        streaming_statistics(npy_path, cells, J, progress=False, precision="float16")


# ------------------------------------------------------------------------------ dask


def test_dask_float32_matches_float64_reference_and_streamed(data, npy_path):
    da = pytest.importorskip("dask.array")
    X, cells, s = data
    dX = da.from_array(X, chunks=(BLOCK, -1))
    auto = dask_statistics(dX, cells, J, s, precision="auto")
    f32 = dask_statistics(dX, cells, J, s, precision="float32")
    f64 = dask_statistics(dX, cells, J, s)
    np.testing.assert_array_equal(auto.grams, f32.grams)
    ref = centred_grams_reference(X, cells, s)
    assert rel_err(centred_grams(f64), ref) < 1e-10
    assert rel_err(centred_grams(f32), ref) < 1e-5
    streamed = streaming_statistics(as_source(npy_path, block_rows=BLOCK), cells, J, s,
                                    progress=False, precision="float32")
    # each chunk has its own centre (the streamed pass: the first block's for all)
    assert rel_err(centred_grams(f32), centred_grams(streamed)) < 1e-5
    loo_ref = ridge_loo_path(X.astype(np.float64), cells, OMEGA, TARGETS, ALPHAS,
                             sample_weight=s)["loo_mse"]
    loo = dask_loo_path(dX, f32, cells, OMEGA, TARGETS, ALPHAS, s,
                        precision="auto")["loo_mse"]
    np.testing.assert_allclose(loo, loo_ref, rtol=1e-5)


# ----------------------------------------------------------------------- read buffers


def test_reused_npy_buffer_is_one_buffer_and_each_block_is_right_when_used(data, npy_path):
    X = data[0]
    src = as_source(npy_path, block_rows=BLOCK)
    prev, seen = None, 0
    for blk in src.iter_blocks(None, reuse=True):
        assert blk.dtype == np.float32 and blk.flags.c_contiguous
        np.testing.assert_array_equal(blk, X[seen:seen + blk.shape[0]])
        if prev is not None:
            assert np.shares_memory(blk, prev)  # the same buffer, read again
        prev, seen = blk, seen + blk.shape[0]
    assert seen == N


def test_blocks_kept_by_the_consumer_are_valid_without_reuse(data, npy_path):
    X = data[0]
    src = as_source(npy_path, block_rows=BLOCK)
    kept = list(src.iter_blocks())  # the default: fresh float64 blocks
    assert all(b.dtype == np.float64 for b in kept)
    np.testing.assert_array_equal(np.concatenate(kept), X.astype(np.float64))
    kept32 = list(src.iter_blocks(None))
    assert not any(np.shares_memory(a, b) for a, b in zip(kept32, kept32[1:]))
    np.testing.assert_array_equal(np.concatenate(kept32), X)
    # kept blocks from a reused buffer are overwritten (documented): copy to keep them
    reused = list(src.iter_blocks(None, reuse=True))
    assert np.shares_memory(reused[0], reused[1])
    copies = [b.copy() for b in src.iter_blocks(None, reuse=True)]
    np.testing.assert_array_equal(np.concatenate(copies), X)


def test_reused_conversion_buffer_of_shards(data, tmp_path):
    X, cells, s = data
    for k, lo in enumerate(range(0, N, 1200)):  # shards of 1200 rows, blocks of 500
        save_features(tmp_path / f"part{k}.npz", X[lo:lo + 1200], cells[lo:lo + 1200])
    src = as_source(tmp_path, block_rows=BLOCK)
    got = [b.copy() for b in src.iter_blocks(np.float64, reuse=True)]
    assert [b.shape[0] for b in got] == [500, 500, 200] * 2 + [500, 101]
    np.testing.assert_array_equal(np.concatenate(got), X.astype(np.float64))
    st = streaming_statistics(src, cells, J, s, progress=False, precision="auto")
    assert rel_err(centred_grams(st), centred_grams_reference(X, cells, s)) < 1e-5


def test_streamed_statistics_through_reused_buffers_equal_in_memory(data, npy_path):
    X, cells, s = data
    st = streaming_statistics(as_source(npy_path, block_rows=BLOCK), cells, J, s,
                              progress=False)
    ref = sufficient_statistics(X.astype(np.float64), cells, J, s)
    for a, b in zip(st, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)


def test_reused_buffer_still_names_bad_rows_and_truncation(data, tmp_path):
    X = data[0].copy()
    X[1234, 3] = np.nan
    path = tmp_path / "bad.npy"
    np.save(path, X)
    with pytest.raises(ValueError, match="NaN or inf at row 1234"):
        for _ in as_source(path, block_rows=BLOCK).iter_blocks(None, reuse=True):
            pass
    np.save(path, data[0])
    src = as_source(path, block_rows=BLOCK)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 10)
    with pytest.raises(ValueError, match="is truncated"):
        for _ in src.iter_blocks(None, reuse=True):
            pass


def test_big_endian_float32_file_gives_native_float32_blocks(data, tmp_path):
    X, cells, s = data
    path = tmp_path / "be.npy"
    np.save(path, X.astype(">f4"))
    src = as_source(path, block_rows=BLOCK)
    blocks = [b.copy() for b in src.iter_blocks(None, reuse=True)]
    assert all(b.dtype == np.dtype("=f4") for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), X)
    st = streaming_statistics(src, cells, J, s, progress=False, precision="auto")
    assert rel_err(centred_grams(st), centred_grams_reference(X, cells, s)) < 1e-5


def test_chunk_source_dtype_peek_is_not_a_pass(data):
    X, cells, _ = data

    def chunks():
        for lo in range(0, N, 1000):
            yield X[lo:lo + 1000], cells[lo:lo + 1000]

    src = as_source(chunks, block_rows=BLOCK)
    assert src.dtype == np.float32
    st = streaming_statistics(src, cells, J, progress=False, precision="auto")
    ref = centred_grams_reference(X, cells, np.ones(N))
    assert rel_err(centred_grams(st), ref) < 1e-5


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_shard_dtype_from_the_headers(data, tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    X, cells, _ = data
    for dtype in (np.float32, np.float64):
        folder = tmp_path / np.dtype(dtype).name
        folder.mkdir()
        save_features(folder / f"a{suffix}", X[:100].astype(dtype), cells[:100])
        save_features(folder / f"b{suffix}", X[100:200].astype(dtype), cells[100:200])
        src = as_source(folder)
        assert src._dtype == dtype  # known before any block is read
        assert next(iter(src.iter_blocks(None))).dtype == dtype


def test_estimator_float32_npy_fit_matches_the_in_memory_float32_fit(tmp_path):
    # LastLayerClassifier on a float32 .npy file resolves precision "auto" to float32
    # (the shifted accumulator) and fits what the in-memory float32 fit does, to
    # float32 accuracy; the float64 file keeps float64 statistics.
    from lastlayer import LastLayerClassifier

    rng = np.random.default_rng(11)
    n, d = 3000, 24
    y = (rng.random(n) < 0.2).astype(int)
    X = (rng.normal(size=(n, d)) + 0.8 * y[:, None] + 50.0).astype(np.float32)
    path = tmp_path / "x32.npy"
    np.save(path, X)
    kw = {"weighting": "balanced", "loss": "square"}
    mem = LastLayerClassifier(**kw).fit(X, y)
    ooc = LastLayerClassifier(**kw).fit(str(path), y)
    assert mem.plan_["precision"] == ooc.plan_["precision"] == "float32"
    assert ooc.plan_["statistics"] == "stream"
    assert ooc.alpha_ == pytest.approx(mem.alpha_, rel=1e-6)  # the same grid point
    np.testing.assert_allclose(ooc.coef_, mem.coef_, rtol=1e-4, atol=1e-6 * np.abs(mem.coef_).max())
    path64 = tmp_path / "x64.npy"
    np.save(path64, X.astype(np.float64))
    assert LastLayerClassifier(**kw).fit(str(path64), y).plan_["precision"] == "float64"


def test_float32_file_with_overflowing_squares_names_file_row_and_column(tmp_path):
    # float32 statistics cannot hold 3e20^2; the error names the file, the row of the
    # source (not of the block) and the column, as the in-memory check does
    from lastlayer.sources import as_source, streaming_statistics

    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 8)).astype(np.float32)
    X[123, 5] = 3e20
    path = tmp_path / "big.npy"
    np.save(path, X)
    cells = np.arange(300) % 2
    with pytest.raises(ValueError, match=r"big\.npy' must have entries of magnitude.*"
                                         r"3e\+20 at row 123, column 5"):
        streaming_statistics(as_source(str(path), block_rows=50), cells, 2,
                             progress=False, precision="float32")
    # float64 statistics hold it
    streaming_statistics(str(path), cells, 2, progress=False, precision="float64")
