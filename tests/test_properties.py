"""Laws the estimator and the file readers must satisfy for all inputs (hypothesis).

Data are drawn as (seed, sizes) and generated with NumPy, so that examples are cheap
and shrink well; max_examples stays small so the file runs in seconds.
"""

import warnings

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lastlayer import LastLayerClassifier, LastLayerWarning  # noqa: E402
from lastlayer.io import load_features  # noqa: E402

FAST = settings(max_examples=12, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])


@st.composite
def problems(draw, max_classes=3):
    seed = draw(st.integers(0, 2**31 - 1))
    K = draw(st.integers(2, max_classes))
    d = draw(st.integers(2, 6))
    counts = [draw(st.integers(4, 25)) for _ in range(K)]
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal((K, d))
    y = np.repeat(np.arange(K), counts)
    X = mu[y] + rng.standard_normal((y.size, d))
    return X, y, rng


WEIGHTINGS = st.sampled_from(["none", "balanced", "optimal"])
ALPHAS = st.sampled_from(["auto", 0.3])


def fit(X, y, sw=None, loss="square", **params):
    # square loss unless told: the laws are the same for loss="auto", whose
    # cross-entropy candidates would make the examples slow
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LastLayerWarning)
        return LastLayerClassifier(loss=loss, **params).fit(X, y, sample_weight=sw)


def scores(clf, X):
    return np.atleast_2d(clf.decision_function(X).T).T


@FAST
@given(problems(), WEIGHTINGS, ALPHAS)
def test_row_permutation(prob, weighting, alpha):
    X, y, rng = prob
    p = rng.permutation(y.size)
    a = fit(X, y, weighting=weighting, alpha=alpha)
    b = fit(X[p], y[p], weighting=weighting, alpha=alpha)
    assert a.alpha_ == pytest.approx(b.alpha_, rel=1e-9)
    np.testing.assert_allclose(scores(a, X), scores(b, X), rtol=1e-7, atol=1e-9)


LABEL_SETS = st.one_of(
    st.lists(st.integers(-10**6, 10**6), min_size=3, max_size=3, unique=True),
    st.lists(st.text(min_size=1, max_size=5), min_size=3, max_size=3, unique=True))


@FAST
@given(problems(), LABEL_SETS, WEIGHTINGS, ALPHAS)
def test_relabelling_classes(prob, labels, weighting, alpha):
    X, y, _ = prob
    names = np.asarray(labels)[: y.max() + 1]
    a = fit(X, y, weighting=weighting, alpha=alpha)
    b = fit(X, names[y], weighting=weighting, alpha=alpha)
    np.testing.assert_array_equal(names[a.predict(X)], b.predict(X))
    order = np.argsort(names)  # b's classes_ are the sorted names
    np.testing.assert_allclose(b.class_weight_, a.class_weight_[order], rtol=1e-7)


@FAST
@given(problems(), st.floats(1e-3, 1e3), ALPHAS)
def test_scaling_all_loss_weights(prob, c, alpha):
    """Loss weights (explicit, or via sample_weight) times c: the objective's weights
    are normalised to mean one over samples and its n is the sum of sample weights,
    so alpha needs no change and the fit is the same."""
    X, y, rng = prob
    w = rng.uniform(0.5, 2.0, y.max() + 1)
    a = fit(X, y, weighting=w, alpha=alpha)
    b = fit(X, y, weighting=c * w, alpha=alpha)
    np.testing.assert_allclose(scores(a, X), scores(b, X), rtol=1e-7, atol=1e-9)
    # sample weights times c, at a fixed alpha (alpha="auto" reads sample weights as
    # frequencies: leave-one-out / GCV see c times the rows, so its alpha may move)
    sw = rng.uniform(0.5, 2.0, y.size)
    a = fit(X, y, weighting="balanced", alpha=0.3, sw=sw)
    b = fit(X, y, weighting="balanced", alpha=0.3, sw=c * sw)
    np.testing.assert_allclose(scores(a, X), scores(b, X), rtol=1e-6, atol=1e-9)


@FAST
@given(problems(), st.sampled_from(["square", "logistic"]), WEIGHTINGS)
def test_duplicated_row_equals_doubled_weight(prob, loss, weighting):
    X, y, rng = prob
    i = int(rng.integers(y.size))
    sw = np.ones(y.size)
    sw[i] = 2.0
    a = fit(X, y, weighting=weighting, alpha=0.3, loss=loss, sw=sw)
    b = fit(np.vstack([X, X[i]]), np.r_[y, y[i]], weighting=weighting, alpha=0.3, loss=loss)
    tol = 1e-9 if loss == "square" else 1e-4
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=tol, atol=tol)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=tol, atol=tol)


@FAST
@given(problems(), st.floats(-100, 100), WEIGHTINGS, ALPHAS)
def test_constant_shift_of_features(prob, shift, weighting, alpha):
    X, y, _ = prob
    a = fit(X, y, weighting=weighting, alpha=alpha)
    b = fit(X + shift, y, weighting=weighting, alpha=alpha)
    np.testing.assert_allclose(scores(a, X), scores(b, X + shift), rtol=1e-6, atol=1e-7)


@FAST
@given(problems(), st.floats(1e-3, 1e3), WEIGHTINGS)
def test_feature_scale_with_auto_alpha(prob, c, weighting):
    """The alpha grid scales with the features: X times c gives the same predictions
    and alpha times c^2."""
    X, y, _ = prob
    a = fit(X, y, weighting=weighting)
    b = fit(c * X, y, weighting=weighting)
    assert b.alpha_ == pytest.approx(c**2 * a.alpha_, rel=1e-6)
    np.testing.assert_allclose(scores(a, X), scores(b, c * X), rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------- readers

PREFIXES = {
    ".npz": [b"", b"PK\x03\x04"],
    ".npy": [b"", b"\x93NUMPY\x01\x00"],
    ".csv": [b"", b"x0,x1,y\n", b"x0,y\n1,"],
    ".parquet": [b"", b"PAR1"],
    ".safetensors": [b"", b"\x10\x00\x00\x00\x00\x00\x00\x00{\"X\":"],
}


@settings(max_examples=60, deadline=2000, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from(sorted(PREFIXES)), data=st.data(), noise=st.binary(max_size=400))
def test_readers_refuse_random_bytes_clearly(suffix, data, noise, tmp_path_factory):
    prefix = data.draw(st.sampled_from(PREFIXES[suffix]))
    folder = tmp_path_factory.mktemp("fuzz")
    path = folder / f"X{suffix}"
    path.write_bytes(prefix + noise)
    if suffix == ".npy":
        np.save(folder / "y.npy", np.zeros(3))
    try:
        fs = load_features(path)
    except (ValueError, OSError) as e:
        assert str(e), "an error must say what is wrong"
    except ImportError as e:
        assert "pip install" in str(e)
    else:  # random bytes that happen to parse must still be a valid feature set
        assert fs.X.ndim == 2 and len(fs.y) == fs.X.shape[0]


@FAST
@given(st.integers(0, 2**31 - 1), st.integers(3, 8), st.integers(1, 40),
       st.integers(0, 40), st.floats(0.05, 6.0), st.floats(-6.0, 0.5))
def test_multinomial_alo_hat_is_the_same_by_either_method(seed, K, d, extra, scale, log_alpha):
    # the class-block Woodbury form gives the explicit Hessian's hat blocks (or
    # declines, when its capacitance is too ill-conditioned to trust) for any rows
    # (at least as many as columns, as after the row space), weights (some zero),
    # probabilities (random, up to saturated) and alpha
    import scipy.linalg

    from lastlayer._core.logistic import _class_block_hat, _hat_blocks, augment, \
        logsumexp_rows

    rng = np.random.default_rng(seed)
    rows = d + 1 + extra
    Xa = augment(rng.uniform(0.1, 10) * rng.standard_normal((rows, d)))
    logits = Xa @ rng.normal(scale=scale, size=(d + 1, K))
    P = np.exp(logits - logsumexp_rows(logits)[:, None])
    r = np.where(rng.random(rows) < 0.9, rng.uniform(0.2, 3.0, rows), 0.0)
    E = scipy.linalg.null_space(np.ones((1, K)))
    Lr = np.stack([E.T @ (np.diag(p) - np.outer(p, p)) @ E for p in P])
    alpha, n = 10.0**log_alpha, rows
    fast = _class_block_hat(Xa, r, P, E, alpha, float(n))
    if fast is not None:
        ref = _hat_blocks(Xa, r, Lr, alpha, float(n))
        # on the worst of 4,000 such draws the two differ by 1.4e-7 and are within
        # 2.3e-7 of a 40-digit inverse (benchmarks/alo_hat_accuracy.py)
        np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-6 * np.abs(ref).max())
