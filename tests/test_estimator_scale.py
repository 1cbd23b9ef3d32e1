"""LastLayerClassifier on out-of-core and dask input, and the two-unit weight path."""

import numpy as np
import pytest

from lastlayer import LastLayerClassifier
from lastlayer.outofcore import as_source
from lastlayer.solvers import sufficient_statistics
from lastlayer.weights import WeightingProblem, compute_weighting


def data(counts=(60, 150, 390), d=25, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    X = 0.5 * rng.standard_normal((len(counts), d))[y] + rng.standard_normal((y.size, d))
    perm = rng.permutation(y.size)
    return X[perm], y[perm]


@pytest.mark.parametrize("counts", [(60, 150, 390), (40, 60, 100)],
                         ids=["gcv", "streaming-loo"])  # n > 10 d uses GCV, else exact LOO
@pytest.mark.parametrize("weighting", ["optimal", "balanced", "optimal_theory"])
def test_source_fit_equals_in_memory(tmp_path, weighting, counts):
    X, y = data(counts)
    ref = LastLayerClassifier(loss="square", weighting=weighting).fit(X, y)
    np.save(tmp_path / "X.npy", X)
    for source in (as_source(X, y=y, block_rows=97), str(tmp_path / "X.npy")):
        got = LastLayerClassifier(loss="square", weighting=weighting).fit(source, y if isinstance(source, str)
                                                           else None)
        assert got.alpha_ == pytest.approx(ref.alpha_, rel=1e-12)
        np.testing.assert_allclose(got.coef_, ref.coef_, rtol=0, atol=1e-8)
        np.testing.assert_allclose(got.intercept_, ref.intercept_, rtol=0, atol=1e-8)
        np.testing.assert_allclose(got.class_weight_, ref.class_weight_, rtol=1e-8)
        assert got.n_features_in_ == X.shape[1]


def test_chunk_callable_and_shards_equal_in_memory(tmp_path):
    X, y = data(seed=1)
    ref = LastLayerClassifier(loss="square", weighting="optimal").fit(X, y)

    def chunks():
        for i in range(0, y.size, 128):
            yield X[i:i + 128], y[i:i + 128]

    got = LastLayerClassifier().fit(chunks)
    np.testing.assert_allclose(got.coef_, ref.coef_, atol=1e-8)
    shard_dir = tmp_path / "shards"
    shard_dir.mkdir()
    for k, i in enumerate(range(0, y.size, 200)):
        np.savez(shard_dir / f"part{k:02d}.npz", X=X[i:i + 200], y=y[i:i + 200])
    got = LastLayerClassifier().fit(str(shard_dir))
    np.testing.assert_allclose(got.coef_, ref.coef_, atol=1e-8)


def test_dask_fit_under_a_distributed_cluster():
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    X, y = data(seed=2)
    ref = LastLayerClassifier(loss="square", weighting="optimal").fit(X, y)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        Xd = da.from_array(X, chunks=(150, X.shape[1]))
        yd = da.from_array(y, chunks=150)
        got = LastLayerClassifier().fit(Xd, yd)
    np.testing.assert_allclose(got.coef_, ref.coef_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.intercept_, ref.intercept_, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got.predict(X), ref.predict(X))


def test_out_of_core_refuses_what_needs_rows():
    X, y = data(seed=3)
    src = as_source(X, y=y)
    for kw, match in (({"loss": "logistic"}, "loss='square' only"),
                      ({"weighting": "downsample"}, "need the rows in memory"),
                      ({"weighting": "tuned"}, "need the rows in memory")):
        with pytest.raises(ValueError, match=match):
            LastLayerClassifier(**kw).fit(src)
    with pytest.raises(ValueError, match="more rows than features"):
        LastLayerClassifier().fit(as_source(X[:20], y=y[:20]))


@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("counts", [(40, 160), (12, 188)])
def test_two_unit_path_matches_the_iteration(counts, alpha):
    # counts (12, 188) with d = 25 is infeasible: both paths must cap the same way.
    X, y = data(counts, seed=4)
    stats = sufficient_statistics(X, y, 2)
    from lastlayer.solvers import solve_ridge

    def leverage(w):
        sol = solve_ridge(stats, w, alpha, np.eye(2))
        return sol.cell_leverage, sol.df

    common = dict(unit_counts=np.asarray(counts, float), target=np.array([0.5, 0.5]),
                  unit_of_cell=np.arange(2), n_features=X.shape[1], alpha=alpha,
                  leverage=leverage)
    fast = compute_weighting("optimal", WeightingProblem(**common, stats=stats,
                                                         cell_targets=np.eye(2)))
    slow = compute_weighting("optimal", WeightingProblem(**common))
    assert fast.info["solver"] == "two_unit_path"
    np.testing.assert_allclose(fast.weights, slow.weights, rtol=1e-5)
    assert fast.feasible == slow.feasible
    assert fast.info["capped"] == slow.info["capped"]


def test_torch_statistics_device_matches_numpy():
    pytest.importorskip("torch")
    X, y = data(seed=5)
    ref = LastLayerClassifier(loss="square", weighting="optimal").fit(X, y)
    got = LastLayerClassifier(loss="square", weighting="optimal", device="cpu").fit(X, y)
    np.testing.assert_allclose(got.coef_, ref.coef_, atol=1e-9)


@pytest.mark.gpu
def test_cuda_statistics_match_numpy():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    X, y = data(seed=6)
    ref = LastLayerClassifier(loss="square", weighting="optimal").fit(X, y)
    got = LastLayerClassifier(loss="square", weighting="optimal", device="cuda").fit(X, y)
    np.testing.assert_allclose(got.coef_, ref.coef_, atol=1e-8)


def test_cuda_requested_without_cuda_is_a_clear_error():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    X, y = data(seed=7)
    with pytest.raises((RuntimeError, ValueError), match="(?i)cuda"):
        LastLayerClassifier(device="cuda").fit(X, y)
