"""Cross-entropy theory (lastlayer.theory._logistic) against independent references:
the square-loss closed form, brute-force quadrature and root finding, linear-programming
separability checks and Monte Carlo with scikit-learn's LogisticRegression."""

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.optimize import brentq, linprog
from scipy.special import expit

from lastlayer.theory import (
    SeparableDataError,
    binary_errors,
    equalizing_ratio,
    estimate_mean_norm,
    logistic_class_weights,
    logistic_errors,
    margin_loss_errors,
    optimal_weight_ratio,
    separability_threshold,
    simulate_logistic,
    sklearn_C,
    weights_from_ratio,
)
from lastlayer.theory._logistic import _System, prox

ASYM = {"mean_pos": [1.5, 0.3], "mean_neg": [-0.5, 0.8]}


@pytest.mark.parametrize("pi,delta,ridge,rho,means", [
    (0.1, 0.2, 0.0, 9.0, {"mean_norm": 1.2}),
    (0.1, 0.5, 0.0, 9.0, {"mean_norm": 1.2}),
    (0.3, 0.8, 0.05, 10.0, {"mean_norm": 1.2}),
    (0.2, 0.4, 0.5, 3.0, ASYM),
    (0.05, 1.5, 0.05, 20.0, {"mean_norm": 1.0}),
])
def test_square_loss_through_general_solver_matches_closed_form(pi, delta, ridge, rho, means):
    general = margin_loss_errors(pi, delta, weight_ratio=rho, ridge=ridge, loss="square",
                                 **means)
    closed = binary_errors(pi, delta, weight_ratio=rho, ridge=ridge, **means)
    assert general.error_pos == pytest.approx(closed.error_pos, abs=1e-9)
    assert general.error_neg == pytest.approx(closed.error_neg, abs=1e-9)
    assert general.sigma == pytest.approx(closed.sigma, rel=1e-7)
    assert 2 * general.gamma == pytest.approx(closed.k, rel=1e-7)


def test_prox_matches_brent_root():
    rng = np.random.default_rng(0)
    p = rng.standard_normal(3000) * 30
    c = np.exp(rng.uniform(-8, 10, 3000))
    x = prox("logistic", p, c)
    for i in range(0, 3000, 30):
        r = brentq(lambda t: t - p[i] - c[i] * expit(-t), p[i] - 1, p[i] + c[i] + 1,
                   xtol=1e-14, rtol=1e-15)
        assert x[i] == pytest.approx(r, rel=1e-10, abs=1e-10)


def test_moments_match_brute_force_quadrature():
    """Gauss-Hermite moments vs adaptive quadrature with an independent prox (brentq)."""
    pi = np.array([0.2, 0.8])
    omega = weights_from_ratio(0.2, 5.0)
    sys_ = _System("logistic", pi, omega, 0.1, 0.0, np.array([1.0]), np.array([-1.0]), 201)
    theta = np.array([math.log(0.8), -0.4, math.log(2.5), math.log(3.0)])
    alpha, b, sigma, gamma, a, r, e_phi, e_phi2, e_curv = sys_.moments(theta)
    for c in range(2):
        cc = gamma * omega[c]

        def px(g):
            p = a[c] + r * g
            return brentq(lambda t: t - p - cc * expit(-t), p - 1, p + cc + 1, xtol=1e-14)

        def phi(g):
            return omega[c] * -expit(-px(g))

        dens = lambda g: math.exp(-g * g / 2) / math.sqrt(2 * math.pi)  # noqa: E731
        ref1 = quad(lambda g: phi(g) * dens(g), -12, 12, limit=200, epsabs=1e-13)[0]
        ref2 = quad(lambda g: phi(g) ** 2 * dens(g), -12, 12, limit=200, epsabs=1e-13)[0]
        assert e_phi[c] == pytest.approx(ref1, rel=1e-8)
        assert e_phi2[c] == pytest.approx(ref2, rel=1e-8)


def _separable(X, t):
    """LP feasibility of t_i (w^T x_i + b) >= 1."""
    n, d = X.shape
    A = -t[:, None] * np.c_[X, np.ones(n)]
    res = linprog(np.zeros(d + 1), A_ub=A, b_ub=-np.ones(n), bounds=[(None, None)] * (d + 1),
                  method="highs")
    return res.status == 0


@pytest.mark.parametrize("pi,s", [(0.5, 0.0), (0.2, 1.0)])
def test_separability_threshold_against_linear_programming(pi, s):
    thr = separability_threshold(pi, mean_norm=s)
    n = 600
    rng = np.random.default_rng(3)
    n_pos = int(pi * n)
    t = np.r_[np.ones(n_pos), -np.ones(n - n_pos)]
    for factor, expected in [(0.75, False), (1.3, True)]:
        d = int(round(factor * thr * n))
        hits = 0
        for _ in range(4):
            X = rng.standard_normal((n, d))
            X[:, 0] += s * t
            hits += _separable(X, t)
        assert hits == (4 if expected else 0), (factor, hits)
    if s == 0.0 and pi == 0.5:
        assert thr == pytest.approx(0.5, abs=1e-8)  # Cover's bound


def test_separable_regime_raises_or_flags():
    thr = separability_threshold(0.1, mean_norm=1.2)
    with pytest.raises(SeparableDataError, match="separability threshold"):
        logistic_errors(0.1, 1.01 * thr, weight_ratio=9, mean_norm=1.2)
    flagged = logistic_errors(0.1, 1.01 * thr, weight_ratio=9, mean_norm=1.2,
                              on_separable="flag")
    assert flagged.separable and math.isnan(flagged.error_pos)
    ridged = logistic_errors(0.1, 3 * thr, weight_ratio=9, mean_norm=1.2, ridge=0.05)
    assert not ridged.separable and 0 < ridged.error_pos < 1


def test_sklearn_C_mapping():
    assert sklearn_C(0.0, 100) == math.inf
    assert sklearn_C(0.05, 1000) == pytest.approx(1 / (2 * 1000 * 0.05))


# Monte Carlo: n = 1200, 8 repeats, seeds as listed; tolerance 0.012 absolute and 4 SE
MC_CASES = [
    (0.1, 0.05, 0.0, 9.0, {"mean_norm": 1.2}, 11),
    (0.3, 0.1, 0.0, 1.0, ASYM, 12),
    (0.1, 0.5, 0.05, 9.0, {"mean_norm": 1.2}, 13),
    (0.2, 1.2, 0.05, 30.0, {"mean_norm": 1.0}, 14),
]


@pytest.mark.parametrize("pi,delta,ridge,rho,means,seed", MC_CASES)
def test_theory_matches_sklearn_simulation(pi, delta, ridge, rho, means, seed):
    w = weights_from_ratio(pi, rho)
    theory = logistic_errors(pi, delta, weights=w, ridge=ridge, **means)
    sim = simulate_logistic(pi, delta, w, ridge=ridge, n=1200, repeats=8, seed=seed, **means)
    gap = sim.mean - np.array([theory.error_pos, theory.error_neg])
    assert np.all(np.abs(gap) <= 0.012), (gap, sim.sem)
    assert np.all(np.abs(gap) <= 4 * sim.sem + 0.002), (gap, sim.sem)


def test_equal_df_rule_does_not_equalise_cross_entropy():
    """Item 3: the square-loss rule (2 n_- - d)/(2 n_+ - d) leaves the minority worse off
    under cross-entropy; the cross-entropy equalising ratio is larger and equalises."""
    pi, delta, s = 0.1, 0.05, 1.2
    rho_sq = optimal_weight_ratio(pi, delta)
    at_sq = logistic_errors(pi, delta, weight_ratio=rho_sq, mean_norm=s)
    assert at_sq.error_pos - at_sq.error_neg > 0.02
    rho_ce = equalizing_ratio(pi, delta, mean_norm=s)
    assert rho_ce > 1.5 * rho_sq
    at_ce = logistic_errors(pi, delta, weight_ratio=rho_ce, mean_norm=s)
    assert at_ce.error_pos == pytest.approx(at_ce.error_neg, abs=1e-7)
    # and the square-loss path agrees with the closed form
    assert equalizing_ratio(pi, delta, mean_norm=s, loss="square") == pytest.approx(rho_sq,
                                                                                   rel=1e-6)


def test_equalising_ratio_equalises_in_simulation():
    pi, delta, s = 0.1, 0.05, 1.2
    rho = equalizing_ratio(pi, delta, mean_norm=s)
    sim = simulate_logistic(pi, delta, weights_from_ratio(pi, rho), n=1500, repeats=10,
                            seed=21, mean_norm=s)
    gap = sim.mean[0] - sim.mean[1]
    assert abs(gap) <= 4 * math.hypot(*sim.sem) + 0.005, (sim.mean, sim.sem)
    sim_sq = simulate_logistic(pi, delta, weights_from_ratio(pi, optimal_weight_ratio(pi, delta)),
                               n=1500, repeats=10, seed=21, mean_norm=s)
    assert sim_sq.mean[0] - sim_sq.mean[1] > 0.02


def test_estimate_mean_norm_is_debiased():
    rng = np.random.default_rng(5)
    d, n_p, n_n, s, scale = 400, 150, 850, 0.8, 3.0
    est = []
    for _ in range(20):
        X = np.r_[rng.standard_normal((n_p, d)), rng.standard_normal((n_n, d))]
        X[:n_p, 0] += s
        X[n_p:, 0] -= s
        y = np.r_[np.zeros(n_p), np.ones(n_n)]
        est.append(estimate_mean_norm(scale * X, y))
    assert np.mean(est) == pytest.approx(s, abs=0.03)
    naive = 0.5 * np.linalg.norm(X[:n_p].mean(0) - X[n_p:].mean(0))
    assert naive > s + 0.2  # the plain distance is biased up by d (1/n_+ + 1/n_-)


def test_logistic_class_weights():
    res = logistic_class_weights([100, 900], 5, 1.2)
    assert res.feasible and not res.separable
    assert res.weight_ratio == pytest.approx(equalizing_ratio(0.1, 0.005, mean_norm=1.2))
    assert np.dot([100, 900], res.weights) == pytest.approx(1000)
    sep = logistic_class_weights([100, 900], 500, 1.2)
    assert sep.separable and np.allclose(sep.weights, 1.0)
