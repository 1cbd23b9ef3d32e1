"""Training dynamics (issue 13): exact GD against explicit iterations and independent
references (ridge solutions, brute-force leave-one-out, the hard-margin SVM)."""

import json

import numpy as np
import pytest
import scipy.linalg

from lastlayer.dynamics import (SquareLossGD, class_accuracy, dynamics_report, gd_filter,
                                ridge_equivalent_alpha)
from lastlayer.dynamics_ce import cosine, logistic_gd, max_margin
from lastlayer.solvers import solve_logistic, solve_ridge, sufficient_statistics


def _data(n=60, d=8, counts=(40, 15, 5), seed=0, shift=0.5):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(len(counts)), counts)
    means = rng.normal(size=(len(counts), d))
    X = means[y] + rng.normal(size=(n, d)) + shift
    return X, y


def _explicit_gd(X, y, K, w, sw, alpha, lr, steps, target=None):
    """Plain GD on the rows: theta <- theta - lr * grad, from zero (independent reference)."""
    n, d = X.shape
    Xa = np.hstack([X, np.ones((n, 1))])
    T = np.eye(K)[y] if target is None else target
    v = sw * w[y]
    N = sw.sum()
    Th = np.zeros((d + 1, K))
    out = {}
    for t in range(max(steps) + 1):
        if t in steps:
            out[t] = Th.copy()
        grad = (2.0 / N) * Xa.T @ (v[:, None] * (Xa @ Th - T))
        grad[:-1] += 2.0 * alpha * Th[:-1]
        Th = Th - lr * grad
    return out


@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("shape", [(60, 8), (20, 40)])
def test_exact_gd_matches_explicit_iterations(alpha, shape):
    n, d = shape
    X, y = _data(n, d, counts=(n - n // 3 - 2, n // 3, 2), seed=d)
    rng = np.random.default_rng(1)
    w = np.array([0.5, 1.5, 3.0])
    sw = rng.uniform(0.5, 2.0, n)
    gd = SquareLossGD(X, y, 3, class_weights=w, sample_weight=sw, alpha=alpha)
    lr = 0.95 * gd.max_stable_lr  # includes the oscillating regime lr s in (1, 2)
    steps = [0, 1, 2, 7, 50, 400]
    W, b = gd.coef(steps, lr)
    ref = _explicit_gd(X, y, 3, w, sw, alpha, lr, steps)
    for i, t in enumerate(steps):
        Th = np.vstack([W[i], b[i]])
        assert np.abs(Th - ref[t]).max() <= 1e-10 * max(1.0, np.abs(ref[t]).max())
    # scores of new rows are the same linear map
    Xn = np.random.default_rng(2).normal(size=(5, d))
    F = gd.decision_function(Xn, steps, lr)
    for i, t in enumerate(steps):
        np.testing.assert_allclose(F[i], Xn @ ref[t][:-1] + ref[t][-1], atol=1e-10)


def test_unstable_step_is_refused():
    X, y = _data()
    gd = SquareLossGD(X, y)
    with pytest.raises(ValueError, match="diverge"):
        gd.coef([1], 2.0 * gd.max_stable_lr)
    # just below the bound explicit GD still converges slowly; above it diverges
    lr = 1.05 * gd.max_stable_lr
    ref = _explicit_gd(X, y, 3, np.ones(3), np.ones(60), 0.0, lr, [300])
    assert np.abs(ref[300]).max() > 1e3


def test_filter_small_eigenvalues_without_cancellation():
    s = np.array([0.0, 1e-18, 1e-9, 0.3, 1.7])
    lr, t = 1.0, 37
    G = gd_filter(s, [t], lr)[0]
    ref = np.array([lr * sum((1 - lr * x) ** k for k in range(t)) for x in s])
    np.testing.assert_allclose(G, ref, rtol=1e-12)
    Gf = gd_filter(s, [2.5], 0.4, flow=True)[0]
    np.testing.assert_allclose(Gf[:3], 1.0, rtol=1e-8)  # tau = lr t = 1


def test_gradient_flow_matches_matrix_exponential():
    X, y = _data()
    alpha = 0.2
    gd = SquareLossGD(X, y, 3, class_weights=[1.0, 2.0, 5.0], alpha=alpha)
    H, c = gd.hessian, gd.rhs
    for t, lr in [(3.0, 0.5), (40.0, 0.25)]:
        W, b = gd.coef([t], lr, flow=True)
        ref = np.linalg.solve(H, (np.eye(H.shape[0]) - scipy.linalg.expm(-lr * t * H)) @ c)
        np.testing.assert_allclose(np.vstack([W[0], b[0]]), ref, atol=1e-10)


def test_converged_gd_is_the_ridge_solution():
    X, y = _data()
    w = np.array([0.4, 1.0, 4.0])
    stats = sufficient_statistics(X, y, 3)
    for alpha in (0.0, 0.05):  # d < n: the least-squares solution is unique
        gd = SquareLossGD(X, y, 3, class_weights=w, alpha=alpha)
        lr = 1.0 / gd.eigenvalues[-1]
        cond = gd.eigenvalues[-1] / gd.eigenvalues[gd.eigenvalues > 0][0]
        W, b = gd.coef([int(60 * cond)], lr)
        sol = solve_ridge(stats, w, alpha, np.eye(3))
        np.testing.assert_allclose(W[0], sol.coef, atol=1e-8)
        np.testing.assert_allclose(b[0], sol.intercept, atol=1e-8)


def test_interpolating_gd_limit_puts_the_bias_in_the_norm():
    # d > n, alpha = 0: GD from zero tends to the minimum-norm [W; b] (bias in the norm),
    # not the ridgeless fit with an unpenalised intercept.
    X, y = _data(20, 40, counts=(12, 6, 2), seed=3, shift=2.0)
    gd = SquareLossGD(X, y, 3)
    Xa = np.hstack([X, np.ones((20, 1))])
    ref = np.linalg.pinv(Xa) @ np.eye(3)[y]
    lr = 1.0 / gd.eigenvalues[-1]
    cond = gd.eigenvalues[-1] / gd.eigenvalues[gd.eigenvalues > 0][0]
    W, b = gd.coef([int(80 * cond)], lr)
    np.testing.assert_allclose(np.vstack([W[0], b[0]]), ref, atol=1e-8)
    sol = solve_ridge(sufficient_statistics(X, y, 3), np.ones(3), 0.0, np.eye(3))
    assert np.abs(sol.intercept - b[0]).max() > 1e-3


def test_early_stopping_is_ridge_up_to_a_bounded_filter_ratio():
    # Ridge on all of [W; b] with alpha = 1/(2 lr t) filters by 1/(s + 1/(lr t)); gradient
    # flow by (1 - exp(-lr t s))/s. Per eigen-direction the ratio is
    # (1 - e^-x)(1 + 1/x), x = lr t s: in [1, 1.30). Discrete GD with lr <= 1/s_max: [1, 2].
    x = np.logspace(-6, 6, 4001)
    r = -np.expm1(-x) * (1 + 1 / x)
    assert r.min() > 1 - 1e-9 and 1.29 < r.max() < 1.30
    X, y = _data(200, 10, counts=(150, 40, 10), seed=5)
    gd = SquareLossGD(X, y, 3, class_weights=[0.5, 1.0, 4.0])
    H, c, Q = gd.hessian, gd.rhs, gd.eigenvectors
    lr = 1.0 / gd.eigenvalues[-1]
    keep = np.abs(gd.coord) > 1e-9 * np.abs(gd.coord).max()
    for t in (1, 5, 30, 200):
        a = ridge_equivalent_alpha([t], lr)[0]
        ridge = Q.T @ np.linalg.solve(H + 2 * a * np.eye(H.shape[0]), c)
        for flow, hi in ((True, 1.30), (False, 2.0 + 1e-9)):
            W, b = gd.coef([t], lr, flow=flow)
            ratio = (Q.T @ np.vstack([W[0], b[0]]))[keep] / ridge[keep]
            assert ratio.min() > 1 - 1e-8 and ratio.max() < hi, (t, flow, ratio.max())


def test_loo_shortcut_is_exact_for_imputed_targets():
    X, y = _data(30, 5, counts=(20, 7, 3), seed=7)
    w = np.array([0.6, 1.5, 4.0])
    alpha, steps = 0.01, [1, 5, 40]
    gd = SquareLossGD(X, y, 3, class_weights=w, alpha=alpha)
    lr = 0.8 / gd.eigenvalues[-1]
    loo = gd.loo_decision_function(steps, lr)
    T = np.eye(3)[y]
    for i in (0, 21, 28):
        for j, t in enumerate(steps):
            target = T.copy()
            target[i] = loo[j, i]
            Th = _explicit_gd(X, y, 3, w, np.ones(30), alpha, lr, [t], target)[t]
            pred_i = np.r_[X[i], 1.0] @ Th
            np.testing.assert_allclose(pred_i, loo[j, i], atol=1e-10)


def _refit_loo(X, y, w, alpha, lr, t, i):
    sw = np.ones(len(y))
    sw_i = sw.copy()
    sw_i[i] = 0.0  # row deleted; n (the normaliser) unchanged
    n, d = X.shape
    Xa = np.hstack([X, np.ones((n, 1))])
    T = np.eye(3)[y]
    v = sw_i * w[y]
    Th = np.zeros((d + 1, 3))
    for _ in range(t):
        grad = (2.0 / n) * Xa.T @ (v[:, None] * (Xa @ Th - T))
        grad[:-1] += 2.0 * alpha * Th[:-1]
        Th = Th - lr * grad
    return Xa[i] @ Th


def test_loo_shortcut_against_brute_force_refits():
    X, y = _data(30, 5, counts=(20, 7, 3), seed=7)
    w = np.array([0.6, 1.5, 4.0])
    alpha = 0.05
    gd = SquareLossGD(X, y, 3, class_weights=w, alpha=alpha)
    lr = 1.0 / gd.eigenvalues[-1]
    T = np.eye(3)[y]
    # t = 1: the refit residual is r_i + h_ii t_i (derivation in the module docstring)
    F1 = gd.decision_function(None, [1], lr)[0]
    h1 = gd.leverage([1], lr)[0]
    rows = range(30)
    refit1 = np.array([_refit_loo(X, y, w, alpha, lr, 1, i) for i in rows])
    np.testing.assert_allclose(T - refit1, (T - F1) + h1[:, None] * T, atol=1e-12)
    # converged (GD -> ridge): the shortcut is the exact refit LOO
    cond = gd.eigenvalues[-1] / gd.eigenvalues[0]
    t_inf = int(40 * cond)
    loo = gd.loo_decision_function([t_inf], lr)[0]
    for i in (0, 22, 29):
        np.testing.assert_allclose(_refit_loo(X, y, w, alpha, lr, t_inf, i), loo[i],
                                   atol=1e-8)
    # in between it is an approximation: the gap is real but below the residual scale
    t_mid = 20
    loo = gd.loo_decision_function([t_mid], lr)[0]
    refit = np.array([_refit_loo(X, y, w, alpha, lr, t_mid, i) for i in rows])
    gap = np.abs(refit - loo).max()
    resid = np.abs(T - refit).max()
    assert 1e-6 < gap < 0.5 * resid


def test_class_accuracy_and_ties():
    scores = np.array([[[0.0, 0.0], [0.2, 0.1], [0.0, 1.0]]])
    acc = class_accuracy(scores, np.array([0, 1, 1]), 3)
    np.testing.assert_array_equal(acc[0, :2], [1.0, 0.5])
    assert np.isnan(acc[0, 2])


def test_report_keys_weights_and_best_step():
    X, y = _data(80, 6, counts=(60, 15, 5), seed=11)
    labels = np.array(["a", "b", "c"])[y]
    Xt, yt = _data(60, 6, counts=(20, 20, 20), seed=11)
    rep = dynamics_report(X, labels, X_test=Xt, y_test=np.array(["a", "b", "c"])[yt],
                          weighting="balanced", lr=0.05, steps=[0, 10, 100, 1000])
    json.dumps(rep)
    counts = np.array(rep["class_counts"])
    w = np.array(rep["class_weights"])
    np.testing.assert_allclose(counts @ w, counts.sum())
    np.testing.assert_allclose(w[0] / w[2], counts[2] / counts[0])
    loo = np.array(rep["loo_class_accuracy"])
    assert loo.shape == (4, 3) and np.array(rep["test_class_accuracy"]).shape == (4, 3)
    worst = loo.min(1)
    assert rep["best_step"] == rep["steps"][int(np.argmax(worst))]
    assert rep["classes"] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="diverge"):
        dynamics_report(X, labels, lr=100.0, steps=[1])


def test_logistic_gd_converges_to_the_regularised_minimiser():
    X, y = _data(50, 4, counts=(35, 10, 5), seed=2)
    w = np.array([0.5, 1.0, 3.0])
    alpha = 0.05
    res = logistic_gd(X, y, 3, class_weights=w, lr=0.5, steps=[0, 4000], alpha=alpha,
                      record_coef=True)
    Th = res["coef"][-1]
    sol = solve_logistic(X, y, 3, w[y], alpha, tol=1e-10)
    # softmax is shift invariant: compare centred intercepts
    np.testing.assert_allclose(Th[:-1], sol.coef, atol=1e-6)
    np.testing.assert_allclose(Th[-1] - Th[-1].mean(), sol.intercept, atol=1e-6)
    np.testing.assert_array_equal(res["train_class_accuracy"][0], [1.0, 0.0, 0.0])


def test_weights_wash_out_on_separable_data():
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1], [45, 5])
    X = rng.normal(size=(50, 30)) + 0.3 * (2 * y[:, None] - 1)
    Theta, margin = max_margin(X, y, 2)
    assert abs(margin - 1.0) < 1e-4
    steps = [10, 100, 1000, 10000]
    runs = {name: logistic_gd(X, y, 2, class_weights=cw, lr=1.0, steps=steps,
                              record_coef=True)
            for name, cw in {"none": [1.0, 1.0], "balanced": [50 / 90, 50 / 10]}.items()}
    cos_runs = cosine(runs["none"]["coef"], runs["balanced"]["coef"])
    cos_mm = cosine(runs["none"]["coef"], np.broadcast_to(Theta, runs["none"]["coef"].shape))
    assert cos_runs[0] < cos_runs[-1] and cos_runs[-1] > 0.99
    assert np.all(np.diff(cos_mm) > 0) and cos_mm[-1] > 0.97


def test_adam_and_loss_reweighting_run():
    X, y = _data(50, 4, counts=(40, 10), seed=6)
    res = logistic_gd(X, y, 2, lr=0.05, steps=[0, 1, 50], optimizer="adam", tau=0.5)
    # loss-based weights start uniform (all losses log 2) and shift to the minority
    share = res["minority_weight_share"]
    assert abs(share[0] - 10 / 50) < 1e-12 and share[-1] > share[0]


def test_cli_dynamics_json_and_table(tmp_path, capsys):
    from lastlayer.cli import main
    from lastlayer.io import save_features
    X, y = _data(80, 6, counts=(60, 15, 5), seed=12)
    Xt, yt = _data(60, 6, counts=(20, 20, 20), seed=13)
    save_features(tmp_path / "tr.npz", X, y)
    save_features(tmp_path / "te.npz", Xt, yt)
    args = ["dynamics", "--train", str(tmp_path / "tr.npz"), "--test", str(tmp_path / "te.npz"),
            "--weighting", "sqrt", "--lr", "0.02", "--steps", "100", "0", "10", "--alpha", "0.01"]
    assert main(args + ["--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["steps"] == [0, 10, 100]
    ref = dynamics_report(X, y, X_test=Xt, y_test=yt, weighting="sqrt", lr=0.02,
                          steps=[0, 10, 100], alpha=0.01)
    for key in ("class_weights", "train_class_accuracy", "test_class_accuracy",
                "loo_class_accuracy", "best_step"):
        assert rep[key] == ref[key]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "best step by leave-one-out" in text and "0 (train / loo / test)" in text
    assert main(args[:-2] + ["--lr", "1000"]) == 2  # unstable step: usage error
    assert "diverge" in capsys.readouterr().err


def test_ssm_learns_classes_in_the_order_of_the_label_singular_values():
    from lastlayer.dynamics_ssm import label_singular_values, ufm_gd
    counts = np.array([60, 6])
    cols = np.repeat([0, 1], counts)
    w = np.array([0.6, 4.0])
    A = np.eye(2)[:, cols] * w[cols][None, :]  # weighted one-hot label matrix Y D
    np.testing.assert_allclose(np.sort(label_singular_values(counts, w)),
                               np.sort(np.linalg.svd(A, compute_uv=False)))
    half = {}
    for name, cw in {"none": [1.0, 1.0], "sqrt": 1 / np.sqrt(counts)}.items():
        r = ufm_gd(counts, dim=8, class_weights=cw, lr=0.1, steps=4000, seed=1)
        half[name] = r["half_step"]
        assert np.all(r["half_step"] > 0)
    # ERM: sigma ratio sqrt(10) ~ 3.2 -> the minority needs ~3x the steps; sqrt weights
    # equalise sigma -> similar times
    assert 2.0 < half["none"][1] / half["none"][0] < 4.5
    assert 0.7 < half["sqrt"][1] / half["sqrt"][0] < 1.4
