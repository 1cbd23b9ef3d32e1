"""The `lastlayer` command: JSON contracts, tables, exit codes, atomic outputs."""

import importlib
import json

import numpy as np
import pytest

from lastlayer.cli import main
from lastlayer.io import load_layer
from lastlayer.theory import binary_errors, optimal_class_weights


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, "--json must print exactly one JSON object"
    return json.loads(lines[0])


@pytest.fixture
def feature_files(tmp_path):
    rng = np.random.default_rng(0)
    d = 12
    mu = 0.8 * rng.standard_normal((3, d))

    def make(counts, name):
        y = np.repeat(np.arange(3), counts)
        X = mu[y] + rng.standard_normal((y.size, d))
        path = tmp_path / name
        np.savez(path, X=X, y=np.array(["ant", "bee", "cat"])[y])
        return str(path)

    return make([20, 60, 180], "train.npz"), make([200, 200, 200], "test.npz")


def test_theory_json_matches_the_library(capsys):
    out = run_json(capsys, "theory", "--minority-prior", "0.1", "--dim-ratio", "0.3",
                   "--mean-norm", "1.2", "--weight-ratio", "9", "--ridge", "0.05")
    ref = binary_errors(0.1, 0.3, weight_ratio=9, ridge=0.05, mean_norm=1.2)
    assert out["error_minority"] == pytest.approx(ref.error_pos)
    assert out["error_majority"] == pytest.approx(ref.error_neg)
    assert out["worst_class_error"] == pytest.approx(max(ref.error_pos, ref.error_neg))
    assert out["balanced_error"] == pytest.approx((ref.error_pos + ref.error_neg) / 2)
    assert out["worst_class_optimal_error"] <= out["worst_class_error"] + 1e-12


def test_theory_table_and_simulation(capsys):
    code, out, _ = run(capsys, "theory", "--minority-prior", "0.2", "--dim-ratio", "0.2",
                       "--simulate", "3", "--n", "300")
    assert code == 0
    assert "minority (+)" in out and "error-equalising ratio" in out and "±" in out


def test_weights_json_in_counts_order(capsys):
    out = run_json(capsys, "weights", "--counts", "300", "30", "100", "--dim", "40")
    ref = optimal_class_weights([300, 30, 100], 40)
    np.testing.assert_allclose(out["class_weights"], ref.weights)
    assert out["feasible"] is True and out["df"] == pytest.approx(41.0)
    assert out["class_weights"][1] > out["class_weights"][2] > out["class_weights"][0]


def test_weights_infeasible_is_reported(capsys):
    out = run_json(capsys, "weights", "--counts", "10", "200", "--dim", "50")
    assert out["feasible"] is False and "No finite weights" in out["message"]
    assert all(np.isfinite(out["class_weights"]))


@pytest.mark.parametrize("argv,needle", [
    (["theory", "--minority-prior", "1.5", "--dim-ratio", "0.2"], "--minority-prior"),
    (["theory", "--minority-prior", "0.1", "--dim-ratio", "-1"], "--dim-ratio"),
    (["theory", "--minority-prior", "0.1", "--dim-ratio", "nan"], "--dim-ratio"),
    (["theory", "--minority-prior", "0.1", "--dim-ratio", "0.2", "--ridge", "-0.1"], "--ridge"),
    (["weights", "--counts", "0", "5", "--dim", "3"], "counts"),
    (["weights", "--counts", "5", "5", "--dim", "3", "--target", "1", "1", "1"], "target"),
    (["weights", "--counts", "5", "--dim", "3"], "counts"),
    (["fit", "--train", "x.npz", "--alpha", "-2"], "--alpha"),
])
def test_usage_errors_exit_2(capsys, argv, needle):
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    assert needle in capsys.readouterr().err


def test_fit_json_report_and_layer(capsys, feature_files, tmp_path):
    train, test = feature_files
    layer = tmp_path / "layer.npz"
    out = run_json(capsys, "fit", "--train", train, "--test", test, "--out", str(layer))
    for key in ("per_class_accuracy", "worst_class_accuracy", "balanced_accuracy",
                "class_weights", "alpha", "df"):
        assert key in out
    assert set(out["per_class_accuracy"]) == {"ant", "bee", "cat"}
    assert out["worst_class_accuracy"] == pytest.approx(min(out["per_class_accuracy"].values()))
    saved = load_layer(layer)
    assert saved["coef"].shape == (3, 12)
    assert list(saved["classes"]) == ["ant", "bee", "cat"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_fit_says_when_cross_entropy_was_not_compared(capsys, feature_files, monkeypatch):
    # above the flop budget the cross-entropy candidates are left out: the JSON says
    # why and the table says so in a line, with the way to fit it anyway
    from lastlayer import _fit

    train, test = feature_files
    assert run_json(capsys, "fit", "--train", train, "--test", test)["selection_skipped"] is None
    monkeypatch.setattr(_fit, "LOGISTIC_SELECTION_FLOPS_MULTICLASS", 1.0)
    out = run_json(capsys, "fit", "--train", train, "--test", test)
    assert out["selection_skipped"].startswith("cross-entropy candidates: their leave-one-out")
    assert {r["loss"] for r in out["selection"]} == {"square"}
    code, text, err = run(capsys, "fit", "--train", train, "--test", test)
    assert code == 0 and "Not compared: cross-entropy candidates" in text
    assert "--loss logistic fits cross-entropy anyway" in text
    assert "not compared: cross-entropy candidates" in err  # the phase log, on stderr


def test_fit_precision_follows_the_feature_dtype(capsys, feature_files, tmp_path):
    train, test = feature_files
    with np.load(train) as z:
        X, y = z["X"], z["y"]
    f32 = tmp_path / "train32.npz"
    np.savez(f32, X=X.astype(np.float32), y=y)
    exact = run_json(capsys, "fit", "--train", str(f32), "--test", test,
                     "--precision", "float64")
    fast = run_json(capsys, "fit", "--train", str(f32), "--test", test)
    assert (exact["precision"], fast["precision"]) == ("float64", "float32")
    assert run_json(capsys, "fit", "--train", train, "--test", test)["precision"] == "float64"
    np.testing.assert_allclose(fast["class_weights"], exact["class_weights"], rtol=1e-4)
    assert fast["per_class_accuracy"] == exact["per_class_accuracy"]


def test_fit_bad_file_exits_2(capsys, tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.array([[1.0, np.nan], [0.0, 1.0]]), y=np.array([0, 1]))
    code, _, err = run(capsys, "fit", "--train", str(bad))
    assert code == 2 and "NaN" in err
    code, _, err = run(capsys, "fit", "--train", str(tmp_path / "missing.npz"))
    assert code == 2


def _importable(module):
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def test_compare_json_and_table(capsys, feature_files, tmp_path):
    train, test = feature_files
    fig = tmp_path / "cmp.png"
    has_plots = _importable("matplotlib")
    out = run_json(capsys, "compare", "--train", train, "--test", test, "--repeats", "3",
                   "--subsample", "120", "--weightings", "none,balanced,optimal",
                   *(["--figure", str(fig)] if has_plots else []))
    assert set(out["weightings"]) == {"none", "balanced", "optimal"}
    w = out["weightings"]["balanced"]
    runs = w["runs"]["worst_class"]
    assert len(runs) == 3
    assert w["worst_class_accuracy_mean"] == pytest.approx(np.mean(runs))
    assert w["worst_class_accuracy_sem"] == pytest.approx(np.std(runs, ddof=1) / np.sqrt(3))
    assert not has_plots or fig.stat().st_size > 1000
    code, text, _ = run(capsys, "compare", "--train", train, "--test", test, "--repeats", "2",
                        "--subsample", "100", "--weightings", "none,optimal")
    assert code == 0 and "worst-class acc" in text and "±" in text
    code, _, err = run(capsys, "compare", "--train", train, "--test", test,
                       "--weightings", "none,magic")
    assert code == 2 and "magic" in err


def test_binary_protocol_on_synthetic_features():
    from lastlayer.demo import ratio_sweep, run_binary_protocol, summarise
    rng = np.random.default_rng(1)
    d = 30

    def draw(n1, n0):
        y = np.r_[np.ones(n1, int), np.zeros(n0, int)]
        X = rng.standard_normal((y.size, d))
        X[:, 0] += np.where(y == 1, 0.8, -0.8)
        return X, y

    Xp, yp = draw(60, 400)
    Xt, yt = draw(500, 500)
    task = {"X_pool": Xp, "y_pool": yp, "X_test": Xt, "y_test": yt}
    rows = run_binary_protocol(task, [60, 120], repeats=3, methods=("balanced", "optimal"),
                               progress=False)
    assert len(rows) == 2 * 3 * 2
    assert all(r["worst"] == min(r["minority"], r["majority"]) for r in rows)
    s = summarise(rows, "worst")
    vals = [r["worst"] for r in rows if r["n"] == 60 and r["method"] == "optimal"]
    assert s[(60, "optimal")][0] == pytest.approx(np.mean(vals))
    sweep = ratio_sweep(task, 60, [1.0, 10.0], repeats=2, progress=False)
    assert len(sweep) == 4
    # upweighting the minority raises its accuracy
    lo = np.mean([r["minority"] for r in sweep if r["ratio"] == 1.0])
    hi = np.mean([r["minority"] for r in sweep if r["ratio"] == 10.0])
    assert hi > lo


def test_dynamics_names_bad_input_and_reads_other_label_columns(capsys, tmp_path):
    from lastlayer.io import save_npz

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((40, 3)), np.repeat([0, 1], [10, 30])
    save_npz(tmp_path / "f.npz", X=X, target=y)
    code, _, err = run(capsys, "dynamics", "--train", str(tmp_path / "f.npz"), "--lr", "0.1",
                       "--steps", "1", "5")
    assert code == 2 and "--train" in err and "'y'" in err
    out = run_json(capsys, "dynamics", "--train", str(tmp_path / "f.npz"), "--label-column",
                   "target", "--lr", "0.1", "--steps", "1", "5")
    assert out["steps"] == [1, 5] and len(out["classes"]) == 2
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage error, status 2
        main(["dynamics", "--train", str(tmp_path / "f.npz"), "--lr", "0.1", "--steps", "1",
              "--seed", "-1", "--label-column", "target"])
    assert exit_info.value.code == 2 and "--seed" in capsys.readouterr().err


def test_fit_npy_without_labels_says_what_to_do_on_the_command_line(capsys, tmp_path):
    # a features-only .npy: exit 2, and the message names the command-line way
    # (X.npy beside y.npy), not only the Python parameter
    np.save(tmp_path / "feats.npy", np.zeros((10, 3)))
    code, _, err = run(capsys, "fit", "--train", str(tmp_path / "feats.npy"))
    assert code == 2
    assert "--train" in err and "X.npy" in err and "y.npy" in err and "command line" in err
    np.save(tmp_path / "X.npy", np.zeros((10, 3)))
    code, _, err = run(capsys, "fit", "--train", str(tmp_path / "X.npy"))
    assert code == 2
    assert "y.npy" in err and "Save the labels there" in err
