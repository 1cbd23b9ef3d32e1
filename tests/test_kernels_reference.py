"""The faster kernels of issue 14 against the kernels they replace, on random problems.

The row-space reduction (``n < d``: every fit in the span of the rows), the blocked
in-memory leave-one-out from the statistics' eigendecomposition (``d <= n``) and the
in-place finishing of the statistics change the arithmetic, not the result: each is
compared here with the code it replaced (kept below, or still in the library as the
general-purpose kernel) to 1e-8 relative.
"""

import numpy as np
import pytest

from lastlayer._core.loo import loo_partial, loo_path, loo_plan
from lastlayer._core.ridge import ridge, ridge_dual, weighted_rows
from lastlayer._core.rowspace import lift, project, row_space
from lastlayer._core.stats import accumulate, centre_stats
from lastlayer.paths import TwoUnitWeightPath


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def problem(seed, n, d, J=3, zero_weights=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * np.linspace(2.0, 0.1, d) + 3.0
    cells = np.arange(n) % J
    rng.shuffle(cells)
    s = rng.uniform(0.5, 2.0, n)
    if zero_weights:
        s[:3] = 0.0
    omega = rng.uniform(0.5, 3.0, J)
    T = np.eye(J)
    return X, cells, s, omega, T


def old_finish(grams, sums, N, centre):
    """StatsAccumulator.result before issue 14 (copies, np.tril, outer products)."""
    grams = grams.copy()
    for j in range(grams.shape[0]):
        low = np.tril(grams[j])
        grams[j] = low + np.tril(low, -1).T
    if centre is not None:
        c = centre.astype(np.float64)
        cm = c[None, :, None] * sums[:, None, :]
        grams = grams + cm + cm.transpose(0, 2, 1) + N[:, None, None] * np.outer(c, c)
        sums = sums + N[:, None] * c
    return sums, grams


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("zero_weights", [False, True])
def test_row_space_ridge_equals_dual_ridge(seed, zero_weights):
    """n < d: r-space statistics + Cholesky + lift == the n x n dual solver."""
    n, d = 40 + seed, 70
    X, cells, s, omega, T = problem(seed, n, d, zero_weights=zero_weights)
    space = row_space(X, s)
    assert space.coords.shape[1] <= n - 1
    stats_r = accumulate(space.coords, cells, 3, s, 1000, "float64")
    for alpha in (1e-6, 1e-3, 0.3):
        old = ridge_dual(weighted_rows(X, cells, omega, T, s), 3, alpha)
        new = ridge(stats_r, omega, alpha, T)
        W, b = lift(space, new.coef, new.intercept)
        assert rel(W, old.coef) < 1e-8
        assert rel(b, old.intercept) < 1e-8
        assert rel(new.cell_leverage, old.cell_leverage) < 1e-8
        assert abs(new.df - old.df) < 1e-8 * old.df
    # rows given later (validation) land on the same predictions
    Z = np.random.default_rng(seed).normal(size=(5, d)) + 3.0
    new = ridge(stats_r, omega, 1e-3, T)
    W, b = lift(space, new.coef, new.intercept)
    assert rel(project(space, Z) @ new.coef + new.intercept, Z @ W + b) < 1e-8


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_row_space_blocks_equal_whole_products(dtype):
    # lift, project and the weighted mean read X in blocks of block_rows (at most a
    # quarter of the rows): against the same products on the whole float64 array
    from lastlayer._core.rowspace import weighted_mean
    from lastlayer._core.stats import block_rows

    n, d = 1100, 1200
    assert block_rows(n, d) < n  # several blocks
    X, _, s, _, _ = problem(3, n, d)
    X = X.astype(dtype)
    Xd = X.astype(np.float64)
    assert rel(weighted_mean(X, s), s @ Xd / s.sum()) < 1e-12
    space = row_space(X, s)
    rng = np.random.default_rng(0)
    M = space.M_rows(0, n)
    # Q = (X - c)^T M is orthonormal, and the coordinates are Q^T (x_i - c) (to the
    # float32 kernel's accuracy for float32 rows)
    Q = (Xd - space.shift).T @ M
    tol = 1e-8 if dtype == np.float64 else 1e-3
    assert rel(Q.T @ Q, np.eye(M.shape[1])) < tol
    assert rel((Xd - space.shift) @ Q, space.coords) < tol
    W_r, b_r = rng.normal(size=(M.shape[1], 3)), rng.normal(size=3)
    W, b = lift(space, W_r, b_r)
    W_ref = (Xd - space.shift).T @ (M @ W_r)
    assert rel(W, W_ref) < 1e-10
    assert rel(b, b_r - W_ref.T @ space.shift) < 1e-10
    Z = rng.normal(size=(7, d)) + 3.0
    ref = (Z - space.shift) @ (Xd - space.shift).T @ M
    assert rel(project(space, Z), ref) < 1e-10


@pytest.mark.parametrize("seed", range(3))
def test_row_space_two_unit_path_equals_feature_space(seed):
    n, d = 36, 60
    X, cells, s, omega, T = problem(seed, n, d, J=2)
    space = row_space(X, s)
    stats_d = accumulate(X, cells, 2, s, 1000, "float64")
    stats_r = accumulate(space.coords, cells, 2, s, 1000, "float64")
    for alpha in (1e-4, 0.1):
        old = TwoUnitWeightPath(stats_d, [0, 1], T, alpha)
        new = TwoUnitWeightPath(stats_r, [0, 1], T, alpha)
        for rho in (0.2, 1.0, 7.0):
            assert rel(new.leverage(rho)[0], old.leverage(rho)[0]) < 1e-8
            so, sn = old.solve(rho), new.solve(rho)
            W, b = lift(space, sn.coef, sn.intercept)
            assert rel(W, so.coef) < 1e-8 and rel(b, so.intercept) < 1e-8
        r_old, _ = old.equal_share_ratio((0.5, 0.5))
        r_new, _ = new.equal_share_ratio((0.5, 0.5))
        assert abs(r_new - r_old) < 1e-8 * r_old


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("n", [60, 400])
def test_blocked_loo_equals_loo_path(seed, n):
    """d <= n: the blocked pass of the in-memory fit == the row-matrix loo_path."""
    d = 25
    X, cells, s, omega, T = problem(seed, n, d, zero_weights=True)
    alphas = np.logspace(-6, 1, 15)
    stats = accumulate(X, cells, 3, s, 1000, "float64")
    rows = weighted_rows(X, cells, omega, T, s)
    old = loo_path(rows, alphas, centre_stats(stats, omega, np.zeros((3, 1))).C)
    plan, df = loo_plan(stats, omega, T, alphas, int(np.count_nonzero(s > 0)))
    sq, bad = loo_partial(X, cells, s, plan)
    new = np.where(bad, np.inf, sq / plan.V)
    assert rel(new, old["loo_mse"]) < 1e-8
    assert rel(df, old["df"]) < 1e-12


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_statistics_finished_in_place_equal_old_finish(precision):
    rng = np.random.default_rng(5)
    X = (rng.normal(size=(500, 40)) + 2.0).astype(precision)
    cells, s = rng.integers(0, 4, 500), rng.uniform(0.0, 2.0, 500)
    from lastlayer._core.stats import StatsAccumulator

    acc = StatsAccumulator(4, 40, precision)
    acc.add(X, cells, s)
    raw_grams, raw_sums = acc.grams.copy(), acc.sums.copy()
    centre = acc.centre if precision == "float32" else None
    sums_old, grams_old = old_finish(raw_grams, raw_sums, acc.weight_sums, centre)
    new = acc.result()
    assert rel(new.grams, grams_old) < 1e-12
    assert rel(new.sums, sums_old) < 1e-12
    assert np.array_equal(new.grams, new.grams.transpose(0, 2, 1))


@pytest.mark.parametrize("n, d, K, dtype", [(120, 30, 2, np.float64), (60, 90, 2, np.float32),
                                            (150, 20, 3, np.float32), (700, 40, 4, np.float64)])
def test_shared_spectra_change_nothing(monkeypatch, n, d, K, dtype):
    # The selection layer's candidates share eigendecompositions and alpha choices
    # (RidgeOracle.spectra, keyed by the cell weights): with every lookup missing
    # (a fresh key per call) the fit must be the same to 1e-10.
    import itertools

    from lastlayer import LastLayerClassifier
    from lastlayer import _fit

    rng = np.random.default_rng(n + d + K)
    y = np.repeat(np.arange(K), np.maximum(4, (n * 0.6 ** np.arange(K)).astype(int) // 2))
    X = (rng.normal(size=(y.size, d)) + y[:, None] * 0.3).astype(dtype)
    shared = LastLayerClassifier().fit(X, y)
    fresh = itertools.count()
    monkeypatch.setattr(_fit, "_weights_key", lambda w: next(fresh))
    alone = LastLayerClassifier().fit(X, y)
    assert [r["candidate"] for r in shared.selection_] == [r["candidate"] for r in alone.selection_]
    for a, b in zip(shared.selection_, alone.selection_):
        assert a["alpha"] == pytest.approx(b["alpha"], rel=1e-10)
        assert a["estimate"] == pytest.approx(b["estimate"], rel=1e-10)
    assert rel(shared.coef_, alone.coef_) < 1e-10
    assert rel(shared.intercept_, alone.intercept_) < 1e-10
    np.testing.assert_allclose(shared.loo_class_accuracy_, alone.loo_class_accuracy_,
                               rtol=1e-10)


@pytest.mark.parametrize("n, d, J", [(200, 12, 2), (150, 10, 4), (40, 60, 2)])
def test_two_unit_path_loo_decisions_equal_the_exact_ones(n, d, J):
    # the weight path's factorisation gives the exact leave-one-out decisions of the
    # fit at any ratio: against loo_path on the weighted rows (tall and wide, two
    # cells per unit, zero sample weights)
    X, cells, s, _, T = problem(11 + J, n, d, J=J, zero_weights=True)
    unit = np.arange(J) % 2
    stats = accumulate(X, cells, J, s, 65536, "float64")
    alpha, rho = 0.05, 2.7
    path = TwoUnitWeightPath(stats, unit, T, alpha)
    got = path.loo_decisions(X, cells, s, rho)
    omega = path.cell_weights(rho)
    rows = weighted_rows(X, cells, omega, T, s)
    ref = loo_path(rows, np.array([alpha]), return_decision=True)["loo_decision"][0]
    assert rel(got, ref) < 1e-8
    got32 = path.loo_decisions(X.astype(np.float32), cells, s, rho, np.float32)
    assert rel(got32, ref) < 1e-4


def test_two_unit_path_loo_decisions_check_their_rows():
    X, cells, s, _, T = problem(3, 50, 5, J=2)
    path = TwoUnitWeightPath(accumulate(X, cells, 2, s, 65536, "float64"), [0, 1], T, 0.1)
    with pytest.raises(ValueError, match="'X' parameter must be a 2-D array with 5 columns"):
        path.loo_decisions(X[:, :4], cells, s, 1.0)
    with pytest.raises(ValueError, match="'cells' parameter must hold one integer cell"):
        path.loo_decisions(X, cells + 1, s, 1.0)
    with pytest.raises(ValueError, match="'sample_weight' parameter"):
        path.loo_decisions(X, cells, -s, 1.0)


# ---------------------------------------------------------------- cells held as rows


@pytest.mark.parametrize("precision, tol", [("float64", 1e-11), ("float32", 2e-5)])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n", [300, 25])  # traces via the Cholesky factor (n >= 2 d) or not
def test_cell_rows_equal_the_dense_gram_matrices(precision, tol, weighted, n):
    # every read of the per-cell Gram matrices (weighted sums, centred traces against
    # a matrix, projected squares, diagonals), from the rows against the J d x d arrays
    from lastlayer._core.stats import (cell_leverage, cell_squares, gram_diagonals,
                                       row_statistics, weighted_gram)

    J = 9
    X, cells, s, omega, T = problem(5, n, 17, J=J, zero_weights=True)
    s = s if weighted else None
    X = X.astype(np.float32) if precision == "float32" else X
    dense = accumulate(X.astype(np.float64), cells, J, s, 65536, "float64")
    rows = row_statistics(X, cells, J, s, precision)
    assert rows.grams.shape == dense.grams.shape
    np.testing.assert_array_equal(rows.n_rows, dense.n_rows)
    assert rel(rows.weight_sums, dense.weight_sums) < 1e-14
    assert rel(rows.sums, dense.sums) < 1e-12
    assert rel(weighted_gram(rows, omega), np.tensordot(omega, dense.grams, axes=1)) < tol
    cen_d, cen_r = centre_stats(dense, omega, T), centre_stats(rows, omega, T)
    assert rel(cen_r.C, cen_d.C) < tol * 10  # centring cancels the offset of 3
    B = np.linalg.inv(cen_d.C + 0.1 * cen_d.n * np.eye(17))
    assert rel(cell_leverage(rows, omega, cen_d, B), cell_leverage(dense, omega, cen_d, B)) < tol
    rng = np.random.default_rng(0)
    Q, q0 = rng.normal(size=(17, 6)), rng.normal(size=6)
    assert rel(cell_squares(rows, cen_d.mu, Q, q0), cell_squares(dense, cen_d.mu, Q, q0)) < tol
    # the dense kernel itself against the rows by hand
    Y = (X.astype(np.float64) - cen_d.mu) @ Q + q0
    w = np.ones(len(X)) if s is None else s
    ref = np.stack([(w[cells == j, None] * Y[cells == j] ** 2).sum(axis=0) for j in range(J)])
    assert rel(cell_squares(dense, cen_d.mu, Q, q0), ref) < 1e-10
    assert rel(gram_diagonals(rows), np.einsum("jii->ji", dense.grams)) < 1e-12


#: The in-memory layouts of the per-cell Gram matrices (the plan's "cell_grams").
LAYOUTS = ("rows", "packed", "dense")


def force_layout(monkeypatch, layout):
    from lastlayer import _fit

    monkeypatch.setattr(_fit, "CELL_ROWS_RATIO", 0 if layout == "rows" else 10**9)
    monkeypatch.setattr(_fit, "CELL_ROWS_MIN_CELLS", 0)
    monkeypatch.setattr(_fit, "CELL_GRAMS_PACKED", layout == "packed")


@pytest.mark.parametrize("precision", ["float64", "float32"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("chunk", [65536, 70])  # one chunk, or cells spread over chunks
def test_packed_statistics_equal_the_dense_ones(precision, weighted, chunk):
    # the packed accumulation gives every Gram entry bitwise (the same ?syrk blocks in
    # the same order); each reader against the J d x d arrays, and against numpy by hand
    from lastlayer._core.stats import (cell_leverage, cell_squares, gram_diagonals,
                                       packed_statistics, weighted_gram)

    J, d = 5, 23
    X, cells, s, omega, T = problem(11, 400, d, J=J, zero_weights=True)
    s = s if weighted else None
    X = X.astype(np.float32) if precision == "float32" else X
    dense = accumulate(X, cells, J, s, chunk, precision)
    packed = packed_statistics(X, cells, J, s, chunk, precision)
    g = packed.grams
    assert g.shape == dense.grams.shape and g.values.shape == (J, d * (d + 1) // 2)
    np.testing.assert_array_equal(np.stack([g.matrix(v) for v in g.values]), dense.grams)
    for a, b in zip(packed[:3], dense[:3]):
        np.testing.assert_array_equal(a, b)
    # the statistics themselves, by hand
    w = np.ones(len(X)) if s is None else s
    Xd = X.astype(np.float64)
    ref = np.stack([(w[cells == j, None] * Xd[cells == j]).T @ Xd[cells == j] for j in range(J)])
    assert rel(dense.grams, ref) < (1e-13 if precision == "float64" else 1e-6)
    assert rel(weighted_gram(packed, omega), np.tensordot(omega, ref, axes=1)) < (
        1e-13 if precision == "float64" else 1e-6)
    cen = centre_stats(dense, omega, T)
    B = np.linalg.inv(cen.C + 0.1 * cen.n * np.eye(d))
    assert rel(cell_leverage(packed, omega, cen, B), cell_leverage(dense, omega, cen, B)) < 1e-12
    Xc = Xd - cen.mu
    trace = np.array([np.einsum("i,ia,ab,ib->", w[cells == j], Xc[cells == j], B, Xc[cells == j])
                      for j in range(J)])
    by_hand = omega * (dense.weight_sums / cen.V + trace)
    assert rel(cell_leverage(packed, omega, cen, B), by_hand) < (
        1e-11 if precision == "float64" else 1e-5)
    rng = np.random.default_rng(1)
    Q, q0 = rng.normal(size=(d, 4)), rng.normal(size=4)
    Y = Xc @ Q + q0
    ref_sq = np.stack([(w[cells == j, None] * Y[cells == j] ** 2).sum(axis=0) for j in range(J)])
    tol = 1e-10 if precision == "float64" else 1e-5
    assert rel(cell_squares(packed, cen.mu, Q, q0), ref_sq) < tol
    assert rel(cell_squares(dense, cen.mu, Q, q0), ref_sq) < tol
    np.testing.assert_array_equal(gram_diagonals(packed), gram_diagonals(dense))


@pytest.mark.parametrize("n, d, K, groups, dtype", [
    (400, 30, 12, False, np.float64),   # K > 2 optimal iteration, n > d
    (90, 120, 5, False, np.float64),    # n < d: the row space's coordinates as rows
    (300, 20, 2, True, np.float64),     # two units of several cells: the weight path
    (600, 24, 16, False, np.float32),   # float32 products
])
def test_fits_with_cells_as_rows_or_packed_equal_dense_fits(monkeypatch, n, d, K, groups, dtype):
    # the plan's cell_grams "rows" and "packed" against "dense" on the same data: the
    # default (selection) and the old default, same choices and coefficients
    from lastlayer import LastLayerClassifier

    rng = np.random.default_rng(n + K)
    y = rng.choice(K, size=n, p=np.r_[0.4, np.full(K - 1, 0.6 / (K - 1))])
    X = (rng.normal(size=(n, d)) + 0.8 * np.eye(K, d)[y] * np.sqrt(d) / 3 + 2.0).astype(dtype)
    g = rng.integers(0, 4, n) if groups else None
    fits = {}
    for layout in LAYOUTS:
        force_layout(monkeypatch, layout)
        for weighting in ("auto", "optimal"):
            m = LastLayerClassifier(weighting=weighting,
                                    loss="auto" if weighting == "auto" else "square")
            fits[layout, weighting] = m.fit(X, y, groups=g)
            assert m.plan_["cell_grams"] == layout
    for layout, tol in (("rows", 1e-8 if dtype == np.float64 else 2e-3), ("packed", 1e-10)):
        for weighting in ("auto", "optimal"):
            a, b = fits[layout, weighting], fits["dense", weighting]
            assert a.weighting_ == b.weighting_ and a.loss_ == b.loss_
            assert a.alpha_ == pytest.approx(b.alpha_, rel=tol)
            assert rel(a.class_weight_, b.class_weight_) < tol
            assert rel(a.coef_, b.coef_) < tol
            assert rel(a.intercept_, b.intercept_) < tol


@pytest.mark.parametrize("n, d, J, layout", [
    (10_000, 512, 100, "rows"),     # 100 cells: the arrays would be 10x the rows
    (10_000, 2_048, 5, "packed"),   # few cells, arrays about the size of the rows
    (1_000, 2_048, 5, "packed"),    # n < d, few cells: r x r arrays are cheaper
    (1_000, 2_048, 20, "rows"),     # n < d, many cells
    (5_000, 4_096, 8, "packed"),    # few cells, 1 GiB of arrays: under the 4 GiB cap
    (20_000, 8_192, 12, "rows"),    # few cells, 6 GiB of arrays: over the cap
    (100_000, 512, 100, "packed"),  # many cells, but the rows are the larger
])
def test_cell_layout_rule(n, d, J, layout):
    from lastlayer._fit import cell_layout

    assert cell_layout(n, d, J) == layout


@pytest.mark.parametrize("weighting", ["downsample", "tuned", "balanced", "optimal"])
def test_cells_as_rows_with_subsets_folds_and_sample_weights(monkeypatch, weighting):
    # the subset fits of downsample, tuned's folds and sample weights read the cells'
    # Gram matrices too: rows against dense to 1e-8 (float64)
    from lastlayer import LastLayerClassifier

    rng = np.random.default_rng(7)
    n, d, K = 360, 12, 6
    y = rng.choice(K, size=n, p=np.r_[0.5, np.full(K - 1, 0.1)])
    X = rng.normal(size=(n, d)) + 0.9 * np.eye(K, d)[y] + 1.0
    sw = rng.uniform(0.5, 2.0, n)
    fits = {}
    for layout in LAYOUTS:
        force_layout(monkeypatch, layout)
        m = LastLayerClassifier(weighting=weighting, loss="square", random_state=0)
        fits[layout] = m.fit(X, y, sample_weight=sw)
        assert m.plan_["cell_grams"] == layout
    for layout in ("rows", "packed"):
        a, b = fits[layout], fits["dense"]
        assert a.alpha_ == pytest.approx(b.alpha_, rel=1e-8)
        assert rel(a.class_weight_, b.class_weight_) < 1e-8
        assert rel(a.coef_, b.coef_) < 1e-8
        assert rel(a.intercept_, b.intercept_) < 1e-8


def test_cell_rows_memo_returns_fresh_copies():
    # weighted Gram matrices of weights seen before come from the memo: equal values,
    # and a caller that centres its matrix in place does not change the kept one
    from lastlayer._core.stats import row_statistics, weighted_gram

    X, cells, s, omega, T = problem(6, 400, 5, J=4)
    rows = row_statistics(X, cells, 4, s, "float64")
    first = weighted_gram(rows, omega)
    ref = first.copy()
    first -= 1e3  # as centre_stats does, in place
    again = weighted_gram(rows, omega)
    np.testing.assert_array_equal(again, ref)
    assert len(rows.grams.memo) == 1
    for k in range(3):  # at most two kept, the oldest dropped
        weighted_gram(rows, omega * (k + 2))
    assert len(rows.grams.memo) == 2
    np.testing.assert_array_equal(weighted_gram(rows, omega), ref)


# ------------------------------------------------ sixth round: the two-unit path's memory


def old_generalised_eigh(aug, alpha, n_u):
    """paths._generalised_eigh before the sixth round: divide and conquer (its 2 p^2
    workspace) with the Cholesky factor kept, from the unit Gram matrices as given."""
    import scipy.linalg

    p = aug[0].shape[0]
    diag = np.arange(p - 1), np.arange(p - 1)
    B1, S = aug[1].copy(), aug[0].copy()
    B1[diag] += alpha * n_u[1]
    S[diag] += alpha * n_u[0]
    S += B1
    dsc = 1.0 / np.sqrt(np.diag(S))
    B1 *= np.outer(dsc, dsc)
    S *= np.outer(dsc, dsc)
    U = scipy.linalg.cholesky(S)
    C = scipy.linalg.solve_triangular(U, scipy.linalg.solve_triangular(U, B1, trans=1).T,
                                      trans=1).T
    lam, Z = scipy.linalg.eigh(C, driver="evd")
    return lam, scipy.linalg.solve_triangular(U, Z) * dsc[:, None]


@pytest.mark.parametrize("layout", ["dense", "packed", "rows"])
@pytest.mark.parametrize("J", [2, 5])
def test_augmented_unit_grams_equal_the_old_construction(layout, J):
    # each unit's Gram written straight into its augmented matrix (the shift's rank-2
    # update by rows on the corner view) against _unit_gram into a new array + _augmented
    from lastlayer._core.stats import packed_statistics, row_statistics
    from lastlayer.paths import _augmented, _augmented_unit, _unit_gram

    X, cells, s, _, _ = problem(21 + J, 300, 17, J=J)
    stats = {"dense": accumulate(X, cells, J, s, 65536, "float64"),
             "packed": packed_statistics(X, cells, J, s, 65536, "float64"),
             "rows": row_statistics(X, cells, J, s, "float64")}[layout]
    shift = X.mean(axis=0) + 0.3
    for sel in (np.arange(J) % 2 == 0, np.arange(J) % 2 == 1, np.ones(J, dtype=bool)):
        sums = (stats.sums[sel] - stats.weight_sums[sel, None] * shift).sum(axis=0)
        count = stats.weight_sums[sel].sum()
        new = _augmented_unit(stats, sel, shift, sums, count)
        old = _augmented(_unit_gram(stats, sel, shift), sums, count)
        assert rel(new, old) < 1e-12
        np.testing.assert_array_equal(new, new.T)


def test_packed_combine_and_weigh_equal_the_packed_vector_products():
    from lastlayer._core.stats import packed_statistics

    rng = np.random.default_rng(3)
    for n, d, J in [(500, 300, 3), (200, 517, 5), (40, 7, 2)]:
        X = rng.normal(size=(n, d))
        st = packed_statistics(X, rng.integers(0, J, n), J, None, 65536, "float64")
        g, omega = st.grams, rng.uniform(0.5, 2.0, J)
        ref = g.matrix(omega @ g.values)
        got = g.combine(omega)
        assert rel(got, ref) < 1e-14
        np.testing.assert_array_equal(got, got.T)
        out = np.full((d + 2, d + 2), np.nan)
        g.combine(omega, out=out[1:-1, 1:-1])  # a view: the corner of a larger matrix
        np.testing.assert_array_equal(out[1:-1, 1:-1], got)
        assert np.isnan(out[0]).all() and np.isnan(out[:, -1]).all()
        B = rng.normal(size=(d, d))
        B += B.T
        assert rel(g.weigh(B, block=64), g.values @ g.pack(B, np.empty(g.values.shape[1]),
                                                             symmetrise=True)) < 1e-13


@pytest.mark.parametrize("rank2", [False, True])
def test_symmetric_update_of_a_view_equals_the_blas_update(rank2):
    # a corner view (not C-contiguous: BLAS would update a copy) by blocks of rows
    from lastlayer._core.stats import symmetric_update

    rng = np.random.default_rng(4)
    A = rng.normal(size=(300, 300))
    A += A.T
    a, b = rng.normal(size=300), (rng.normal(size=300) if rank2 else None)
    ref = symmetric_update(A.copy(), -0.7, a, b)
    big = np.zeros((301, 301))
    big[:-1, :-1] = A
    got = symmetric_update(big[:-1, :-1], -0.7, a, b, block=64)
    assert rel(got, ref) < 1e-14
    np.testing.assert_array_equal(got, got.T)  # exactly symmetric
    assert not big[-1].any() and not big[:, -1].any()


@pytest.mark.parametrize("lean", [False, True])
@pytest.mark.parametrize("n, d, J, alpha", [(300, 20, 2, 0.05), (300, 20, 4, 0.3),
                                            (40, 60, 2, 0.05), (200, 12, 2, 0.0)])
def test_two_unit_path_equals_the_old_eigensolver(monkeypatch, lean, n, d, J, alpha):
    # the path from its unit Grams written into the augmented matrices, with divide
    # and conquer or (lean: as above LEAN_EIGEN_BYTES) MRRR and the factor made anew
    # from both units' Gram (kept packed for the reduced and alpha = 0 problems),
    # against the old construction and eigensolver: the path's leverages,
    # coefficients and decisions at several ratios to 1e-8
    import lastlayer.paths as paths

    made = []
    monkeypatch.setattr(paths, "LEAN_EIGEN_BYTES", 0 if lean else 2**62)
    inner = paths._generalised_eigh
    monkeypatch.setattr(paths, "_generalised_eigh", lambda *a: made.append(a[3]) or inner(*a))
    X, cells, s, _, T = problem(31 + J, n, d, J=J)
    stats = accumulate(X, cells, J, s, 65536, "float64")
    unit = np.arange(J) % 2
    new = TwoUnitWeightPath(stats, unit, T, alpha)
    assert (made[0] is not None) == (lean and n > d and alpha > 0)
    monkeypatch.setattr(paths, "_generalised_eigh",
                        lambda aug, a, n_u, total=None: old_generalised_eigh(aug, a, n_u))
    old = TwoUnitWeightPath(stats, unit, T, alpha)
    assert rel(new.eigenvalues, old.eigenvalues) < 1e-10
    for rho in (0.3, 1.0, 4.0):
        assert rel(new.leverage(rho)[0], old.leverage(rho)[0]) < 1e-8
        a, b = new.solve(rho), old.solve(rho)
        assert rel(a.coef, b.coef) < 1e-8 and rel(a.intercept, b.intercept) < 1e-8
        assert rel(new.loo_decisions(X, cells, s, rho), old.loo_decisions(X, cells, s, rho)) < 1e-8


@pytest.mark.parametrize("n, d, groups", [(900, 120, False), (400, 60, True), (120, 200, False)])
def test_no_eigendecomposition_is_held_while_a_weight_path_is_built(monkeypatch, n, d, groups):
    # the selection layer fits the candidates that read the start weights'
    # eigendecomposition first and lets every kept one go before a two-unit path is
    # built, and a path goes before an eigendecomposition at its weights is made (in
    # the row space too, n < d); that costs no eigendecomposition over keeping every
    # one, and the fit is the same as with the candidates in their listed order
    import weakref

    from lastlayer import LastLayerClassifier, _fit, _select, paths

    rng = np.random.default_rng(n + d)
    y = (rng.random(n) < 0.2).astype(int)
    g = (rng.random(n) < 0.3).astype(int) if groups else None
    X = (rng.normal(size=(n, d)) + 0.8 * np.eye(2, d)[y] + 1.0).astype(np.float32)
    eigvecs, held = [], []  # weak references to every eigendecomposition's vectors
    built, beside = [], []  # ... and to every weight path
    outer, inner = _fit.centred_eigh, paths._generalised_eigh

    def made(*args):
        beside.append(sum(r() is not None for r in built))
        out = outer(*args)
        eigvecs.append(weakref.ref(out.Q))
        return out

    class Watched(paths.TwoUnitWeightPath):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(weakref.ref(self))

    def watched(*args, **kwargs):
        held.append(sum(r() is not None for r in eigvecs))
        return inner(*args, **kwargs)

    monkeypatch.setattr(_fit, "centred_eigh", made)
    monkeypatch.setattr(paths, "_generalised_eigh", watched)
    monkeypatch.setattr(paths, "TwoUnitWeightPath", Watched)
    m = LastLayerClassifier().fit(X, y, groups=g)
    assert m.selection_[0]["candidate"] == "square/optimal"
    assert held and eigvecs and max(held) == 0  # no eigendecomposition beside a path
    assert built and max(beside) == 0  # no path beside an eigendecomposition
    n_made = len(eigvecs)
    eigvecs.clear()
    monkeypatch.setattr(_fit, "KEPT_SPECTRA", 10**6)  # every one kept
    monkeypatch.setattr(_fit.RidgeOracle, "forget", lambda self: None)
    monkeypatch.setattr(_select, "evaluation_order", lambda plans: range(len(plans)))
    listed = LastLayerClassifier().fit(X, y, groups=g)
    assert n_made == len(eigvecs)
    np.testing.assert_array_equal(m.coef_, listed.coef_)
    np.testing.assert_array_equal(m.intercept_, listed.intercept_)
    assert m.selection_ == listed.selection_


def test_evaluation_order_puts_optimal_candidates_last():
    from types import SimpleNamespace

    from lastlayer._select import evaluation_order

    plans = [SimpleNamespace(weighting=w) for w in
             ("optimal", "balanced", "power", "optimal", "none")]
    assert list(evaluation_order(plans)) == [1, 2, 4, 0, 3]
