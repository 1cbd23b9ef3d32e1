"""Tests of lastlayer.paths: every path value against a direct solve_ridge call, the
equal-share ratio against solve_ridge's leverages and weighting_optimal's fixed point,
and GCV against a brute-force computation from the explicit hat matrix."""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg
import pytest
from threadpoolctl import threadpool_limits

from lastlayer.paths import TwoUnitWeightPath, alpha_path, select_alpha_gcv
from lastlayer.solvers import RidgeSolution, solve_ridge, sufficient_statistics
from lastlayer.weights import WeightingProblem, weighting_optimal


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    with threadpool_limits(limits=1):
        yield


def make_problem(seed, n, d, n_cells=4, weighted=False, offset=2.0):
    rng = np.random.default_rng(seed)
    cells = np.arange(n) % n_cells
    rng.shuffle(cells)
    X = rng.normal(size=(n_cells, d))[cells] + rng.normal(size=(n, d)) + offset
    s = rng.uniform(0.2, 2.0, size=n) if weighted else None
    return X, cells, s


def assert_same_fit(sol, ref, rtol=1e-8):
    scale = max(np.abs(ref.coef).max(), 1e-300)
    np.testing.assert_allclose(sol.coef, ref.coef, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(sol.intercept, ref.intercept, rtol=rtol,
                               atol=rtol * max(np.abs(ref.intercept).max(), 1.0))
    np.testing.assert_allclose(sol.df, ref.df, rtol=rtol)
    np.testing.assert_allclose(sol.cell_leverage, ref.cell_leverage, rtol=rtol, atol=rtol)


def ridge(stats, omega, alpha, T):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return solve_ridge(stats, omega, alpha, T)


# (n, d, alpha): full rank with and without ridge, d > n with ridge, d > n ridgeless
# (minimum-norm), and a unit with fewer rows than d + 1 (singular on its own).
CASES = {
    "d<n,ridgeless": (120, 8, 0.0),
    "d<n,ridge": (120, 8, 0.3),
    "d>n,ridge": (24, 40, 0.05),
    "d>n,ridgeless": (24, 40, 0.0),
    "tiny-unit": (40, 12, 0.0),
}


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("case", list(CASES))
def test_two_unit_path_equals_solve_ridge(case, weighted):
    n, d, alpha = CASES[case]
    X, cells, s = make_problem(1, n, d, weighted=weighted)
    unit_of_cell = np.array([0, 1, 0, 1])
    if case == "tiny-unit":  # unit 1 = cell 3 only: 10 rows < d + 1
        unit_of_cell = np.array([0, 0, 0, 1])
    T = np.eye(4)[:, :3] + 0.25
    stats = sufficient_statistics(X, cells, 4, s)
    path = TwoUnitWeightPath(stats, unit_of_cell, T, alpha)
    rng = np.random.default_rng(2)
    rhos = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), size=6))
    for rho in rhos:
        omega = path.cell_weights(rho)
        # mean weight one over samples
        np.testing.assert_allclose(omega @ stats.weight_sums, stats.weight_sums.sum())
        np.testing.assert_allclose(omega[unit_of_cell == 1][0] / omega[unit_of_cell == 0][0],
                                   rho)
        ref = ridge(stats, omega, alpha, T)
        sol = path.solve(rho)
        assert isinstance(sol, RidgeSolution) and sol.solver == "two_unit_path"
        assert_same_fit(sol, ref)
        L, df = path.leverage(rho)
        np.testing.assert_allclose(L, np.bincount(unit_of_cell, ref.cell_leverage), rtol=1e-8,
                                   atol=1e-9)
        np.testing.assert_allclose(df, ref.df, rtol=1e-8)
    full = path.path(rhos, return_coef=True)
    for k, rho in enumerate(rhos):
        ref = ridge(stats, path.cell_weights(rho), alpha, T)
        scale = np.abs(ref.coef).max()
        np.testing.assert_allclose(full["coef"][k], ref.coef, rtol=0, atol=1e-8 * scale)
        np.testing.assert_allclose(full["intercept"][k], ref.intercept, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(full["df"][k], ref.df, rtol=1e-8)
        np.testing.assert_allclose(full["unit_leverage"][k],
                                   np.bincount(unit_of_cell, ref.cell_leverage), rtol=1e-8,
                                   atol=1e-9)
    np.testing.assert_allclose(full["shares"].sum(axis=1), 1.0)
    np.testing.assert_allclose(full["unit_weights"] @ path.unit_counts, stats.weight_sums.sum())


def test_single_cell_units_binary_targets():
    """Binary +/-1 targets with one cell per unit (the two-class case)."""
    X, cells, s = make_problem(3, 90, 6, n_cells=2, weighted=True)
    T = np.array([[-1.0], [1.0]])
    stats = sufficient_statistics(X, cells, 2, s)
    path = TwoUnitWeightPath(stats, [0, 1], T, 0.01)
    for rho in (0.05, 1.0, 17.0):
        assert_same_fit(path.solve(rho), ridge(stats, path.cell_weights(rho), 0.01, T))


def test_unit_share_is_monotone_along_the_path():
    X, cells, _ = make_problem(4, 80, 10)
    stats = sufficient_statistics(X, cells, 4)
    path = TwoUnitWeightPath(stats, [0, 1, 1, 1], np.eye(4), 0.02)
    out = path.path(np.logspace(-4, 4, 200))
    assert np.all(np.diff(out["shares"][:, 1]) > 0)
    assert np.all(np.diff(out["average_leverage"][:, 1]) > 0)
    assert np.all(np.diff(out["average_leverage"][:, 0]) < 0)


@pytest.mark.parametrize("alpha", [0.0, 0.1])
@pytest.mark.parametrize("target", [(0.5, 0.5), (0.3, 0.7)])
def test_equal_share_ratio_gives_target_shares(alpha, target):
    X, cells, s = make_problem(5, 150, 12, weighted=True)
    unit_of_cell = np.array([0, 0, 0, 1])  # unit 1 is the minority (1/4 of the rows)
    T = np.eye(4)
    stats = sufficient_statistics(X, cells, 4, s)
    path = TwoUnitWeightPath(stats, unit_of_cell, T, alpha)
    rho, feasible, info = path.equal_share_ratio(target=target, return_info=True)
    assert feasible and not info["capped"]
    ref = ridge(stats, path.cell_weights(rho), alpha, T)
    shares = np.bincount(unit_of_cell, ref.cell_leverage) / ref.df
    np.testing.assert_allclose(shares, target, atol=1e-9)
    assert rho > 1.0  # the minority is up-weighted


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_equal_share_ratio_is_weighting_optimal_fixed_point(alpha):
    X, cells, _ = make_problem(6, 120, 10, n_cells=2)
    cells = (np.arange(120) < 25).astype(int)  # 25 minority rows
    T = np.eye(2)
    stats = sufficient_statistics(X, cells, 2)
    path = TwoUnitWeightPath(stats, [0, 1], T, alpha)
    rho, feasible = path.equal_share_ratio()

    def leverage(cell_w):
        sol = solve_ridge(stats, cell_w, alpha, T)
        return sol.cell_leverage, sol.df

    problem = WeightingProblem(unit_counts=stats.weight_sums.copy(), target=np.full(2, 0.5),
                               unit_of_cell=np.arange(2), n_features=10, alpha=alpha,
                               leverage=leverage)
    ref = weighting_optimal(problem, tol=1e-10)
    assert feasible == ref.feasible
    np.testing.assert_allclose(path.unit_weights(rho), ref.weights, rtol=1e-6)


def test_equal_share_ratio_caps_an_infeasible_unit():
    """Ridgeless with n_1 <= df / 2: the minority is held at max_leverage."""
    rng = np.random.default_rng(7)
    n, d = 200, 30
    cells = (np.arange(n) < 12).astype(int)  # 12 minority rows, df = 31 > 2 * 12
    X = rng.normal(size=(n, d)) + cells[:, None]
    T = np.eye(2)
    stats = sufficient_statistics(X, cells, 2)
    path = TwoUnitWeightPath(stats, [0, 1], T, 0.0)
    rho, feasible, info = path.equal_share_ratio(max_leverage=0.9, return_info=True)
    assert not feasible and info["capped"]
    ref = solve_ridge(stats, path.cell_weights(rho), 0.0, T)
    np.testing.assert_allclose(ref.cell_leverage[1] / 12, 0.9, rtol=1e-9)

    def leverage(cell_w):
        sol = solve_ridge(stats, cell_w, 0.0, T)
        return sol.cell_leverage, sol.df

    problem = WeightingProblem(unit_counts=stats.weight_sums.copy(), target=np.full(2, 0.5),
                               unit_of_cell=np.arange(2), n_features=d, leverage=leverage)
    opt = weighting_optimal(problem, max_leverage=0.9, tol=1e-10)
    assert not opt.feasible
    np.testing.assert_allclose(path.unit_weights(rho), opt.weights, rtol=1e-6)


def test_swapping_units_inverts_the_ratio():
    X, cells, _ = make_problem(8, 100, 7)
    stats = sufficient_statistics(X, cells, 4)
    a = TwoUnitWeightPath(stats, [0, 1, 1, 0], np.eye(4), 0.1)
    b = TwoUnitWeightPath(stats, [1, 0, 0, 1], np.eye(4), 0.1)
    rho_a, _ = a.equal_share_ratio()
    rho_b, _ = b.equal_share_ratio()
    np.testing.assert_allclose(rho_a * rho_b, 1.0, rtol=1e-9)
    assert_same_fit(a.solve(2.5), b.solve(1 / 2.5))


def test_two_unit_path_errors():
    X, cells, _ = make_problem(9, 40, 3)
    stats = sufficient_statistics(X, cells, 4)
    with pytest.raises(ValueError, match="'unit_of_cell' parameter must contain only 0 and 1"):
        TwoUnitWeightPath(stats, [0, 1, 2, 1], np.eye(4), 0.1)
    with pytest.raises(ValueError, match="'unit_of_cell' parameter must be a 1-D array of 4"):
        TwoUnitWeightPath(stats, [0, 1], np.eye(4), 0.1)
    with pytest.raises(ValueError, match="both units a positive sum"):
        TwoUnitWeightPath(stats, [0, 0, 0, 0], np.eye(4), 0.1)
    with pytest.raises(ValueError, match="'alpha' parameter"):
        TwoUnitWeightPath(stats, [0, 1, 0, 1], np.eye(4), -1.0)
    path = TwoUnitWeightPath(stats, [0, 1, 0, 1], np.eye(4), 0.1)
    with pytest.raises(ValueError, match="'rho' parameter must be a float in the range"):
        path.solve(0.0)
    with pytest.raises(ValueError, match="'rhos' parameter"):
        path.path([1.0, -2.0])
    with pytest.raises(ValueError, match="'target' parameter"):
        path.equal_share_ratio(target=(1.0, 0.0))


# --------------------------------------------------------------------------------------
# Alpha path and GCV
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shape", [(80, 9), (20, 35)])
def test_alpha_path_equals_solve_ridge(shape, weighted):
    n, d = shape
    X, cells, s = make_problem(10, n, d, weighted=weighted)
    omega = np.array([0.5, 2.0, 1.0, 3.0])
    T = np.eye(4)
    stats = sufficient_statistics(X, cells, 4, s)
    rng = np.random.default_rng(11)
    alphas = np.concatenate([[0.0], np.exp(rng.uniform(np.log(1e-4), np.log(10), 5))])
    if d > n:
        alphas = alphas[1:]  # alpha = 0 with d > n: see the minimum-norm test
    out = alpha_path(stats, omega, T, alphas, return_cell_leverage=True)
    for k, a in enumerate(alphas):
        ref = ridge(stats, omega, a, T)
        np.testing.assert_allclose(out["coef"][k], ref.coef, rtol=0,
                                   atol=1e-8 * np.abs(ref.coef).max())
        np.testing.assert_allclose(out["intercept"][k], ref.intercept, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(out["df"][k], ref.df, rtol=1e-8)
        np.testing.assert_allclose(out["cell_leverage"][k], ref.cell_leverage, rtol=1e-8,
                                   atol=1e-9)


def test_alpha_path_minimum_norm_at_zero():
    X, cells, _ = make_problem(12, 15, 30)
    stats = sufficient_statistics(X, cells, 4)
    omega, T = np.ones(4), np.eye(4)
    out = alpha_path(stats, omega, T, [0.0])
    ref = solve_ridge(stats, omega, 0.0, T, solver="eigh")
    np.testing.assert_allclose(out["coef"][0], ref.coef, atol=1e-8 * np.abs(ref.coef).max())
    np.testing.assert_allclose(out["df"][0], 15.0, rtol=1e-9)  # interpolation
    assert out["gcv"][0] == np.inf


def brute_force_gcv(X, cells, omega, T, alpha, s):
    """GCV from the explicit (n x n) weighted hat matrix and the explicit residuals."""
    n, d = X.shape
    s = np.ones(n) if s is None else s
    v = s * omega[cells]
    Xa = np.hstack([X, np.ones((n, 1))])
    R = np.eye(d + 1)
    R[-1, -1] = 0.0
    A = Xa.T @ (v[:, None] * Xa) + alpha * s.sum() * R
    M = np.sqrt(v)[:, None] * Xa
    H = M @ np.linalg.solve(A, M.T)
    Y = np.sqrt(v)[:, None] * T[cells]
    E = Y - H @ Y  # sqrt(v)-weighted residuals
    fitted = v > 0
    n_fit = s[fitted].sum()
    mse = np.sum(E**2) / v.sum()
    return mse / (1.0 - np.trace(H) / n_fit) ** 2, np.trace(H), mse


@pytest.mark.parametrize("weighted", [False, True])
def test_gcv_matches_explicit_hat_matrix(weighted):
    X, cells, s = make_problem(13, 60, 8, weighted=weighted)
    omega = np.array([1.0, 4.0, 0.0, 2.0])  # cell 2 carries no weight: out of the fit
    T = np.eye(4)[:, :2] + np.array([[0.0], [1.0], [2.0], [-1.0]])
    stats = sufficient_statistics(X, cells, 4, s)
    alphas = np.array([0.0, 1e-3, 0.05, 2.0])
    out = alpha_path(stats, omega, T, alphas, return_coef=False)
    for k, a in enumerate(alphas):
        gcv, df, mse = brute_force_gcv(X, cells, omega, T, a, s)
        np.testing.assert_allclose(out["df"][k], df, rtol=1e-9)
        np.testing.assert_allclose(out["mse"][k], mse, rtol=1e-8)
        np.testing.assert_allclose(out["gcv"][k], gcv, rtol=1e-8)
    sw = np.ones(60) if s is None else s
    np.testing.assert_allclose(out["n_fit"], sw[cells != 2].sum())


def test_select_alpha_gcv_returns_the_minimiser():
    X, cells, _ = make_problem(14, 50, 20)
    stats = sufficient_statistics(X, cells, 4)
    best, path = select_alpha_gcv(stats, np.ones(4), np.eye(4))
    assert best == path["alphas"][np.argmin(path["gcv"])]
    assert "coef" not in path and path["best_index"] == int(np.argmin(path["gcv"]))


def test_alpha_path_errors():
    X, cells, _ = make_problem(15, 30, 3)
    stats = sufficient_statistics(X, cells, 4)
    with pytest.raises(ValueError, match="'alphas' parameter"):
        alpha_path(stats, np.ones(4), np.eye(4), [-1.0])
    with pytest.raises(ValueError, match="'cell_weights' parameter"):
        alpha_path(stats, np.ones(3), np.eye(4), [1.0])
    with pytest.raises(ValueError, match="'stats' parameter"):
        alpha_path(X, np.ones(4), np.eye(4), [1.0])


def test_generalised_eigendecomposition_against_scipy():
    # the in-place reduction (Cholesky, sygst, divide and conquer, triangular solve)
    # solves the same pencil as scipy's sygvd:
    # B_1 V = (B_0 + B_1) V diag(lam), V^T (B_0 + B_1) V = I
    from lastlayer.paths import _generalised_eigh

    rng = np.random.default_rng(4)
    p, alpha, n_u = 30, 0.2, np.array([40.0, 6.0])
    aug = []
    for rows in (40, 6):  # unit 1 alone is singular (6 rows in 29 dimensions)
        Z = np.column_stack([rng.normal(size=(rows, p - 1)) + 3.0, np.ones(rows)])
        aug.append(Z.T @ Z)
    R = np.diag(np.r_[np.ones(p - 1), 0.0])
    B0, B1 = aug[0] + alpha * n_u[0] * R, aug[1] + alpha * n_u[1] * R
    lam, V = _generalised_eigh([a.copy() for a in aug], alpha, n_u)
    ref = scipy.linalg.eigh(B1, B0 + B1, eigvals_only=True)
    np.testing.assert_allclose(lam, ref, atol=1e-12)
    np.testing.assert_allclose(V.T @ (B0 + B1) @ V, np.eye(p), atol=1e-10)
    np.testing.assert_allclose(B1 @ V, (B0 + B1) @ V * lam, atol=1e-9 * np.abs(B1).max())


def test_weight_path_is_freed_without_the_cycle_collector():
    # the root finder of equal_share_ratio keeps its function in a reference cycle;
    # that function must not hold the path (its p x p arrays) until a gc pass
    import gc
    import weakref

    X, cells, _ = make_problem(7, 200, 10, n_cells=2)
    stats = sufficient_statistics(X, cells, 2)
    gc.disable()
    try:
        path = TwoUnitWeightPath(stats, [0, 1], np.array([[-1.0], [1.0]]), 0.1)
        path.equal_share_ratio(target=(0.5, 0.5))
        ref = weakref.ref(path)
        del path
        assert ref() is None
    finally:
        gc.enable()


def test_symmetric_update_against_numpy():
    from lastlayer._core.stats import symmetric_update

    rng = np.random.default_rng(5)
    A = rng.normal(size=(300, 300))
    C = A @ A.T
    a, b = rng.normal(size=300), rng.normal(size=300)
    D = C.copy()
    symmetric_update(D, -2.5, a)
    np.testing.assert_allclose(D, C - 2.5 * np.outer(a, a), rtol=0, atol=1e-12 * np.abs(C).max())
    assert np.array_equal(D, D.T)
    D = C.copy()
    symmetric_update(D, 0.7, a, b)
    np.testing.assert_allclose(D, C + 0.7 * (np.outer(a, b) + np.outer(b, a)), rtol=0,
                               atol=1e-12 * np.abs(C).max())
    assert np.array_equal(D, D.T)
