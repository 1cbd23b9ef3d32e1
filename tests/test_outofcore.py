"""Tests of lastlayer.outofcore: every source kind against the in-memory statistics and
leave-one-out path of lastlayer.solvers, dask under a distributed LocalCluster, torch on
the CPU (and on CUDA when there is one), clear errors, and the memory bound."""

from __future__ import annotations

import sys
import tracemalloc

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from lastlayer.io import save_features
from lastlayer.outofcore import (
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
from lastlayer.solvers import ridge_loo_path, solve_ridge, sufficient_statistics


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    with threadpool_limits(limits=1):
        yield


N, D, J = 700, 9, 4
ALPHAS = np.logspace(-5, 1, 9)
OMEGA = np.array([0.5, 2.0, 1.0, 3.0])
TARGETS = np.eye(J)[:, :3] + 0.5


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = rng.integers(0, J, size=N)
    groups = rng.integers(0, 2, size=N)
    X = rng.normal(size=(J, D))[y] + rng.normal(size=(N, D)) + 1.5
    s = rng.uniform(0.1, 2.0, size=N)
    s[::50] = 0.0  # some rows out of the fit
    return X, y, groups, s


def rel_err(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / max(np.abs(b).max(), 1e-300))


def assert_stats_equal(st, ref, rtol=1e-8):
    for name, a, b in zip(ref._fields, st, ref):
        assert rel_err(a, b) < rtol, name
    np.testing.assert_array_equal(st.n_rows, ref.n_rows)


def make_source(kind, tmp_path, X, y, groups, block_rows=128):
    """A source of each kind holding the rows of X in order."""
    bounds = [0, 150, 151, 420, N]  # uneven shards / chunks, one with a single row
    if kind == "array":
        return as_source(X, y=y, groups=groups, block_rows=block_rows)
    if kind == "float32-memmap":
        np.save(tmp_path / "X32.npy", X.astype(np.float32))
        mm = np.load(tmp_path / "X32.npy", mmap_mode="r")
        return as_source(mm, y=y, groups=groups, block_rows=block_rows)
    if kind == "npy":
        np.save(tmp_path / "X.npy", X)
        np.save(tmp_path / "y.npy", y)
        np.save(tmp_path / "groups.npy", groups)
        return as_source(tmp_path / "X.npy", block_rows=block_rows)
    if kind == "npy-fortran":
        np.save(tmp_path / "feat.npy", np.asfortranarray(X))
        np.save(tmp_path / "labels.npy", y)
        return as_source(tmp_path / "feat.npy", y=tmp_path / "labels.npy", groups=groups,
                         block_rows=block_rows)
    if kind in ("npz-shards", "parquet-shards"):
        ext = kind.split("-")[0]
        if ext == "parquet":
            pytest.importorskip("pyarrow")
        shard_dir = tmp_path / "shards"
        shard_dir.mkdir()
        for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            save_features(shard_dir / f"part-{k:03d}.{ext}", X[lo:hi], y[lo:hi],
                          groups[lo:hi])
        return as_source(shard_dir, block_rows=block_rows)
    if kind == "dask":
        da = pytest.importorskip("dask.array")

        return as_source(da.from_array(X, chunks=(200, 4)), y=da.from_array(y, chunks=300),
                         groups=groups, block_rows=block_rows)
    if kind == "chunks":
        def chunks():
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                yield X[lo:hi], y[lo:hi], groups[lo:hi]

        return as_source(chunks, block_rows=block_rows)
    raise AssertionError(kind)


KINDS = ["array", "float32-memmap", "npy", "npy-fortran", "npz-shards", "parquet-shards",
         "dask", "chunks"]
SOURCE_CLASS = {"array": ArraySource, "float32-memmap": ArraySource, "npy": NpySource,
                "npy-fortran": NpySource, "npz-shards": ShardSource,
                "parquet-shards": ShardSource, "dask": DaskSource, "chunks": ChunkSource}


@pytest.mark.parametrize("kind", KINDS)
def test_every_source_gives_the_in_memory_statistics_and_loo(kind, data, tmp_path):
    X, y, groups, s = data
    src = make_source(kind, tmp_path, X, y, groups)
    assert isinstance(src, SOURCE_CLASS[kind])
    Xref = X.astype(np.float32).astype(np.float64) if kind == "float32-memmap" else X
    y_src, g_src = src.labels()
    np.testing.assert_array_equal(y_src, y)
    np.testing.assert_array_equal(g_src, groups)
    assert src.n_samples == N and src.n_features == D
    blocks = list(src.iter_blocks())
    assert all(b.dtype == np.float64 and b.flags.c_contiguous for b in blocks)
    assert max(b.shape[0] for b in blocks) <= 128
    np.testing.assert_array_equal(np.vstack(blocks), Xref)

    cells = y_src
    ref = sufficient_statistics(Xref, cells, J, s)
    stats = streaming_statistics(src, cells, J, s, progress=False)
    assert_stats_equal(stats, ref)

    loo_ref = ridge_loo_path(Xref, cells, OMEGA, TARGETS, ALPHAS, s)
    loo = streaming_loo_path(src, stats, cells, OMEGA, TARGETS, ALPHAS, s, progress=False)
    assert rel_err(loo["loo_mse"], loo_ref["loo_mse"]) < 1e-8
    np.testing.assert_allclose(loo["df"], loo_ref["df"], rtol=1e-10)
    np.testing.assert_array_equal(loo["alphas"], ALPHAS)


@pytest.mark.parametrize("weighted", [False, True])
def test_ridge_from_streamed_statistics_equals_in_memory(data, weighted):
    X, y, _, s = data
    s = s if weighted else None
    stats = streaming_statistics(as_source(X, block_rows=50), y, J, s, progress=False)
    for alpha in (0.0, 1e-3, 0.5):
        ref = solve_ridge(sufficient_statistics(X, y, J, s), OMEGA, alpha, TARGETS)
        sol = solve_ridge(stats, OMEGA, alpha, TARGETS)
        assert rel_err(sol.coef, ref.coef) < 1e-8
        assert rel_err(sol.intercept, ref.intercept) < 1e-8
        np.testing.assert_allclose(sol.cell_leverage, ref.cell_leverage, rtol=1e-8)


def test_loo_with_an_infinite_entry_and_unweighted_cells(data):
    """alpha = 0 with a cell of exactly d + 1 weighted rows: inf like ridge_loo_path."""
    X, y, _, _ = data
    keep = np.concatenate([np.flatnonzero(y != 3), np.flatnonzero(y == 3)[:1]])
    Xs, ys = X[keep], y[keep]
    omega = np.array([1.0, 0.0, 2.0, 1.0])  # cell 1 out of the fit
    stats = sufficient_statistics(Xs, ys, J, None)
    alphas = np.array([0.0, 1e-2])
    ref = ridge_loo_path(Xs, ys, omega, TARGETS, alphas)
    out = streaming_loo_path(Xs, stats, ys, omega, TARGETS, alphas, progress=False)
    np.testing.assert_array_equal(np.isinf(out["loo_mse"]), np.isinf(ref["loo_mse"]))
    fin = np.isfinite(ref["loo_mse"])
    assert rel_err(out["loo_mse"][fin], ref["loo_mse"][fin]) < 1e-8


def test_sources_are_re_iterable_and_row_order_is_fixed(data, tmp_path):
    X, y, groups, _ = data
    src = make_source("chunks", tmp_path, X, y, groups, block_rows=64)
    first = np.vstack(list(src.iter_blocks()))
    second = np.vstack(list(src.iter_blocks()))
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, X)


def test_progress_bar_goes_to_stderr(data, capsys):
    X, y, _, _ = data
    streaming_statistics(as_source(X, block_rows=100), y, J, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "statistics" in captured.err


# --------------------------------------------------------------------------------------
# Dask
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("processes", [False, True])
def test_dask_statistics_and_loo_under_a_distributed_cluster(data, processes):
    distributed = pytest.importorskip("distributed")
    da = pytest.importorskip("dask.array")

    X, y, _, s = data
    Xd = da.from_array(X, chunks=(90, 5))  # column chunks are merged per row chunk
    ref = sufficient_statistics(X, y, J, s)
    loo_ref = ridge_loo_path(X, y, OMEGA, TARGETS, ALPHAS, s)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        stats = dask_statistics(Xd, da.from_array(y, chunks=200), J,
                                da.from_array(s, chunks=250), split_every=3)
        loo = dask_loo_path(Xd, stats, y, OMEGA, TARGETS, ALPHAS, s)
        assert len(client.scheduler_info()["workers"]) == 2
    assert_stats_equal(stats, ref)
    assert rel_err(loo["loo_mse"], loo_ref["loo_mse"]) < 1e-8
    np.testing.assert_allclose(loo["df"], loo_ref["df"], rtol=1e-10)


def test_dask_statistics_on_the_local_scheduler(data):
    X, y, _, _ = data
    da = pytest.importorskip("dask.array")
    stats = dask_statistics(da.from_array(X, chunks=(333, -1)), y, J)
    assert_stats_equal(stats, sufficient_statistics(X, y, J))


def test_missing_dask_gives_the_install_hint(data, monkeypatch):
    X, y, _, _ = data
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    with pytest.raises(ImportError, match=r'pip install "lastlayer\[dask\]"'):
        dask_statistics(X, y, J)
    with pytest.raises(ImportError, match=r'pip install "lastlayer\[dask\]"'):
        dask_loo_path(X, sufficient_statistics(X, y, J), y, OMEGA, TARGETS, ALPHAS)


# --------------------------------------------------------------------------------------
# Torch
# --------------------------------------------------------------------------------------


def test_torch_statistics_on_cpu(data):
    torch = pytest.importorskip("torch")
    X, y, _, s = data
    ref = sufficient_statistics(X, y, J, s)
    assert_stats_equal(torch_statistics(X, y, J, s, device="cpu", block_rows=64), ref)
    assert_stats_equal(torch_statistics(torch.from_numpy(X), y, J, s, device="cpu"), ref)
    assert_stats_equal(streaming_statistics(torch.from_numpy(X), y, J, s, progress=False), ref)
    st32 = torch_statistics(X, y, J, None, device="cpu", dtype=torch.float32)
    assert rel_err(st32.grams, sufficient_statistics(X, y, J).grams) < 1e-5


def test_torch_statistics_without_cuda_is_a_clear_error(data):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is available")
    X, y, _, _ = data
    with pytest.raises(RuntimeError, match=r"needs a CUDA device.*device='cpu'"):
        torch_statistics(X, y, J)


def test_missing_torch_gives_the_install_hint(data, monkeypatch):
    X, y, _, _ = data
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r'pip install "lastlayer\[torch\]"'):
        torch_statistics(X, y, J, device="cpu")


@pytest.mark.gpu
def test_torch_statistics_on_cuda(data):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    X, y, _, s = data
    ref = sufficient_statistics(X, y, J, s)
    assert_stats_equal(torch_statistics(X, y, J, s, device="cuda", block_rows=100), ref)
    st32 = torch_statistics(X, y, J, s, device="cuda", dtype=torch.float32)
    assert rel_err(st32.grams, ref.grams) < 1e-5


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def test_shards_with_mismatched_feature_counts(data, tmp_path):
    X, y, _, _ = data
    for ext in ("npz", "parquet"):
        if ext == "parquet":
            pytest.importorskip("pyarrow")
        d = tmp_path / ext
        d.mkdir()
        save_features(d / f"a.{ext}", X[:100], y[:100])
        save_features(d / f"b.{ext}", X[100:200, :-1], y[100:200])
        with pytest.raises(ValueError, match="same number of features: 'a.* has 9 and 'b.* 8"):
            as_source(d)


def test_mixed_shard_kinds_and_empty_directory(data, tmp_path):
    X, y, _, _ = data
    with pytest.raises(ValueError, match="no X.npy and no .npz or .parquet shards"):
        as_source(tmp_path)
    save_features(tmp_path / "a.npz", X[:10], y[:10])
    pytest.importorskip("pyarrow")
    save_features(tmp_path / "b.parquet", X[10:20], y[10:20])
    with pytest.raises(ValueError, match="both .npz and .parquet"):
        as_source(tmp_path)


def test_chunk_generator_is_refused_with_a_hint(data):
    X, y, _, _ = data
    gen = ((X[i:i + 100], y[i:i + 100]) for i in range(0, N, 100))
    with pytest.raises(ValueError, match=r"iterated only once.*lambda"):
        as_source(gen)


def test_chunk_callable_that_is_not_re_iterable(data):
    X, y, _, _ = data
    it = iter([(X[i:i + 100], y[i:i + 100]) for i in range(0, N, 100)])
    src = as_source(lambda: it)
    with pytest.raises(ValueError, match="cannot be iterated twice|same rows every time"):
        y_src, _ = src.labels()
        streaming_statistics(src, y_src, J, progress=False)

    one_shot = iter([(X[i:i + 100], y[i:i + 100]) for i in range(0, N, 100)])
    src = as_source(lambda: (c for c in one_shot))  # fresh wrapper, exhausted data
    y_src, _ = src.labels()
    with pytest.raises(ValueError, match="yielded 0 rows, but it has 600 rows"):
        streaming_statistics(src, y_src, J, progress=False)


def test_label_length_mismatch(data, tmp_path):
    X, y, groups, _ = data
    with pytest.raises(ValueError, match=r"len\(y\) = 699 and 700 rows"):
        as_source(X, y=y[:-1])
    with pytest.raises(ValueError, match=r"len\(groups\) = 10 and 700 rows"):
        as_source(X, y=y, groups=groups[:10])
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(ValueError, match=r"len\(y\) = 5 and 700 rows"):
        as_source(tmp_path / "X.npy", y=y[:5])
    src = as_source(lambda: [(X[:10], y[:9])])
    with pytest.raises(ValueError, match=r"len\(y\) = 9 and 10 rows"):
        src.labels()
    with pytest.raises(ValueError, match="'cells' parameter must be a 1-D array of length 700"):
        streaming_statistics(as_source(X), y[:-3], J, progress=False)


def test_bad_values_and_shapes(data, tmp_path):
    X, y, _, _ = data
    Xbad = X.copy()
    Xbad[333, 2] = np.nan
    with pytest.raises(ValueError, match="must be finite. Got NaN or inf at row 333"):
        streaming_statistics(as_source(Xbad, block_rows=100), y, J, progress=False)
    src = as_source(lambda: [(X[:10], y[:10]), (X[10:20, :4], y[10:20])])
    with pytest.raises(ValueError, match="chunk 1 has 4 features, but the source has 9"):
        src.labels()
    with pytest.raises(ValueError, match="no labels"):
        as_source(X).labels()
    with pytest.raises(ValueError, match="'block_rows' parameter"):
        as_source(X, block_rows=0)
    with pytest.raises(ValueError, match="not used here"):
        as_source(lambda: [], y=y)
    with pytest.raises(ValueError, match="Unsupported feature file suffix"):
        (tmp_path / "f.csv").write_text("x,y\n1,0\n")
        as_source(tmp_path / "f.csv")
    wide = np.random.default_rng(1).normal(size=(20, 30))
    cells = np.arange(20) % 2
    st = sufficient_statistics(wide, cells, 2)
    with pytest.raises(ValueError, match="primal problem.*ridge_loo_path"):
        streaming_loo_path(wide, st, cells, np.ones(2), np.eye(2), ALPHAS, progress=False)


def test_feature_source_is_the_common_base():
    assert all(issubclass(c, FeatureSource) for c in SOURCE_CLASS.values())
    src = as_source(np.ones((3, 2)))
    assert as_source(src) is src


# --------------------------------------------------------------------------------------
# Memory bound
# --------------------------------------------------------------------------------------


def _peak_rss_reset():
    """Reset the kernel's peak-RSS counter (Linux); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError("no VmHWM")


def test_memory_stays_bounded_on_a_large_memory_mapped_file(tmp_path):
    """~200 MB of float64 features, 2 MiB blocks: Python-heap peak (tracemalloc) and,
    on Linux, the resident-set peak stay far below the file size."""
    n, d, block_rows = 200_000, 128, 2048
    path = tmp_path / "X.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n, d))
    rng = np.random.default_rng(0)
    for lo in range(0, n, 25_000):
        out[lo:lo + 25_000] = rng.standard_normal((25_000, d))
    out.flush()
    del out
    file_bytes = n * d * 8
    cells = np.arange(n) % 3
    stats_bytes = 3 * (d + 1) ** 2 * 8
    bound = 4 * block_rows * d * 8 + 2 * stats_bytes + 3 * d * d * 8 + (4 << 20)
    for src in (as_source(path, block_rows=block_rows),
                as_source(np.load(path, mmap_mode="r"), block_rows=block_rows)):
        rss_ok = _peak_rss_reset()
        rss0 = _peak_rss_bytes() if rss_ok else 0
        tracemalloc.start()
        try:
            stats = streaming_statistics(src, cells, 3, progress=False)
            streaming_loo_path(src, stats, cells, np.ones(3), np.eye(3), ALPHAS,
                               progress=False)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < bound < file_bytes / 4, (type(src).__name__, peak, bound)
        if rss_ok:
            grew = _peak_rss_bytes() - rss0
            assert grew < file_bytes / 4, (type(src).__name__, grew)
