"""Weighting registry: each scheme against its definition and independent references."""

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from lastlayer.theory import optimal_class_weights
from lastlayer.weights import WEIGHTINGS, WeightingProblem, compute_weighting


def dense_leverage_oracle(X, labels, alpha):
    """Per-unit leverage sums from the explicit weighted hat matrix (no solver code)."""
    n, d = X.shape
    Xt = np.c_[X, np.ones(n)]
    R = np.eye(d + 1)
    R[-1, -1] = 0.0

    def leverage(cell_w):
        w = cell_w[labels]
        A = Xt.T @ (w[:, None] * Xt) + alpha * n * R
        H = (w[:, None] * Xt) @ np.linalg.pinv(A) @ Xt.T
        h = np.diag(H)
        return np.bincount(labels, weights=h, minlength=cell_w.size), float(h.sum())

    return leverage


def make_problem(counts, d=20, alpha=0.0, seed=0, target=None, sep=1.0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(counts)), counts)
    means = sep * rng.standard_normal((len(counts), d))
    X = means[labels] + rng.standard_normal((labels.size, d))
    K = len(counts)
    tgt = np.full(K, 1 / K) if target is None else np.asarray(target, float)
    prob = WeightingProblem(unit_counts=np.asarray(counts, float), target=tgt,
                            unit_of_cell=np.arange(K), n_features=d, alpha=alpha,
                            leverage=dense_leverage_oracle(X, labels, alpha), X=X,
                            unit_labels=labels, random_state=np.random.default_rng(seed))
    return prob, X, labels


@pytest.mark.parametrize("name", sorted(set(WEIGHTINGS) - {"tuned", "optimal_logistic"}))
def test_every_scheme_has_mean_one_over_samples(name):
    prob, *_ = make_problem([20, 50, 130])
    w = compute_weighting(name, prob).weights
    assert np.all(np.isfinite(w)) and np.all(w > 0)
    assert np.isclose(prob.unit_counts @ w, prob.unit_counts.sum())


def test_balanced_matches_scikit_learn():
    counts = [7, 30, 63]
    prob, _, labels = make_problem(counts)
    ours = compute_weighting("balanced", prob).weights
    ref = compute_class_weight("balanced", classes=np.arange(3), y=labels)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_sqrt_and_effective_number_definitions():
    counts = np.array([10, 40, 150])
    prob, *_ = make_problem(counts)
    w = compute_weighting("sqrt", prob).weights
    np.testing.assert_allclose(w / w[-1], np.sqrt(counts[-1] / counts), rtol=1e-12)
    beta = 0.99
    w = compute_weighting("effective_number", prob, beta=beta).weights
    eff = (1 - beta**counts) / (1 - beta)
    np.testing.assert_allclose(w / w[-1], eff[-1] / eff, rtol=1e-12)
    # beta -> 1 recovers the ratio of priors, beta = 0 no weighting.
    w1 = compute_weighting("effective_number", prob, beta=1 - 1e-9).weights
    np.testing.assert_allclose(w1 / w1[-1], counts[-1] / counts, rtol=1e-5)
    w0 = compute_weighting("effective_number", prob, beta=0.0).weights
    np.testing.assert_allclose(w0, 1.0)


def test_upsample_equals_integer_repeats():
    counts = [10, 30, 90]
    prob, *_ = make_problem(counts)
    wt = compute_weighting("upsample", prob)
    assert wt.info["repeats"] == [9, 3, 1]


def test_downsample_subsets_are_balanced_and_distinct():
    counts = [12, 40, 80]
    prob, _, labels = make_problem(counts, seed=3)
    wt = compute_weighting("downsample", prob, n_subsets=5)
    assert len(wt.subsets) == 5
    for rows in wt.subsets:
        assert np.array_equal(np.bincount(labels[rows], minlength=3), [12, 12, 12])
        assert np.unique(rows).size == rows.size
    assert not all(np.array_equal(wt.subsets[0], r) for r in wt.subsets[1:])


def test_target_mixture_importance_weights():
    counts = np.array([30, 70])
    target = np.array([0.8, 0.2])
    prob, *_ = make_problem(counts, target=target)
    w = compute_weighting("balanced", prob).weights
    np.testing.assert_allclose(w[0] / w[1], (0.8 / 30) / (0.2 / 70))


@pytest.mark.parametrize("alpha", [0.0, 0.05])
@pytest.mark.parametrize("counts", [[30, 170], [25, 60, 115]])
def test_optimal_equalises_leverage_shares(counts, alpha):
    prob, X, labels = make_problem(counts, d=15, alpha=alpha, seed=1)
    wt = compute_weighting("optimal", prob)
    assert wt.feasible
    lev, df = prob.leverage(wt.weights)
    np.testing.assert_allclose(lev / df, np.full(len(counts), 1 / len(counts)), atol=1e-5)
    assert np.isclose(prob.unit_counts @ wt.weights, sum(counts))


def test_optimal_follows_a_target_mixture():
    counts = [40, 160]
    target = [0.7, 0.3]
    prob, *_ = make_problem(counts, d=20, target=target, seed=2)
    wt = compute_weighting("optimal", prob)
    lev, df = prob.leverage(wt.weights)
    np.testing.assert_allclose(lev / df, target, atol=1e-5)


def test_optimal_close_to_closed_form_on_isotropic_data():
    # Large isotropic Gaussian classes: data-driven weights approach docs/theory.md section 4.
    counts = [300, 1700]
    d = 120
    prob, *_ = make_problem(counts, d=d, sep=0.3, seed=4)
    data = compute_weighting("optimal", prob).weights
    theory = optimal_class_weights(counts, d).weights
    assert abs(np.log(data[0] / data[1]) - np.log(theory[0] / theory[1])) < 0.05
    # and both are far from the ratio of priors (1700 / 300 = 5.67)
    assert data[0] / data[1] > 1.1 * (1700 / 300)


def test_optimal_infeasible_is_finite_and_capped():
    counts = [8, 192]  # d + 1 = 21 > 2 * 8: no finite weights equalise
    prob, *_ = make_problem(counts, d=20, seed=5)
    wt = compute_weighting("optimal", prob, max_leverage=0.9)
    assert not wt.feasible
    assert np.all(np.isfinite(wt.weights)) and wt.weights[0] > wt.weights[1]
    lev, _ = prob.leverage(wt.weights)
    assert lev[0] / counts[0] <= 0.9 + 1e-3
    assert "unit(s) [0]" in wt.info["message"]


def test_optimal_theory_dimensions():
    counts = [40, 160]
    prob, X, _ = make_problem(counts, d=30, seed=6)
    for dim in ["pca99", "participation_ratio", "d", "df", 12.5]:
        wt = compute_weighting("optimal_theory", prob, dim=dim)
        assert np.all(np.isfinite(wt.weights))
    wt = compute_weighting("optimal_theory", prob, dim=12.5)
    ref = optimal_class_weights(counts, 12.5).weights
    np.testing.assert_allclose(wt.weights, ref)
    with pytest.raises(ValueError, match="'dim' parameter"):
        compute_weighting("optimal_theory", prob, dim="bogus")


def test_tuned_maximises_the_score():
    prob, *_ = make_problem([20, 80])
    # A score that peaks at the ratio of priors (power 1).
    prob.score = lambda w, a: -abs(np.log(w[0] / w[1]) - np.log(4.0))
    wt = compute_weighting("tuned", prob)
    assert wt.info["power"] == 1.0
    assert np.isclose(wt.weights[0] / wt.weights[1], 4.0)


def test_unknown_scheme_is_named():
    prob, *_ = make_problem([10, 20])
    with pytest.raises(ValueError, match="'weighting' parameter must be one of .*Got 'bogus'"):
        compute_weighting("bogus", prob)


def test_optimal_logistic_uses_the_cross_entropy_theory():
    # two isotropic Gaussian classes, antipodal means of norm 1.2, 10% minority
    from lastlayer.solvers import sufficient_statistics
    from lastlayer.theory import estimate_mean_norm, logistic_class_weights

    rng = np.random.default_rng(5)
    n, d = 4000, 40
    y = (rng.random(n) < 0.9).astype(int)  # class 0 is the minority
    mu = rng.standard_normal(d)
    mu *= 1.2 / np.linalg.norm(mu)
    X = np.where(y[:, None] == 0, mu, -mu) + rng.standard_normal((n, d))
    counts = np.bincount(y).astype(float)
    prob = WeightingProblem(unit_counts=counts, target=np.full(2, 0.5),
                            unit_of_cell=np.arange(2), n_features=d,
                            stats=sufficient_statistics(X, y, 2),
                            spectrum=np.linalg.eigvalsh(np.cov(X.T)))
    wt = compute_weighting("optimal_logistic", prob, dim="d")
    assert wt.weights @ counts == pytest.approx(n)  # mean one over samples
    # the separation read off the statistics is the row-based estimator's
    assert wt.info["mean_norm"] == pytest.approx(estimate_mean_norm(X, y, positive=0), rel=1e-9)
    assert wt.info["mean_norm"] == pytest.approx(1.2, rel=0.05)
    ref = logistic_class_weights(counts.astype(int), d, wt.info["mean_norm"], objective="worst")
    assert wt.weights[0] / wt.weights[1] == pytest.approx(ref.weight_ratio, rel=1e-9)
    # and it over-weights the minority beyond the ratio of priors, as the theory says
    assert ref.weight_ratio > counts[1] / counts[0]


def test_power_family_contains_balanced_and_sqrt():
    prob, *_ = make_problem([20, 50, 130])
    for power, name in ((1.0, "balanced"), (0.5, "sqrt"), (0.0, "none")):
        np.testing.assert_allclose(compute_weighting("power", prob, power=power).weights,
                                   compute_weighting(name, prob).weights, rtol=1e-12)
    w = compute_weighting("power", prob).weights  # default 1.5: beyond the ratio of priors
    ratio = compute_weighting("balanced", prob).weights
    assert w[0] / w[2] == pytest.approx((ratio[0] / ratio[2]) ** 1.5)


def _hat_shares(X, y, class_weight, alpha):
    """Independent reference: per-class sums of the weighted ridge hat diagonal
    (intercept unpenalised, weights at mean one over rows) over their total."""
    n, d = X.shape
    w = np.asarray(class_weight, dtype=float)[y]
    w = w * n / w.sum()
    Xa = np.column_stack([X, np.ones(n)])
    R = np.diag(np.r_[np.ones(d), 0.0])
    A = Xa.T @ (Xa * w[:, None]) + alpha * n * R
    h = w * np.einsum("ij,ij->i", Xa @ np.linalg.inv(A), Xa)
    L = np.bincount(y, weights=h)
    return L / L.sum()


def test_optimal_iteration_converges_where_the_full_step_cycles():
    # four classes with unequal spreads: the undamped fixed-point iteration cycled
    # between two points here (stopped at max_iter, leverage gap 7.5e-4); the damped
    # one reaches equal shares (checked against the explicit hat matrix)
    import warnings

    from lastlayer import LastLayerClassifier, NotConvergedWarning

    rng = np.random.default_rng(4)
    counts, d = [50, 25, 8, 3], 20
    means = rng.normal(size=(4, d)) * 0.7
    X = np.vstack([rng.normal(size=(m, d)) * np.linspace(0.1, 2, d) + means[c]
                   for c, m in enumerate(counts)])
    y = np.repeat(np.arange(4), counts)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotConvergedWarning)
        clf = LastLayerClassifier(weighting="optimal", loss="square", alpha=0.1).fit(X, y)
    info = clf.weighting_info_
    assert info["converged"] and info["iterations"] < 100 and not info["capped"]
    np.testing.assert_allclose(_hat_shares(X, y, clf.class_weight_, 0.1), 0.25, atol=1e-5)


def test_optimal_iteration_that_stops_short_warns():
    import warnings

    from lastlayer import NotConvergedWarning

    prob, *_ = make_problem([25, 60, 115], d=15, alpha=0.05, seed=1)
    with pytest.warns(NotConvergedWarning, match="did not converge in 2 iterations"):
        wt = compute_weighting("optimal", prob, max_iter=2)
    assert not wt.info["converged"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotConvergedWarning)
        assert compute_weighting("optimal", prob).info["converged"]
