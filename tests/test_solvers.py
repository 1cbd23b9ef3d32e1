"""Tests of lastlayer.solvers against independent references (numpy lstsq, dense hat
matrices, scikit-learn, brute-force leave-one-out refits) and invariances."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.optimize import check_grad
from sklearn.linear_model import LogisticRegression, Ridge
from threadpoolctl import threadpool_limits

from lastlayer._core.logistic import logistic_loss_grad
from lastlayer.solvers import (
    DEFAULT_RIDGE_ALPHAS,
    LogisticSolution,
    RidgeSolution,
    SufficientStats,
    logistic_alpha_alo,
    merge_statistics,
    ridge_loo_path,
    select_alpha_loo,
    solve_logistic,
    solve_ridge,
    solve_ridge_dual,
    sufficient_statistics,
)


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    """Tiny problems: BLAS threads only contend (10x slower on a loaded 2-core box)."""
    with threadpool_limits(limits=1):
        yield


# --------------------------------------------------------------------------------------
# Problem generators and independent references
# --------------------------------------------------------------------------------------

SHAPES = {"d<n": (60, 6), "d>n": (14, 30)}


def make_problem(seed, n, d, n_classes, weighted, offset=1.0):
    """Random features with class-dependent means, cells = classes."""
    rng = np.random.default_rng(seed)
    cells = np.arange(n) % n_classes  # every cell populated
    rng.shuffle(cells)
    means = rng.normal(size=(n_classes, d))
    X = means[cells] + rng.normal(size=(n, d)) + offset
    omega = rng.uniform(0.5, 3.0, size=n_classes)
    if n_classes == 2:
        T = np.array([[-1.0], [1.0]])  # binary +/-1 targets, one output
    else:
        T = np.eye(n_classes)
    s = rng.uniform(0.2, 2.0, size=n) if weighted else None
    return X, cells, omega, T, s


def _weights(s, n):
    return np.ones(n) if s is None else np.asarray(s, dtype=float)


def ref_ridge(X, cells, omega, T, alpha, s):
    """numpy lstsq on the augmented sqrt-weighted system with ridge rows appended.

    alpha > 0: unique solution of sum v ||t - W^T x - b||^2 + alpha n ||W||^2.
    alpha = 0: minimum-norm W (intercept free) = lstsq on weighted-centred data.
    """
    n, d = X.shape
    s = _weights(s, n)
    v = s * omega[cells]
    sq = np.sqrt(v)[:, None]
    Y = T[cells]
    if alpha > 0:
        Xa = np.hstack([X, np.ones((n, 1))])
        ridge_rows = np.sqrt(alpha * s.sum()) * np.hstack([np.eye(d), np.zeros((d, 1))])
        A = np.vstack([sq * Xa, ridge_rows])
        B = np.vstack([sq * Y, np.zeros((d, Y.shape[1]))])
        theta = np.linalg.lstsq(A, B, rcond=None)[0]
        return theta[:-1], theta[-1]
    mu = v @ X / v.sum()
    tbar = v @ Y / v.sum()
    W = np.linalg.lstsq(sq * (X - mu), sq * (Y - tbar), rcond=None)[0]
    return W, tbar - mu @ W


def dense_hat_diag(X, cells, omega, alpha, s):
    """Diagonal of D^{1/2} X~ A^+ X~^T D^{1/2}, A = X~^T D X~ + alpha n R (dense)."""
    n, d = X.shape
    s = _weights(s, n)
    v = s * omega[cells]
    Xa = np.hstack([X, np.ones((n, 1))])
    R = np.eye(d + 1)
    R[-1, -1] = 0.0
    A = Xa.T @ (v[:, None] * Xa) + alpha * s.sum() * R
    M = np.sqrt(v)[:, None] * Xa
    H = M @ np.linalg.pinv(A, hermitian=True) @ M.T
    return np.diag(H)


def fit(solver, X, cells, omega, alpha, T, s):
    """Dispatch a test case to the stats-based solver or the dual."""
    if solver == "dual":
        return solve_ridge_dual(X, cells, omega, alpha, T, sample_weight=s)
    stats = sufficient_statistics(X, cells, len(omega), s, chunk_size=17)
    with warnings.catch_warnings():
        # explicit "cholesky" on a singular system warns that it fell back
        warnings.simplefilter("ignore", UserWarning)
        return solve_ridge(stats, omega, alpha, T, solver=solver)


SOLVERS = ["auto", "cholesky", "eigh", "dual"]


# --------------------------------------------------------------------------------------
# Sufficient statistics
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 7, 65536])
def test_sufficient_statistics_match_direct_sums(weighted, chunk_size):
    X, cells, omega, T, s = make_problem(0, 40, 5, 3, weighted)
    st = sufficient_statistics(X, cells, 4, s, chunk_size=chunk_size)  # cell 3 empty
    w = _weights(s, len(X))
    for j in range(4):
        idx = cells == j
        assert st.n_rows[j] == idx.sum()
        np.testing.assert_allclose(st.weight_sums[j], w[idx].sum(), rtol=1e-13)
        np.testing.assert_allclose(st.sums[j], w[idx] @ X[idx], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            st.grams[j], (X[idx] * w[idx, None]).T @ X[idx], rtol=1e-12, atol=1e-12
        )
    assert st.n_rows.dtype == np.int64
    np.testing.assert_array_equal(st.grams, st.grams.transpose(0, 2, 1))


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("input_dtype", [np.float32, np.float64])
def test_float32_statistics_close_to_exact_sums_despite_an_offset(weighted, input_dtype):
    # features with an offset 100x their spread: without the shift, float32 products
    # would lose about four digits to cancellation when the solver centres them
    rng = np.random.default_rng(3)
    n, d = 3000, 6
    X = (100.0 + rng.standard_normal((n, d)) @ rng.standard_normal((d, d))).astype(input_dtype)
    cells = rng.integers(0, 3, n)
    s = rng.uniform(0.5, 2.0, n) if weighted else None
    exact = sufficient_statistics(X.astype(np.float64), cells, 3, s)
    st = sufficient_statistics(X, cells, 3, s, precision="float32", chunk_size=1000)
    np.testing.assert_array_equal(st.n_rows, exact.n_rows)
    np.testing.assert_allclose(st.sums, exact.sums, rtol=1e-6)
    # centred second moments, the quantity the solver uses, to float32 round-off
    for j in range(3):
        N = exact.weight_sums[j]
        mu = exact.sums[j] / N
        C_exact = exact.grams[j] - N * np.outer(mu, mu)
        C32 = st.grams[j] - np.outer(st.sums[j], st.sums[j]) / N
        assert np.abs(C32 - C_exact).max() < 1e-5 * np.abs(C_exact).max()
    omega, T = np.ones(3), np.eye(3)
    np.testing.assert_allclose(solve_ridge(st, omega, 1e-3, T).coef,
                               solve_ridge(exact, omega, 1e-3, T).coef, rtol=1e-4, atol=1e-6)


def test_statistics_reject_non_finite_values_and_unknown_precision():
    X = np.ones((5, 2))
    X[3, 1] = np.nan
    for precision in ("float64", "float32"):
        with pytest.raises(ValueError, match="must be finite"):
            sufficient_statistics(X, np.zeros(5, dtype=int), 1, precision=precision)
    with pytest.raises(ValueError, match="'precision' parameter"):
        sufficient_statistics(np.ones((5, 2)), np.zeros(5, dtype=int), 1, precision="half")


def test_merge_statistics_of_halves_equals_whole():
    X, cells, omega, T, s = make_problem(1, 50, 4, 3, True)
    whole = sufficient_statistics(X, cells, 3, s)
    a = sufficient_statistics(X[:20], cells[:20], 3, s[:20])
    b = sufficient_statistics(X[20:], cells[20:], 3, s[20:])
    merged = merge_statistics(a, b)
    assert isinstance(merged, SufficientStats)
    for f_whole, f_merged in zip(whole, merged):
        np.testing.assert_allclose(f_merged, f_whole, rtol=1e-12, atol=1e-12)
    # a list is accepted too, and the fits agree
    merged2 = merge_statistics([a, b])
    np.testing.assert_allclose(
        solve_ridge(merged2, omega, 0.1, T).coef, solve_ridge(whole, omega, 0.1, T).coef,
        rtol=1e-10, atol=1e-12,
    )


def test_merge_statistics_rejects_mismatched_shapes():
    a = sufficient_statistics(np.ones((3, 2)), [0, 1, 0], 2)
    b = sufficient_statistics(np.ones((3, 3)), [0, 1, 0], 2)
    with pytest.raises(ValueError, match="same number of cells and features"):
        merge_statistics(a, b)


# --------------------------------------------------------------------------------------
# Ridge: agreement with independent references
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("n_classes", [2, 4])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("alpha", [0.05, 0.0])
def test_solve_ridge_matches_lstsq(solver, shape, n_classes, weighted, alpha):
    n, d = SHAPES[shape]
    X, cells, omega, T, s = make_problem(2, n, d, n_classes, weighted)
    sol = fit(solver, X, cells, omega, alpha, T, s)
    W, b = ref_ridge(X, cells, omega, T, alpha, s)
    assert isinstance(sol, RidgeSolution)
    assert sol.coef.shape == (d, T.shape[1]) and sol.intercept.shape == (T.shape[1],)
    np.testing.assert_allclose(sol.coef, W, rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(sol.intercept, b, rtol=1e-7, atol=1e-8)
    if solver == "auto":
        # singular ridgeless systems must take the spectral path
        assert sol.solver == ("eigh" if (alpha == 0 and d >= n) else "cholesky")
    elif solver == "dual":
        assert sol.solver == "dual"
    if alpha == 0 and d < n:
        # full rank: also the unique solution of the plain augmented lstsq
        v = _weights(s, n) * omega[cells]
        Xa = np.hstack([X, np.ones((n, 1))]) * np.sqrt(v)[:, None]
        theta = np.linalg.lstsq(Xa, np.sqrt(v)[:, None] * T[cells], rcond=None)[0]
        np.testing.assert_allclose(sol.coef, theta[:-1], rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("n_classes", [2, 4])
def test_solve_ridge_matches_sklearn_ridge(solver, shape, n_classes):
    n, d = SHAPES[shape]
    X, cells, omega, T, s = make_problem(3, n, d, n_classes, True)
    alpha = 0.03
    sol = fit(solver, X, cells, omega, alpha, T, s)
    # sklearn minimises sum sw r^2 + alpha_sk ||w||^2: alpha_sk = alpha * sum(s)
    sk = Ridge(alpha=alpha * s.sum(), fit_intercept=True, solver="svd")
    sk.fit(X, T[cells], sample_weight=s * omega[cells])
    np.testing.assert_allclose(sol.coef, np.atleast_2d(sk.coef_).T, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(
        sol.intercept, np.atleast_1d(sk.intercept_), rtol=1e-7, atol=1e-9
    )


@pytest.mark.parametrize("solver", ["auto", "eigh", "dual"])
def test_rank_deficient_ridgeless_falls_back_to_minimum_norm(solver):
    X, cells, omega, T, s = make_problem(4, 40, 4, 3, True)
    X = np.hstack([X, X[:, :2], 2.0 * X[:, 1:2]])  # duplicated / collinear columns
    sol = fit(solver, X, cells, omega, 0.0, T, s)
    W, b = ref_ridge(X, cells, omega, T, 0.0, s)
    np.testing.assert_allclose(sol.coef, W, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(sol.intercept, b, rtol=1e-6, atol=1e-8)
    if solver != "dual":
        assert sol.solver == "eigh"
    # rank is 4 centred directions + intercept
    assert sol.df == pytest.approx(5.0, abs=1e-8)


def test_explicit_cholesky_warns_when_it_falls_back():
    X, cells, omega, T, s = make_problem(5, 30, 3, 2, False)
    X = np.hstack([X, X])
    stats = sufficient_statistics(X, cells, 2)
    with pytest.warns(UserWarning, match="fell back to the 'eigh' solver"):
        sol = solve_ridge(stats, omega, 0.0, T, solver="cholesky")
    assert sol.solver == "eigh"
    W, _ = ref_ridge(X, cells, omega, T, 0.0, s)
    np.testing.assert_allclose(sol.coef, W, rtol=1e-6, atol=1e-8)


def test_large_offset_features_are_centred():
    # raw second moments dominated by the mean: centring keeps the fit accurate
    X, cells, omega, T, s = make_problem(6, 80, 5, 3, True, offset=1e3)
    sol = fit("auto", X, cells, omega, 1e-4, T, s)
    W, b = ref_ridge(X, cells, omega, T, 1e-4, s)
    np.testing.assert_allclose(sol.coef, W, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(sol.intercept, b, rtol=1e-5, atol=1e-4)


# --------------------------------------------------------------------------------------
# Leverage and degrees of freedom
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("alpha", [0.2, 1e-3, 0.0])
def test_cell_leverage_matches_dense_hat_matrix(solver, shape, alpha):
    n, d = SHAPES[shape]
    X, cells, omega, T, s = make_problem(7, n, d, 3, True)
    sol = fit(solver, X, cells, omega, alpha, T, s)
    h = dense_hat_diag(X, cells, omega, alpha, s)
    expected = np.bincount(cells, weights=h, minlength=3)
    np.testing.assert_allclose(sol.cell_leverage, expected, rtol=1e-7, atol=1e-8)
    assert sol.df == pytest.approx(h.sum(), rel=1e-9)
    assert sol.df == pytest.approx(sol.cell_leverage.sum(), rel=1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
def test_df_is_d_plus_one_for_ridgeless_full_rank(solver):
    X, cells, omega, T, s = make_problem(8, 50, 7, 3, True)
    sol = fit(solver, X, cells, omega, 0.0, T, s)
    assert sol.df == pytest.approx(8.0, abs=1e-9)
    # interpolation (d >= n - 1): every weighted row has leverage one, df = n
    X, cells, omega, T, s = make_problem(8, 12, 30, 3, True)
    sol = fit(solver, X, cells, omega, 0.0, T, s)
    assert sol.df == pytest.approx(12.0, abs=1e-8)
    np.testing.assert_allclose(sol.cell_leverage, np.bincount(cells), atol=1e-8)


def test_df_decreases_with_alpha():
    X, cells, omega, T, s = make_problem(9, 60, 6, 3, False)
    stats = sufficient_statistics(X, cells, 3)
    dfs = [solve_ridge(stats, omega, a, T).df for a in [0.0, 0.01, 0.1, 1.0, 100.0]]
    assert np.all(np.diff(dfs) < 0)
    assert dfs[-1] > 1.0  # the intercept always counts


# --------------------------------------------------------------------------------------
# Invariances
# --------------------------------------------------------------------------------------


def _assert_same_fit(a, b, rtol=1e-9):
    np.testing.assert_allclose(a.coef, b.coef, rtol=rtol, atol=1e-11)
    np.testing.assert_allclose(a.intercept, b.intercept, rtol=rtol, atol=1e-11)
    assert a.df == pytest.approx(b.df, rel=rtol)


@pytest.mark.parametrize("solver", SOLVERS)
def test_permuting_rows_changes_nothing(solver):
    X, cells, omega, T, s = make_problem(10, 40, 5, 3, True)
    p = np.random.default_rng(0).permutation(len(X))
    a = fit(solver, X, cells, omega, 0.02, T, s)
    b = fit(solver, X[p], cells[p], omega, 0.02, T, s[p])
    _assert_same_fit(a, b)
    np.testing.assert_allclose(a.cell_leverage, b.cell_leverage, rtol=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
def test_relabelling_cells_changes_nothing(solver):
    X, cells, omega, T, s = make_problem(11, 40, 5, 3, True)
    perm = np.array([2, 0, 1])  # old cell j becomes perm[j]
    inv = np.argsort(perm)
    a = fit(solver, X, cells, omega, 0.02, T, s)
    b = fit(solver, X, perm[cells], omega[inv], 0.02, T[inv], s)
    _assert_same_fit(a, b)
    np.testing.assert_allclose(a.cell_leverage, b.cell_leverage[perm], rtol=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
def test_integer_sample_weight_equals_repeated_row(solver):
    X, cells, omega, T, _ = make_problem(12, 30, 4, 3, False)
    s = np.ones(len(X))
    s[[3, 7]] = [2.0, 3.0]
    rep = np.r_[np.arange(len(X)), 3, 7, 7]
    a = fit(solver, X, cells, omega, 0.05, T, s)
    b = fit(solver, X[rep], cells[rep], omega, 0.05, T, None)
    _assert_same_fit(a, b)
    np.testing.assert_allclose(a.cell_leverage, b.cell_leverage, rtol=1e-9)


@pytest.mark.parametrize("solver", SOLVERS)
def test_zero_sample_weight_equals_removed_row(solver):
    X, cells, omega, T, s = make_problem(13, 30, 4, 3, True)
    s = s.copy()
    s[[0, 5]] = 0.0
    keep = s > 0
    a = fit(solver, X, cells, omega, 0.05, T, s)
    b = fit(solver, X[keep], cells[keep], omega, 0.05, T, s[keep])
    _assert_same_fit(a, b)


@pytest.mark.parametrize("solver", SOLVERS)
def test_scaling_weights_and_alpha_together_changes_nothing(solver):
    X, cells, omega, T, s = make_problem(14, 30, 4, 3, True)
    a = fit(solver, X, cells, omega, 0.05, T, s)
    b = fit(solver, X, cells, 7.5 * omega, 7.5 * 0.05, T, s)
    _assert_same_fit(a, b)
    np.testing.assert_allclose(a.cell_leverage, b.cell_leverage, rtol=1e-9)


def test_scaling_weights_alone_acts_like_inverse_alpha():
    # the overall scale of omega matters with alpha > 0 (docs/theory.md section 1)
    X, cells, omega, T, s = make_problem(15, 30, 4, 3, True)
    a = fit("auto", X, cells, omega, 0.05, T, s)
    b = fit("auto", X, cells, 2.0 * omega, 0.05, T, s)
    assert not np.allclose(a.coef, b.coef)
    assert b.df > a.df


# --------------------------------------------------------------------------------------
# Exact leave-one-out
# --------------------------------------------------------------------------------------


def brute_force_loo(X, cells, omega, T, alpha, s):
    """Refit without each row (penalty fixed at alpha * n of the full fit)."""
    n, d = X.shape
    s = _weights(s, n)
    v = s * omega[cells]
    lam = alpha * s.sum()
    Y = T[cells]
    Xa = np.hstack([X, np.ones((n, 1))])
    R = np.hstack([np.eye(d), np.zeros((d, 1))])
    pred = np.empty_like(Y)
    for i in range(n):
        m = np.arange(n) != i
        A = np.vstack([np.sqrt(v[m])[:, None] * Xa[m], np.sqrt(lam) * R])
        B = np.vstack([np.sqrt(v[m])[:, None] * Y[m], np.zeros((d, Y.shape[1]))])
        theta = np.linalg.lstsq(A, B, rcond=None)[0]
        pred[i] = Xa[i] @ theta
    err = np.sum(v[:, None] * (Y - pred) ** 2) / v.sum()
    return err, pred


@pytest.mark.parametrize("shape", [(30, 5), (12, 25)])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_ridge_loo_path_matches_brute_force(shape, n_classes):
    n, d = shape
    X, cells, omega, T, s = make_problem(16, n, d, n_classes, True)
    s = s.copy()
    s[2] = 0.0  # a row without weight: no LOO weight, prediction = full fit
    alphas = np.array([1e-3, 0.05, 1.0])
    path = ridge_loo_path(
        X, cells, omega, T, alphas, sample_weight=s, return_decision=True
    )
    for k, a in enumerate(alphas):
        err, pred = brute_force_loo(X, cells, omega, T, a, s)
        assert path["loo_mse"][k] == pytest.approx(err, rel=1e-7)
        np.testing.assert_allclose(path["loo_decision"][k], pred, rtol=1e-6, atol=1e-8)
        sol = fit("auto", X, cells, omega, a, T, s)
        assert path["df"][k] == pytest.approx(sol.df, rel=1e-8)
    assert path["loo_decision"].shape == (3, n, T.shape[1])


def test_ridge_loo_path_reads_the_gram_from_statistics():
    X, cells, omega, T, s = make_problem(19, 60, 8, 3, True)
    alphas = np.array([1e-3, 0.05, 1.0])
    stats = sufficient_statistics(X, cells, 3, s)
    from_rows = ridge_loo_path(X, cells, omega, T, alphas, sample_weight=s)
    from_stats = ridge_loo_path(X, cells, omega, T, alphas, sample_weight=s, stats=stats)
    for k, a in enumerate(alphas):
        err, _ = brute_force_loo(X, cells, omega, T, a, s)
        assert from_stats["loo_mse"][k] == pytest.approx(err, rel=1e-7)
    np.testing.assert_allclose(from_stats["df"], from_rows["df"], rtol=1e-10)
    with pytest.raises(ValueError, match="7 features; X has 8"):
        ridge_loo_path(X, cells, omega, T, alphas, sample_weight=s,
                       stats=sufficient_statistics(X[:, :7], cells, 3, s))


def test_ridge_loo_path_handles_interpolation():
    X, cells, omega, T, _ = make_problem(17, 10, 20, 2, False)
    path = ridge_loo_path(X, cells, omega, T, [0.0, 0.1])
    assert path["loo_mse"][0] == np.inf  # every h_ii = 1
    assert np.isfinite(path["loo_mse"][1])
    assert path["df"][0] == pytest.approx(10.0)


def test_select_alpha_loo_picks_the_minimiser():
    X, cells, omega, T, s = make_problem(18, 80, 30, 3, True)
    best, path = select_alpha_loo(X, cells, omega, T, sample_weight=s)
    np.testing.assert_array_equal(path["alphas"], DEFAULT_RIDGE_ALPHAS)
    assert best == path["alphas"][np.argmin(path["loo_mse"])]
    assert path["best_index"] == np.argmin(path["loo_mse"])
    # noisy features: neither end of the grid
    assert path["alphas"][0] < best < path["alphas"][-1]


# --------------------------------------------------------------------------------------
# Logistic
# --------------------------------------------------------------------------------------


def logistic_problem(seed, n, d, K):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % K
    rng.shuffle(y)
    X = rng.normal(size=(K, d))[y] + 1.5 * rng.normal(size=(n, d))
    r = rng.uniform(0.3, 2.0, size=n)
    return X, y, r


def test_solve_logistic_multinomial_matches_sklearn():
    X, y, r = logistic_problem(20, 120, 6, 3)
    n, alpha = X.shape[0], 0.01
    sol = solve_logistic(X, y, 3, r, alpha, tol=1e-10)
    assert isinstance(sol, LogisticSolution) and sol.converged
    sk = LogisticRegression(C=1.0 / (2 * n * alpha), tol=1e-12, max_iter=10000)
    sk.fit(X, y, sample_weight=r)
    np.testing.assert_allclose(sol.coef, sk.coef_.T, atol=1e-5)
    centred = sk.intercept_ - sk.intercept_.mean()
    np.testing.assert_allclose(sol.intercept, centred, atol=1e-5)
    assert sol.intercept.sum() == pytest.approx(0.0, abs=1e-12)


def test_solve_logistic_binary_matches_sklearn():
    # two softmax columns == binary logistic on w1 - w0 with penalty alpha/2 ||w||^2
    X, y, r = logistic_problem(21, 100, 5, 2)
    n, alpha = X.shape[0], 0.02
    sol = solve_logistic(X, y, 2, r, alpha, tol=1e-10)
    sk = LogisticRegression(C=1.0 / (n * alpha), tol=1e-12, max_iter=10000)
    sk.fit(X, y, sample_weight=r)
    np.testing.assert_allclose(sol.coef[:, 1] - sol.coef[:, 0], sk.coef_[0], atol=1e-5)
    assert sol.intercept[1] - sol.intercept[0] == pytest.approx(sk.intercept_[0], abs=1e-5)


def test_logistic_gradient_is_exact():
    X, y, r = logistic_problem(22, 40, 4, 3)
    Xa = np.hstack([X, np.ones((40, 1))])
    args = (Xa, y, r, 0.05, 40.0, 3)
    theta = np.random.default_rng(0).normal(size=5 * 3)
    err = check_grad(
        lambda t: logistic_loss_grad(t, *args)[0],
        lambda t: logistic_loss_grad(t, *args)[1],
        theta,
    )
    assert err < 1e-6


def test_logistic_is_stable_for_huge_logits():
    X, y, r = logistic_problem(23, 30, 3, 3)
    f, g = logistic_loss_grad(
        np.full(4 * 3, 1e3), np.hstack([X * 1e3, np.ones((30, 1))]), y, r, 0.0, 30.0, 3
    )
    assert np.isfinite(f) and np.all(np.isfinite(g))


def test_logistic_integer_weight_equals_repeated_row_with_sum_normaliser():
    X, y, _ = logistic_problem(24, 40, 4, 3)
    w = np.ones(40)
    w[[1, 4]] = [2.0, 3.0]
    rep = np.r_[np.arange(40), 1, 4, 4]
    a = solve_logistic(X, y, 3, w, 0.01, n_samples=w.sum(), tol=1e-10)
    b = solve_logistic(X[rep], y[rep], 3, np.ones(43), 0.01, tol=1e-10)
    np.testing.assert_allclose(a.coef, b.coef, atol=1e-6)
    np.testing.assert_allclose(a.intercept, b.intercept, atol=1e-6)


def test_logistic_warm_start_reaches_same_solution():
    X, y, r = logistic_problem(25, 60, 4, 3)
    cold = solve_logistic(X, y, 3, r, 0.01, tol=1e-10)
    near = solve_logistic(X, y, 3, r, 0.02, tol=1e-10)
    warm = solve_logistic(X, y, 3, r, 0.01, tol=1e-10, init=near)
    np.testing.assert_allclose(warm.coef, cold.coef, atol=1e-6)
    assert warm.n_iter <= cold.n_iter


def brute_force_logistic_loo(X, y, K, r, alpha):
    n = X.shape[0]
    ce = np.empty(n)
    for i in range(n):
        m = np.arange(n) != i
        sol = solve_logistic(X[m], y[m], K, r[m], alpha, n_samples=float(n), tol=1e-10)
        z = X[i] @ sol.coef + sol.intercept
        ce[i] = np.log(np.exp(z - z.max()).sum()) + z.max() - z[y[i]]
    return float(r @ ce / r.sum())


@pytest.mark.parametrize("shape", [(60, 5), (30, 40)])
def test_logistic_alo_close_to_brute_force_loo(shape):
    n, d = shape
    X, y, r = logistic_problem(26, n, d, 3)
    alphas = np.array([0.3, 0.03])
    best, path = logistic_alpha_alo(X, y, 3, r, alphas)
    exact = brute_force_logistic_loo(X, y, 3, r, 0.03)
    assert path["loo_ce"][1] == pytest.approx(exact, rel=0.05)
    assert path["loo_ce"][1] > path["train_ce"][1]  # LOO is pessimistic w.r.t. training
    assert best == alphas[int(np.argmin(path["loo_ce"]))] and path["coef"].shape == (2, d, 3)
    # the ALO choice is the brute-force choice: both order the two alphas alike
    exact_other = brute_force_logistic_loo(X, y, 3, r, 0.3)
    assert (path["loo_ce"][0] < path["loo_ce"][1]) == (exact_other < exact)
    # the returned coefficients are the full-feature fits
    sol = solve_logistic(X, y, 3, r, 0.03, tol=1e-10)
    np.testing.assert_allclose(path["coef"][1], sol.coef, atol=1e-5)


def test_logistic_exact_loo_matches_brute_force():
    X, y, r = logistic_problem(27, 24, 3, 3)
    r = r.copy()
    r[5] = 0.0  # no weight: not refitted, no contribution
    _, path = logistic_alpha_alo(X, y, 3, r, [0.01], method="exact", tol=1e-10)
    exact = brute_force_logistic_loo(X, y, 3, r, 0.01)
    assert path["method"] == "exact"
    assert path["loo_ce"][0] == pytest.approx(exact, rel=1e-5)


# --------------------------------------------------------------------------------------
# Parameter errors
# --------------------------------------------------------------------------------------


_X, _CELLS, _OMEGA, _T, _ = make_problem(30, 20, 3, 2, False)
_STATS = sufficient_statistics(_X, _CELLS, 2)
_ONES = np.ones(20)

BAD_CALLS = {
    "alpha": (
        lambda: solve_ridge(_STATS, _OMEGA, -1, _T),
        r"'alpha' parameter must be a float in the range \[0, inf\)\. Got -1 instead",
    ),
    "solver": (
        lambda: solve_ridge(_STATS, _OMEGA, 0.1, _T, solver="svd"),
        r"'solver' parameter must be one of 'auto', 'cholesky', 'eigh'\. Got 'svd'",
    ),
    "cell_weights_shape": (
        lambda: solve_ridge(_STATS, [1.0, 2.0, 3.0], 0.1, _T),
        r"'cell_weights' parameter must be a 1-D array of 2 .* Got shape \(3,\)",
    ),
    "cell_weights_sign": (
        lambda: solve_ridge(_STATS, [1.0, -2.0], 0.1, _T),
        r"'cell_weights' parameter must contain non-negative .* Got -2\.0 at index 1",
    ),
    "cell_weights_zero": (
        lambda: solve_ridge(_STATS, [0.0, 0.0], 0.1, _T),
        r"'cell_weights' parameter must give a positive total weight",
    ),
    "cell_targets": (
        lambda: solve_ridge(_STATS, _OMEGA, 0.1, np.eye(3)),
        r"'cell_targets' parameter must be an array of shape \(2, n_targets\)",
    ),
    "stats": (
        lambda: solve_ridge((1, 2, 3), _OMEGA, 0.1, _T),
        r"'stats' parameter must be a SufficientStats",
    ),
    "cells": (
        lambda: sufficient_statistics(_X, np.r_[_CELLS[:-1], 5], 2),
        r"'cells' parameter must contain integers in \[0, 2\)\. Got values in \[0, 5\]",
    ),
    "sample_weight": (
        lambda: sufficient_statistics(_X, _CELLS, 2, -_ONES),
        r"'sample_weight' parameter must contain non-negative",
    ),
    "alphas": (
        lambda: ridge_loo_path(_X, _CELLS, _OMEGA, _T, [-1.0]),
        r"'alphas' parameter must be a non-empty 1-D array .* \[0, inf\)",
    ),
    "alphas_positive": (
        lambda: logistic_alpha_alo(_X, _CELLS, 2, _ONES, [0.0]),
        r"'alphas' parameter .* range \(0, inf\)",
    ),
    "n_classes": (
        lambda: solve_logistic(_X, _CELLS, 1, _ONES, 0.1),
        r"'n_classes' parameter must be an int in the range \[2, inf\)\. Got 1",
    ),
    "method": (
        lambda: logistic_alpha_alo(_X, _CELLS, 2, _ONES, method="cv"),
        r"'method' parameter must be one of 'alo', 'exact'\. Got 'cv'",
    ),
    "init": (
        lambda: solve_logistic(_X, _CELLS, 2, _ONES, 0.1, init=(np.zeros(3), 0)),
        r"'init' parameter must be None, a LogisticSolution or a tuple",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_parameter_errors_name_parameter_allowed_values_and_received(case):
    call, pattern = BAD_CALLS[case]
    with pytest.raises(ValueError, match=pattern):
        call()


def test_preconditioned_objective_is_the_logistic_objective():
    # L-BFGS runs on W = V diag(s) G, b = b' - mu^T W: same value at mapped points,
    # and its gradient is exact
    from lastlayer._core.logistic import _scales, augment, preconditioner

    X, y, r = logistic_problem(24, 50, 4, 3)
    pre = preconditioner(X, r, 50.0, 3)
    s = _scales(pre, 0.05)
    Ya = augment(pre.Y * s)
    args = (Ya, y, r, 0.05 * s * s, 50.0, 3)
    theta = np.random.default_rng(1).normal(size=5 * 3)
    assert check_grad(lambda t: logistic_loss_grad(t, *args)[0],
                      lambda t: logistic_loss_grad(t, *args)[1], theta) < 1e-6
    G, bp = theta.reshape(5, 3)[:-1], theta.reshape(5, 3)[-1]
    W = pre.V @ (s[:, None] * G)
    original = np.vstack([W, bp - pre.mu @ W]).ravel()
    f_orig = logistic_loss_grad(original, augment(X), y, r, 0.05, 50.0, 3)[0]
    assert logistic_loss_grad(theta, *args)[0] == pytest.approx(f_orig, rel=1e-12)


def test_logistic_converges_on_ill_conditioned_features():
    # feature scales spread over 1e4 with an offset (as embeddings): the
    # preconditioned L-BFGS converges and matches scikit-learn's exact Newton solver
    rng = np.random.default_rng(25)
    n, d = 400, 30
    y = (rng.random(n) < 0.3).astype(int)
    X = (rng.normal(size=(n, d)) + 0.8 * y[:, None]) * np.logspace(0, -4, d) + 5.0
    r = np.ones(n)
    for alpha in (1e-2, 1e-6):
        sol = solve_logistic(X, y, 2, r, alpha, tol=1e-10)
        assert sol.converged and sol.n_iter < 1000
        sk = LogisticRegression(C=1.0 / (n * alpha), solver="newton-cholesky", tol=1e-14,
                                max_iter=1000).fit(X, y)
        w = sol.coef[:, 1] - sol.coef[:, 0]
        np.testing.assert_allclose(w, sk.coef_[0], rtol=1e-5, atol=1e-6 * np.abs(w).max())
        assert sol.intercept[1] - sol.intercept[0] == pytest.approx(sk.intercept_[0],
                                                                      rel=1e-5)


def test_binary_alo_hat_from_a_triangular_solve_equals_the_inverse():
    # two classes: x_i^T H^{-1} x_i by syrk + Cholesky + trsm against the explicit
    # inverse of the general K path
    from lastlayer._core.logistic import _binary_hat, _hat_blocks, augment

    X, y, r = logistic_problem(26, 80, 7, 2)
    Xa = augment(X)
    lr = np.random.default_rng(2).uniform(0.01, 0.25, 80)  # p (1 - p) of a fit
    fast = _binary_hat(Xa, r * lr, 2.0 * 0.03 * 80)
    ref = _hat_blocks(Xa, r, lr[:, None, None], 0.03, 80.0)[:, 0, 0]
    np.testing.assert_allclose(fast, ref, rtol=1e-10)
    # by hand: the penalised Hessian with an unpenalised intercept
    H = Xa.T @ (Xa * (r * lr)[:, None]) + np.diag(np.r_[np.full(7, 2 * 0.03 * 80), 0.0])
    np.testing.assert_allclose(fast, np.einsum("ia,ab,ib->i", Xa, np.linalg.inv(H), Xa),
                               rtol=1e-10)
    # saturated probabilities (zero curvature, no penalty): no factor, the caller
    # falls back to the pseudo-inverse
    assert _binary_hat(Xa, np.zeros(80), 0.0) is None


def _alo_inputs(seed, n, d, K, scale):
    """Rows, weights (some zero), probabilities of a random (not fitted) multinomial
    model and ``E`` of :func:`alo_cross_entropy`."""
    import scipy.linalg

    from lastlayer._core.logistic import augment, logsumexp_rows

    rng = np.random.default_rng(seed)
    Xa = augment(rng.normal(size=(n, d)))
    Z = Xa @ (scale * rng.normal(size=(d + 1, K)))
    P = np.exp(Z - logsumexp_rows(Z)[:, None])
    r = rng.uniform(0.2, 3.0, n)
    r[:3] = 0.0
    return Xa, r, P, scipy.linalg.null_space(np.ones((1, K)))


def _hat_by_kron(Xa, r, P, E, alpha, n_norm):
    """Independent reference: the Hessian on 1-perp from Kronecker products, its
    explicit inverse, and the (K-1, K-1) blocks J_i H^{-1} J_i^T."""
    n, p1 = Xa.shape
    H = sum(r[i] * np.kron(E.T @ (np.diag(P[i]) - np.outer(P[i], P[i])) @ E,
                           np.outer(Xa[i], Xa[i])) for i in range(n))
    pen = np.r_[np.full(p1 - 1, 2.0 * alpha * n_norm), 0.0]
    H += np.diag(np.tile(pen, E.shape[1]))  # (k, a) order: class-major
    Hinv = np.linalg.inv(H)
    J = [np.kron(np.eye(E.shape[1]), Xa[i][None]) for i in range(n)]
    return np.stack([Ji @ Hinv @ Ji.T for Ji in J])


@pytest.mark.parametrize("n,d,K,alpha", [(40, 5, 3, 1e-2), (30, 45, 4, 1e-3),
                                         (60, 12, 6, 1e-4), (25, 24, 8, 0.1)])
def test_class_block_alo_hat_equals_the_explicit_hessian(n, d, K, alpha):
    # the Woodbury form (one factorisation per class, an n-row capacitance) against
    # the Kronecker-built Hessian's explicit inverse and the library's other method
    from lastlayer._core.logistic import _class_block_hat, _hat_blocks

    Xa, r, P, E = _alo_inputs(n + K, n, d, K, 1.0)
    fast = _class_block_hat(Xa, r, P, E, alpha, float(n))
    ref = _hat_by_kron(Xa, r, P, E, alpha, float(n))
    scale = np.abs(ref).max()
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-8 * scale)
    k1 = K - 1
    Ep = P @ E
    Lr = (P @ (E[:, :, None] * E[:, None, :]).reshape(K, k1 * k1)).reshape(n, k1, k1)
    Lr -= Ep[:, :, None] * Ep[:, None, :]
    np.testing.assert_allclose(_hat_blocks(Xa, r, Lr, alpha, float(n)), ref, rtol=0,
                               atol=1e-8 * scale)


def test_class_block_alo_hat_gives_way_when_it_cannot_be_trusted():
    # no penalty (the common shifts of the coefficients are null) or saturated
    # probabilities (the capacitance's subtraction cancels): None, and the ALO
    # falls back to the explicit Hessian
    from lastlayer._core import logistic as lg

    Xa, r, P, E = _alo_inputs(3, 60, 20, 6, 30.0)  # probabilities down to 1e-249
    assert lg._class_block_hat(Xa, r, P, E, 0.0, 60.0) is None
    assert lg._class_block_hat(Xa, r, P, E, 1e-8, 60.0) is None
    Xa, r, P, E = _alo_inputs(4, 60, 20, 6, 1.0)
    assert lg._class_block_hat(Xa, r, P, E, 1e-3, 60.0) is not None


def test_alo_cross_entropy_is_the_same_by_either_hat_method():
    from lastlayer._core import logistic as lg

    X, y, r = logistic_problem(31, 90, 40, 7)
    sol = solve_logistic(X, y, 7, r, 1e-3, tol=1e-10)
    Theta = np.vstack([sol.coef, sol.intercept])
    out = {m: lg.alo_cross_entropy(lg.augment(X), y, r, 1e-3, 90.0, 7, Theta,
                                   return_logits=True, hat=m)
           for m in ("hessian", "class_blocks")}
    np.testing.assert_allclose(out["class_blocks"][2], out["hessian"][2], rtol=1e-9)
    assert out["class_blocks"][0] == pytest.approx(out["hessian"][0], rel=1e-10)


def test_hat_method_picks_the_cheaper_count():
    from lastlayer._core.logistic import hat_flops, hat_method

    # 20 classes, 200 rows in a 201-column row space: 1.2e9 against 1.2e11 flops
    f = hat_flops(200, 201, 20)
    assert f["class_blocks"] < f["hessian"] / 40 and hat_method(200, 201, 20) == "class_blocks"
    # many rows, few columns: the (K-1) p1-wide Hessian is small
    assert hat_method(500, 9, 10) == "hessian"


def _linearly_separable(X, y):
    """Independent reference: is there (w, b) with y_i (w^T x_i + b) >= 1 for every row
    (labels 0/1)? A feasibility linear programme."""
    from scipy.optimize import linprog

    s = 2.0 * y - 1.0
    A = -s[:, None] * np.column_stack([X, np.ones(len(y))])
    res = linprog(np.zeros(X.shape[1] + 1), A_ub=A, b_ub=-np.ones(len(y)),
                  bounds=[(None, None)] * (X.shape[1] + 1), method="highs")
    return res.status == 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unpenalised_logistic_reports_separable_rows_as_not_converged(seed):
    # alpha = 0: separable rows have no minimiser, so the solver must not say it
    # converged; rows that are not separable have one (scikit-learn's, unpenalised)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 4))
    y_sep = (X[:, 0] + 0.5 * X[:, 1] > 0.2).astype(int)
    y_noisy = (X[:, 0] + 1.5 * rng.normal(size=60) > 0).astype(int)
    assert _linearly_separable(X, y_sep) and not _linearly_separable(X, y_noisy)
    sep = solve_logistic(X, y_sep, 2, np.ones(60), 0.0)
    assert not sep.converged
    ok = solve_logistic(X, y_noisy, 2, np.ones(60), 0.0, tol=1e-10)
    assert ok.converged
    sk = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-14,
                            max_iter=1000).fit(X, y_noisy)
    np.testing.assert_allclose(ok.coef[:, 1] - ok.coef[:, 0], sk.coef_[0], rtol=1e-5,
                               atol=1e-7)
    # three classes, separable by construction: not converged either
    y3 = np.digitize(X[:, 0], [-0.5, 0.5])
    assert not solve_logistic(X, y3, 3, np.ones(60), 0.0).converged
    # a row of weight 0 on the wrong side does not make the weighted rows inseparable
    y_flip = y_sep.copy()
    y_flip[0] = 1 - y_flip[0]
    r = np.ones(60)
    r[0] = 0.0
    assert not solve_logistic(X, y_flip, 2, r, 0.0).converged
    assert solve_logistic(X, y_flip, 2, r, 0.1).converged
