"""The selection layer: its criterion, its choice and its leave-one-out estimates."""

import numpy as np
import pytest
import scipy.stats
from sklearn.linear_model import LogisticRegression

from lastlayer import LastLayerClassifier
from lastlayer._fit import prepare
from lastlayer._select import Evaluation, choose, criterion, margin_accuracy


def gaussian(counts, d, sep=1.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    mu = sep * rng.standard_normal((len(counts), d))
    return mu[y] + rng.standard_normal((y.size, d)), y


def test_margin_accuracy_is_the_gaussian_reading_of_the_margins():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(5, int), np.ones(40, int)]
    design = prepare(y, None, np.ones(y.size), None)
    scores = rng.standard_normal((y.size, 2)) + 0.8 * np.eye(2)[y]
    rows = np.bincount(y).astype(float)
    m = scores[np.arange(y.size), y] - scores[np.arange(y.size), 1 - y]
    mu = np.array([m[y == 0].mean(), m[y == 1].mean()])
    pooled = np.sqrt((((m[y == 0] - mu[0]) ** 2).sum() + ((m[y == 1] - mu[1]) ** 2).sum())
                     / (y.size - 2))
    np.testing.assert_allclose(margin_accuracy(scores, design, rows),
                               rows * scipy.stats.norm.cdf(mu / pooled), rtol=1e-12)
    # binary: the criterion is the worst shrunk margin accuracy
    est, hits, n = criterion(scores, design, "worst")
    acc = scipy.stats.norm.cdf(mu / pooled)
    assert est == pytest.approx(min((rows * acc + 1) / (rows + 2)))
    np.testing.assert_array_equal(hits, [np.sum((m > 0) & (y == k)) for k in (0, 1)])


def test_criterion_counts_with_more_classes():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], [4, 10, 20])
    design = prepare(y, None, np.ones(y.size), None)
    scores = rng.standard_normal((y.size, 3))
    right = scores.argmax(1) == y
    h = np.array([right[y == k].sum() for k in range(3)], float)
    n = np.array([4, 10, 20], float)
    assert criterion(scores, design, "worst")[0] == pytest.approx(((h + 1) / (n + 2)).min())
    assert criterion(scores, design, "balanced")[0] == pytest.approx(((h + 1) / (n + 2)).mean())


def test_choose_keeps_the_highest_estimate_and_the_earlier_on_ties():
    ev = lambda e: Evaluation(None, None, None, None, None, e)  # noqa: E731
    assert choose([ev(0.5), ev(0.7), ev(0.6)]) == 1
    assert choose([ev(0.7), ev(0.7), ev(0.6)]) == 0
    assert choose([ev(0.5), ev(float("nan")), ev(0.5)]) == 0


def test_square_loss_estimate_is_brute_force_leave_one_out():
    X, y = gaussian([12, 30, 50], 6, sep=0.8, seed=2)
    clf = LastLayerClassifier(weighting="balanced", loss="square", alpha=0.05).fit(X, y)
    n, K = y.size, 3
    w = clf.class_weight_[y]
    hits = np.zeros(K)
    for i in range(n):  # refit without row i, full-data penalty alpha n (the LOO convention)
        keep = np.arange(n) != i
        Xa = np.c_[X[keep], np.ones(n - 1)]
        R = np.eye(X.shape[1] + 1)
        R[-1, -1] = 0.0
        A = Xa.T @ (w[keep, None] * Xa) + 0.05 * n * R
        theta = np.linalg.solve(A, Xa.T @ (w[keep, None] * np.eye(K)[y[keep]]))
        hits[y[i]] += np.argmax(np.r_[X[i], 1.0] @ theta) == y[i]
    np.testing.assert_allclose(clf.loo_class_accuracy_, hits / np.bincount(y), atol=1e-12)


def test_logistic_estimate_is_close_to_refitting_without_each_row():
    X, y = gaussian([15, 45], 4, sep=0.7, seed=3)
    clf = LastLayerClassifier(weighting="balanced", loss="logistic", alpha=0.02).fit(X, y)
    n = y.size
    w = clf.class_weight_[y]
    pred = np.empty(n, int)
    for i in range(n):  # C = 1 / (2 alpha n) with the full-data normaliser
        keep = np.arange(n) != i
        ref = LogisticRegression(C=1 / (2 * 0.02 * n), tol=1e-10, max_iter=10000)
        ref.fit(X[keep], y[keep], sample_weight=w[keep])
        pred[i] = ref.predict(X[i:i + 1])[0]
    exact = np.array([np.mean(pred[y == k] == k) for k in (0, 1)])
    # ALO is one Newton step from the full fit: per-class accuracy within one row
    assert np.all(np.abs(clf.loo_class_accuracy_ - exact) <= 1.0 / np.bincount(y) + 1e-12)


def test_loss_auto_prefers_cross_entropy_where_square_loss_masks_a_class():
    # three classes on a line: with balanced weights one-hot least squares masks the
    # middle one (its leave-one-out accuracy is 0); loss="auto" must see it
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], [60, 60, 60])
    X = np.c_[2.5 * (y - 1.0), np.zeros(y.size)] + 0.5 * rng.standard_normal((y.size, 2))
    yt = np.repeat([0, 1, 2], 300)
    Xt = np.c_[2.5 * (yt - 1.0), np.zeros(yt.size)] + 0.5 * rng.standard_normal((yt.size, 2))
    auto = LastLayerClassifier(weighting="balanced").fit(X, y)
    square = LastLayerClassifier(weighting="balanced", loss="square").fit(X, y)
    worst = lambda c: min(np.mean(c.predict(Xt)[yt == k] == k) for k in range(3))  # noqa: E731
    assert auto.loss_ == "logistic"
    assert worst(auto) > worst(square) + 0.2
    kept = [r for r in auto.selection_ if r["kept"]]
    assert len(kept) == 1 and kept[0]["estimate"] == max(r["estimate"] for r in auto.selection_)


@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_blocked_loo_decisions_equal_the_row_path(alpha):
    # the statistics-and-blocks kernel against loo_path on the weighted rows (sample
    # weights with zeros: those rows get the full fit's prediction in both)
    from lastlayer._core.loo import loo_decisions, loo_path
    from lastlayer._core.ridge import weighted_rows
    from lastlayer.solvers import sufficient_statistics

    rng = np.random.default_rng(7)
    n, d, J = 300, 12, 3
    X = rng.standard_normal((n, d)) + 3.0
    cells = rng.integers(0, J, n)
    s = rng.random(n) * (rng.random(n) > 0.1)
    omega, T = np.array([2.0, 1.0, 0.5]), np.eye(J)
    stats = sufficient_statistics(X, cells, J, s)
    fast = loo_decisions(X, cells, omega, T, s, alpha, stats)
    rows = weighted_rows(X, cells, omega, T, s)
    from lastlayer._core.stats import centre_stats
    gram = centre_stats(stats, omega, np.zeros((J, 1))).C
    ref = loo_path(rows, np.array([alpha]), gram, return_decision=True)["loo_decision"][0]
    np.testing.assert_allclose(fast, ref, rtol=1e-8, atol=1e-10)


def test_float32_loo_decisions_match_float64_rows():
    # float32 features projected in float32 (offset 30x their spread): the decisions
    # agree with the float64 kernel on the same rows to float32 accuracy
    from lastlayer._core.loo import loo_decisions, loo_spectrum
    from lastlayer.solvers import sufficient_statistics

    rng = np.random.default_rng(3)
    n, d, J = 400, 20, 2
    X32 = (rng.standard_normal((n, d)) + 30.0).astype(np.float32)
    X64 = X32.astype(np.float64)
    cells = rng.integers(0, J, n)
    s, omega, T = np.ones(n), np.array([0.7, 2.5]), np.eye(J)
    stats = sufficient_statistics(X64, cells, J, s)
    spec = loo_spectrum(stats, omega, T, n)
    ref = loo_decisions(X64, cells, omega, T, s, 0.05, stats, spec)
    fast = loo_decisions(X32, cells, omega, T, s, 0.05, stats, spec, np.float32)
    assert np.abs(fast - ref).max() < 1e-4 * np.abs(ref).max()
    assert np.abs(fast - ref).max() > 0  # really computed in float32


def test_gcv_decisions_are_loo_with_average_leverages():
    # n >> d: the average-leverage decisions equal t - (t - f) / (1 - v df / V) with
    # (f, df) the weighted ridge fit computed independently with numpy, and stay within
    # the leverage spread of the exact leave-one-out decisions
    from lastlayer._core.loo import gcv_decisions, loo_decisions
    from lastlayer.solvers import sufficient_statistics

    rng = np.random.default_rng(5)
    n, d, J, alpha = 3000, 15, 3, 0.02
    X = rng.standard_normal((n, d)) + 2.0
    cells = rng.integers(0, J, n)
    s = rng.uniform(0.5, 1.5, n) * (rng.random(n) > 0.05)
    omega, T = np.array([0.5, 1.0, 3.0]), np.eye(J)
    v = s * omega[cells]
    # weighted ridge with an unpenalised intercept: (1/sum s) sum v ||t - W^T x - b||^2
    # + alpha ||W||^2, solved on the augmented normal equations
    Xa = np.hstack([X, np.ones((n, 1))])
    R = np.eye(d + 1)
    R[-1, -1] = 0.0
    A = Xa.T @ (v[:, None] * Xa) + alpha * s.sum() * R
    theta = np.linalg.solve(A, Xa.T @ (v[:, None] * T[cells]))
    W, b = theta[:-1], theta[-1]
    H_diag = v * np.einsum("ij,ji->i", Xa, np.linalg.solve(A, Xa.T))
    df = H_diag.sum()
    fit = X @ W + b
    t = T[cells]
    h_bar = v * df / v.sum()
    expect = np.where((v > 0)[:, None], t - (t - fit) / (1 - h_bar)[:, None], fit)
    got = gcv_decisions(X, cells, omega, T, s, W, b, df)
    np.testing.assert_allclose(got, expect, rtol=1e-10, atol=1e-12)
    exact = loo_decisions(X, cells, omega, T, s, alpha, sufficient_statistics(X, cells, J, s))
    bound = np.abs(t - fit) * (np.abs(1 / (1 - H_diag) - 1 / (1 - h_bar)))[:, None]
    assert np.all(np.abs(got - exact) <= bound + 1e-9)
    assert np.abs(got - exact).max() > 0  # not the exact decisions
    assert np.abs(got - exact).max() < 0.05 * np.abs(t - fit).max()  # h ~ d / n


def test_large_gcv_fits_score_with_average_leverages(monkeypatch):
    # Above EXACT_LOO_FLOPS (here lowered to 0) a fit whose alpha is chosen by GCV is
    # scored by gcv_decisions; its per-class leave-one-out accuracy stays within a
    # few rows of the exact one (leverages ~ d / n = 0.01)
    from lastlayer import LastLayerClassifier, _select

    rng = np.random.default_rng(2)
    n, d = 2000, 20
    y = (rng.random(n) < 0.15).astype(int)
    X = rng.normal(size=(n, d)) + 0.7 * y[:, None]
    exact = LastLayerClassifier(loss="square").fit(X, y)
    assert exact.plan_["alpha_criterion"] == "gcv"
    calls = []
    real = _select.gcv_decisions
    monkeypatch.setattr(_select, "gcv_decisions", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr(_select, "EXACT_LOO_FLOPS", 0)
    approx = LastLayerClassifier(loss="square").fit(X, y)
    assert len(calls) == len(approx.selection_) >= 1
    np.testing.assert_allclose(approx.loo_class_accuracy_, exact.loo_class_accuracy_,
                               atol=0.01)


def test_gcv_candidates_scored_in_one_pass_as_one_by_one(monkeypatch):
    # the default's square-loss candidates in the GCV regime are scored together in
    # one pass over the rows (gcv_decisions_many): the same decisions as one call of
    # gcv_decisions per candidate, so the same estimates and the same kept candidate
    from lastlayer import LastLayerClassifier, _select
    from lastlayer._core.loo import gcv_decisions, gcv_decisions_many

    rng = np.random.default_rng(3)
    n, d = 3000, 12
    y = rng.choice(3, size=n, p=[0.7, 0.2, 0.1])
    X = (rng.normal(size=(n, d)) + 0.8 * np.eye(3, d)[y]).astype(np.float32)
    T, cells, s = np.eye(3), y, rng.uniform(0.5, 1.5, n)
    fits = [(rng.uniform(0.5, 2.0, 3), rng.normal(size=(d, 3)), rng.normal(size=3), df)
            for df in (4.0, 9.5, 13.0)]
    together = gcv_decisions_many(X, cells, T, s, fits)
    for got, (omega, W, b, df) in zip(together, fits):
        np.testing.assert_array_equal(got, gcv_decisions(X, cells, omega, T, s, W, b, df))

    monkeypatch.setattr(_select, "EXACT_LOO_FLOPS", 0)
    batches = []
    real = _select.gcv_decisions_many
    monkeypatch.setattr(_select, "gcv_decisions_many",
                        lambda X, c, T, s, f: batches.append(len(f)) or real(X, c, T, s, f))
    batched = LastLayerClassifier().fit(X, y)
    assert batched.plan_["alpha_criterion"] == "gcv"
    n_square = sum(c["loss"] == "square" for c in batched.selection_)
    assert batches == [n_square] and n_square >= 2
    one_by_one = lambda X, c, T, s, f: [gcv_decisions(X, c, o, T, s, W, b, df)
                                         for o, W, b, df in f]
    monkeypatch.setattr(_select, "gcv_decisions_many", one_by_one)
    single = LastLayerClassifier().fit(X, y)
    assert batched.selection_ == single.selection_
    np.testing.assert_array_equal(batched.loo_class_accuracy_, single.loo_class_accuracy_)
    np.testing.assert_array_equal(batched.coef_, single.coef_)


def test_zero_target_classes_do_not_steer_the_choice():
    # target share 0: the class's accuracy is reported but left out of the worst and
    # the balanced estimate (the target says it does not occur at test time)
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], [30, 20, 10])
    scores = rng.standard_normal((y.size, 3)) + 1.5 * np.eye(3)[y]
    scores[y == 2, 2] -= 5.0  # class 2 is never predicted: its accuracy is 0
    with pytest.warns(Warning, match="share 0"):
        design = prepare(y, None, np.ones(y.size), {0: 0.5, 1: 0.5, 2: 0.0})
    pred = np.argmax(scores, axis=1)
    shrunk = [(np.sum(pred[y == k] == k) + 1) / (np.sum(y == k) + 2) for k in range(3)]
    assert shrunk[2] == pytest.approx(1 / 12)
    assert criterion(scores, design, "worst")[0] == pytest.approx(min(shrunk[:2]))
    assert criterion(scores, design, "balanced")[0] == pytest.approx(np.mean(shrunk[:2]))
    assert criterion(scores, design, "target")[0] == pytest.approx(0.5 * sum(shrunk[:2]))
    everyone = prepare(y, None, np.ones(y.size), None)
    assert criterion(scores, everyone, "worst")[0] == pytest.approx(1 / 12)
    # end to end: the kept candidate's estimate is the worst of the classes that count
    X, yy = gaussian([120, 60, 15], 6, sep=1.0, seed=2)
    with pytest.warns(Warning):
        m = LastLayerClassifier(target={0: 0.5, 1: 0.5, 2: 0.0}).fit(X, yy)
    kept = next(r for r in m.selection_ if r["kept"])
    n = np.bincount(yy)
    acc = np.asarray(kept["loo_accuracy"])
    assert kept["estimate"] == pytest.approx(min(((acc * n + 1) / (n + 2))[:2]))


def test_cross_entropy_budget_is_larger_with_more_than_two_classes(monkeypatch):
    # the cross-entropy candidates are compared below a flop budget that is larger with
    # more than two classes; above it the plan says why they were left out
    from lastlayer import LastLayerClassifier, _fit

    rng = np.random.default_rng(6)
    X = rng.normal(size=(90, 5))
    y2, y3 = (np.arange(90) % 3 == 0).astype(int), np.arange(90) % 3
    cost = _fit.logistic_selection_flops(90, 5, 3)
    assert _fit.logistic_selection_flops(90, 5, 2) < cost
    # a budget between the two problems' costs for two classes, above both for three
    monkeypatch.setattr(_fit, "LOGISTIC_SELECTION_FLOPS", _fit.logistic_selection_flops(90, 5, 2) / 2)
    monkeypatch.setattr(_fit, "LOGISTIC_SELECTION_FLOPS_MULTICLASS", cost)
    binary = LastLayerClassifier().fit(X, y2)
    three = LastLayerClassifier().fit(X, y3)
    assert {c["loss"] for c in binary.selection_} == {"square"}
    assert "cross-entropy candidates" in binary.plan_["selection_skipped"]
    assert {c["loss"] for c in three.selection_} == {"square", "logistic"}
    assert three.plan_["selection_skipped"] is None
    monkeypatch.setattr(_fit, "LOGISTIC_SELECTION_FLOPS_MULTICLASS", cost / 2)
    assert {c["loss"] for c in LastLayerClassifier().fit(X, y3).selection_} == {"square"}
