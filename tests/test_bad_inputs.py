"""Every bad input, one row each: the exception (or exit status), a phrase of the
message, and no output file created or changed (issue 12, and the cases handled
before it). API rows call the library; CLI rows run ``lastlayer.cli.main``."""

import importlib.util
import re
import warnings
import zipfile

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from lastlayer import (
    FeatureOutlierWarning,
    LastLayerClassifier,
    LastLayerWarning,
    SmallClassWarning,
    UnseenLabelWarning,
    ZeroTargetWarning,
)
from lastlayer.cli import build_parser, main
from lastlayer.compare import compare_weightings
from lastlayer.io import FeatureSet, load_features, save_features, save_layer


def gaussian(counts, d=5, seed=0, sep=1.0):
    rng = np.random.default_rng(seed)
    mu = sep * rng.standard_normal((len(counts), d))
    y = np.repeat(np.arange(len(counts)), counts)
    return mu[y] + rng.standard_normal((y.size, d)), y


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


# ------------------------------------------------------------------ API rows


def _single_row_class():
    X, y = gaussian([100, 100, 1], d=20)
    LastLayerClassifier().fit(X, y)


def _single_row_class_fixed():
    X, y = gaussian([100, 100, 1], d=20)
    LastLayerClassifier(weighting="balanced", alpha=1.0).fit(X, y)


def _single_row_group():
    X, y = gaussian([50, 50])
    g = np.r_[np.zeros(99), 1]
    LastLayerClassifier().fit(X, y, groups=g)


def _unseen_label():
    X, y = gaussian([40, 40])
    Xt, yt = gaussian([10, 10, 5], seed=1)
    LastLayerClassifier().fit(X, y).report(Xt, yt)


def _unseen_label_compare():
    X, y = gaussian([40, 40])
    Xt, yt = gaussian([10, 10, 5], seed=1)
    compare_weightings(FeatureSet(X, y), FeatureSet(Xt, yt), ["none"], progress=False)


def _nan_groups():
    X, y = gaussian([100, 100])
    LastLayerClassifier().fit(X, y, groups=np.r_[np.zeros(100), np.ones(99), np.nan])


def _none_groups():
    X, y = gaussian([10, 10])
    LastLayerClassifier().fit(X, y, groups=np.array([0] * 19 + [None], dtype=object))


def _zero_target():
    X, y = gaussian([50, 50])
    clf = LastLayerClassifier(weighting="upsample", target=[0, 1]).fit(X, y)
    assert clf.class_weight_[0] == 0


def _zero_target_optimal():
    X, y = gaussian([30, 30, 30])
    clf = LastLayerClassifier(weighting="optimal", loss="square", target=[0, 1, 1]).fit(X, y)
    assert clf.class_weight_[0] == 0 and np.all(np.isfinite(clf.coef_))


def _outlier():
    X, y = gaussian([200, 20], d=50, seed=1, sep=0.6)
    X[7, 3] = 1e3
    LastLayerClassifier().fit(X, y)


def _nan_sample_weight():
    X, y = gaussian([100, 100])
    sw = np.ones(200)
    sw[3] = np.nan
    LastLayerClassifier().fit(X, y, sample_weight=sw)


def _one_group():
    X, y = gaussian([100, 100])
    LastLayerClassifier().fit(X, y, groups=np.zeros(200))


def _huge_value():
    X, y = gaussian([100, 100])
    X[5, 3] = 1e300
    LastLayerClassifier().fit(X, y)


def _huge_value_float32():
    X, y = gaussian([100, 100])
    X = X.astype(np.float32)
    X[5, 3] = 1e30
    LastLayerClassifier().fit(X, y)


def _fit_with(change, **params):
    def fit():
        X, y = gaussian([30, 30])
        X, y, kwargs = change(X, y)
        LastLayerClassifier(**params).fit(X, y, **kwargs)
    return fit


def _nan_x(X, y):
    X[3, 1] = np.nan
    return X, y, {}


def _inf_x(X, y):
    X[4, 2] = np.inf
    return X, y, {}


def _predict_inf():
    X, y = gaussian([30, 30])
    model = LastLayerClassifier().fit(X, y)
    X[11, 0] = -np.inf
    model.predict(X)


def _validation_nan():
    X, y = gaussian([30, 30])
    Xv = X.copy()
    Xv[8, 3] = np.nan
    LastLayerClassifier(weighting="tuned").fit(X, y, X_val=Xv, y_val=y)


def _predict_wrong_features():
    X, y = gaussian([30, 30])
    LastLayerClassifier().fit(X, y).predict(X[:, :3])


def _predict_before_fit():
    LastLayerClassifier().predict(np.zeros((2, 3)))


def _bad_cv_split():
    X, y = gaussian([30, 30])
    LastLayerClassifier(weighting="tuned", cv=[(np.arange(50), np.array([70]))]).fit(X, y)


def _dask(kind):
    def fit():
        da = pytest.importorskip("dask.array")
        X, y = gaussian([300, 300])
        if kind in ("nan", "overflow"):  # the row of the whole array, not of its chunk
            if kind == "nan":
                X[123, 2] = np.nan
            else:
                X[456, 4] = 1e300
            LastLayerClassifier().fit(da.from_array(X, chunks=(100, 5)), y)
        else:
            Xd = da.from_array(X, chunks=(100, 5))
            LastLayerClassifier().fit(Xd[Xd[:, 0] > -100], y)
    return fit


API_ROWS = [
    # issue 12, numbered items
    ("1-single-row-class", _single_row_class, ValueError, "at least 2 training rows"),
    ("1-single-row-class-fixed-alpha", _single_row_class_fixed, SmallClassWarning,
     "single training row"),
    ("1-single-row-group", _single_row_group, ValueError, "group 1.0 has 1 row"),
    ("3-unseen-label-report", _unseen_label, UnseenLabelWarning, "never occur in training"),
    ("3-unseen-label-compare", _unseen_label_compare, UnseenLabelWarning, "Labels [2]"),
    ("4-nan-groups", _nan_groups, ValueError, "'groups' must not have missing values"),
    ("4-none-groups", _none_groups, ValueError, "first is at index 19"),
    ("5-zero-target", _zero_target, ZeroTargetWarning, "share 0"),
    ("5-zero-target-optimal", _zero_target_optimal, ZeroTargetWarning, "class(es) [0]"),
    ("6-outlier-cell", _outlier, FeatureOutlierWarning, "row 7, column 3"),
    ("9-nan-sample-weight", _nan_sample_weight, ValueError, "Got nan at index 3"),
    ("10-one-group", _one_group, ValueError, "at least 2 distinct groups"),
    ("14-huge-value", _huge_value, ValueError, "at row 5, column 3"),
    ("14-huge-value-float32", _huge_value_float32, ValueError, "stay finite in float32"),
    # handled before
    ("nan-x", _fit_with(_nan_x), ValueError,
     "X must be finite. Got 1 non-finite value(s) (1 NaN, 0 inf); the first is at row 3, "
     "column 1"),
    ("inf-x", _fit_with(_inf_x), ValueError, "(0 NaN, 1 inf); the first is at row 4, column 2"),
    ("nan-x-float32", _fit_with(lambda X, y: _nan_x(X.astype(np.float32), y)), ValueError,
     "the first is at row 3, column 1"),
    ("predict-inf", _predict_inf, ValueError, "(0 NaN, 1 inf); the first is at row 11, column 0"),
    ("validation-nan", _validation_nan, ValueError,
     "X_val must be finite. Got 1 non-finite value(s) (1 NaN, 0 inf); the first is at row 8, "
     "column 3"),
    ("1d-x", _fit_with(lambda X, y: (X[:, 0], y, {})), ValueError, "Expected 2D array"),
    ("3d-x", _fit_with(lambda X, y: (X[:, :, None], y, {})), ValueError, "dim 3"),
    ("length-mismatch", _fit_with(lambda X, y: (X, y[:-1], {})), ValueError,
     "inconsistent numbers of samples"),
    ("mixed-labels", _fit_with(lambda X, y: (X, np.array([1, "a"] * 30, dtype=object), {})),
     ValueError, "mixes label types"),
    ("groups-length", _fit_with(lambda X, y: (X, y, {"groups": np.zeros(5)})), ValueError,
     "'groups' has 5 entries"),
    ("negative-sample-weight", _fit_with(lambda X, y: (X, y, {"sample_weight": -np.ones(60)})),
     ValueError, "non-negative"),
    ("alpha-negative", _fit_with(lambda X, y: (X, y, {}), alpha=-1.0), ValueError,
     "'alpha' parameter"),
    ("max-leverage-1", _fit_with(lambda X, y: (X, y, {}), max_leverage=1.0), ValueError,
     "'max_leverage' parameter"),
    ("cv-1", _fit_with(lambda X, y: (X, y, {}), cv=1), ValueError, "'cv' parameter"),
    ("verbose-negative", _fit_with(lambda X, y: (X, y, {}), verbose=-1), ValueError,
     "'verbose' parameter"),
    ("cv-split-out-of-range", _bad_cv_split, ValueError, "test indices in [0, 60)"),
    ("predict-wrong-features", _predict_wrong_features, ValueError, "3 features"),
    ("predict-before-fit", _predict_before_fit, NotFittedError, "not fitted"),
    # the dask statistics see NaN only in the summed Gram products: no row (see report)
    ("dask-nan", _dask("nan"), ValueError,
     "must be finite. Got 1 non-finite value(s) (1 NaN, 0 inf) in rows 100-199; the first "
     "is at row 123, column 2"),
    ("dask-overflow", _dask("overflow"), ValueError,
     "the first value is 1e+300 at row 456, column 4"),
    ("dask-unknown-chunks", _dask("unknown"), ValueError, "chunk"),
]


@pytest.mark.parametrize("name,call,expected,phrase", API_ROWS, ids=[r[0] for r in API_ROWS])
def test_api_bad_input(name, call, expected, phrase, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    if issubclass(expected, Warning):
        with pytest.warns(expected, match=None) as record:
            call()
        messages = [str(w.message) for w in record if issubclass(w.category, expected)]
        assert any(phrase in m for m in messages), messages
        assert all(issubclass(w.category, LastLayerWarning) for w in record
                   if issubclass(w.category, expected))
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LastLayerWarning)
            with pytest.raises(expected) as info:
                call()
        assert phrase in str(info.value), str(info.value)
    assert snapshot(tmp_path) == before


# ----------------------------------------------------------------- file rows


def _write(kind, folder):
    X, y = gaussian([20, 20])
    path = folder / "f"
    if kind == "empty-npz":
        path = folder / "f.npz"
        path.write_bytes(b"")
    elif kind == "truncated-npz":
        save_features(folder / "full.npz", X, y)
        path = folder / "f.npz"
        path.write_bytes((folder / "full.npz").read_bytes()[:300])
    elif kind == "pickle-npz":
        path = folder / "f.npz"
        np.savez(path, X=X, y=np.array(["a", 1] * 20, dtype=object))
    elif kind == "object-npy":
        path = folder / "X.npy"
        np.save(path, np.array([[1, "a"]] * 4, dtype=object), allow_pickle=True)
        np.save(folder / "y.npy", np.zeros(4))
    elif kind == "corrupt-csv":
        path = folder / "f.csv"
        path.write_text("x0,x1,y\n1.0,2.0,0\n1.0,oops,1\n")
    elif kind == "empty-csv":
        path = folder / "f.csv"
        path.write_text("")
    elif kind == "missing-column":
        path = folder / "f.csv"
        path.write_text("x0,x1,label\n1.0,2.0,0\n1.0,3.0,1\n")
    elif kind == "missing-array":
        path = folder / "f.npz"
        np.savez(path, X=X)
    elif kind == "suffix":
        path = folder / "f.txt"
        path.write_text("1 2 3\n")
    elif kind == "huge-csv":
        path = folder / "f.csv"
        path.write_text("x0,x1,y\n" + "".join(f"{i}.0,1.0,{i % 2}\n" for i in range(5))
                        + "1e300,1.0,1\n")
    elif kind == "zip-not-npz":
        path = folder / "f.npz"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("X.npy", b"not an array")
    return path


FILE_ROWS = [
    ("empty-npz", ValueError, "not a readable .npz"),
    ("truncated-npz", ValueError, "not a readable .npz"),
    ("pickle-npz", ValueError, "pickle"),
    ("object-npy", ValueError, "pickle"),
    ("corrupt-csv", ValueError, "'oops'"),
    ("empty-csv", ValueError, "is empty"),
    ("missing-column", ValueError, "'y'"),
    ("missing-array", ValueError, "'y'"),
    ("suffix", ValueError, "Unsupported feature file suffix '.txt'"),
    ("huge-csv", ValueError, "row 5, column 0"),
    ("zip-not-npz", ValueError, "f.npz"),
]


@pytest.mark.parametrize("kind,expected,phrase", FILE_ROWS, ids=[r[0] for r in FILE_ROWS])
def test_file_bad_input(kind, expected, phrase, tmp_path):
    path = _write(kind, tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(expected) as info:
        load_features(path)
    assert phrase in str(info.value), str(info.value)
    assert snapshot(tmp_path) == before
    # the command line: the same message, exit status 2, never a traceback
    code = main(["fit", "--train", str(path), "--quiet"])
    assert code == 2
    assert snapshot(tmp_path) == before


def test_missing_file_and_float16(tmp_path, capsys):
    assert main(["fit", "--train", str(tmp_path / "nope.npz")]) == 2
    assert "not found" in capsys.readouterr().err
    X, y = gaussian([20, 20])
    np.savez(tmp_path / "half.npz", X=X.astype(np.float16), y=y)
    assert load_features(tmp_path / "half.npz").X.dtype == np.float32  # float16 is widened
    assert main(["fit", "--train", str(tmp_path / "half.npz"), "--quiet"]) == 0


@pytest.mark.parametrize("target", ["dir", "proc"])
def test_unwritable_layer(target, tmp_path):
    path = tmp_path if target == "dir" else "/proc/lastlayer-test.npz"
    before = snapshot(tmp_path)
    with pytest.raises(OSError, match="Cannot write '" + str(path)):
        save_layer(path, np.zeros((1, 2)), [0.0], [0, 1])
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------ CLI rows


@pytest.fixture
def files(tmp_path):
    X, y = gaussian([60, 40, 30])
    save_features(tmp_path / "train.npz", X, y)
    Xt, yt = gaussian([20, 20, 20, 5], seed=1)
    save_features(tmp_path / "test4.npz", Xt, yt)
    (tmp_path / "shards").mkdir()
    save_features(tmp_path / "shards" / "a.npz", X[:70], y[:70])
    save_features(tmp_path / "shards" / "b.npz", X[70:], y[70:])
    save_features(tmp_path / "labelled.csv", X, y)
    text = (tmp_path / "labelled.csv").read_text().replace(",y\n", ",label\n", 1)
    (tmp_path / "labelled.csv").write_text(text)
    (tmp_path / "outdir").mkdir()
    return tmp_path


CLI_ROWS = [
    ("2-groups-without-groups", "fit --train train.npz --groups", 2, "has no group labels"),
    ("3-unseen-test-label", "fit --train train.npz --test test4.npz", 0,
     "never occur in training"),
    ("7-theory-edge", "theory --minority-prior 0.1 --dim-ratio 50", 0, ""),
    ("7-repeats-without-subsample", "compare --train train.npz --test train.npz --repeats 3",
     2, "needs --subsample"),
    ("8-subsample-below-two-per-class",
     "compare --train train.npz --test train.npz --subsample 3", 2, "range [6, 130]"),
    ("8-out-suffix", "fit --train train.npz --out layer.txt", 2, "ending in .npz"),
    ("11-repeats-0", "compare --train train.npz --test train.npz --repeats 0", 2,
     "--repeats must be an int in the range [1, inf)"),
    ("11-seed-negative", "fit --train train.npz --seed -1", 2,
     "--seed must be an int in the range [0, inf)"),
    ("12-out-directory", "fit --train train.npz --out outdir", 2, "which is a directory"),
    ("12-report-directory", "compare --train train.npz --test train.npz --report outdir", 2,
     "which is a directory"),
    ("12-out-proc", "fit --train train.npz --out /proc/lastlayer-x.npz", 2,
     "cannot write '/proc/lastlayer-x.npz'"),
    ("13-shard-directory", "fit --train shards", 0, ""),
    ("17-label-column", "fit --train labelled.csv --label-column label", 0, ""),
    ("17-label-column-missing", "fit --train labelled.csv", 2, "label_column"),
    ("bad-weighting", "fit --train train.npz --weighting nope", 2, "invalid choice"),
    ("bad-alpha", "fit --train train.npz --alpha -3", 2, "--alpha"),
    ("bad-weightings-list", "compare --train train.npz --test train.npz --weightings x", 2,
     "--weightings must be"),
    ("wrong-test-features", "fit --train train.npz --test bad.npz", 2, "features"),
    ("counts-zero", "weights --counts 0 5 --dim 3", 2, "--counts must be"),
    ("simulate-negative", "theory --minority-prior 0.1 --dim-ratio 0.5 --simulate -2", 2,
     "--simulate must be"),
]


@pytest.mark.parametrize("name,argv,code,phrase", CLI_ROWS, ids=[r[0] for r in CLI_ROWS])
def test_cli_bad_input(name, argv, code, phrase, files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    save_features(files / "bad.npz", *gaussian([20, 20], d=3))
    before = snapshot(files)
    with pytest.raises(SystemExit) if code == 2 and _argparse_error(name) else _nothing() as e:
        got = main(argv.split() + (["--quiet"] if argv.split()[0] != "weights" else []))
    got = e.value.code if hasattr(e, "value") else got
    out, err = capsys.readouterr()
    assert got == code, err
    assert phrase in err, err
    assert "Traceback" not in err
    assert snapshot(files) == before
    if name == "7-theory-edge":
        assert "none inside the searched ratios" in out


def _argparse_error(name):
    return name in ("11-repeats-0", "11-seed-negative", "bad-weighting", "bad-alpha",
                    "counts-zero", "simulate-negative")


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_every_option_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.choices and isinstance(a.choices, dict))
    for name, command in sub.choices.items():
        for action in command._actions:
            if action.dest == "help":
                continue
            assert action.help, f"lastlayer {name} {action.option_strings} has no help"
            if name == "fit" and action.dest == "weighting":
                assert "optimal_theory" in action.help and "tuned" in action.help


def test_compare_single_run_has_no_spread(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    assert main(["compare", "--train", "train.npz", "--test", "train.npz", "--weightings",
                 "none,balanced", "--json"]) == 0
    import json
    out = json.loads(capsys.readouterr().out)
    assert out["repeats"] == 1
    assert out["weightings"]["none"]["worst_class_accuracy_sem"] is None


def test_progress_goes_to_stderr_only(files, capsys, monkeypatch):
    monkeypatch.chdir(files)
    assert main(["fit", "--train", "train.npz", "--weighting", "tuned"]) == 0
    out, err = capsys.readouterr()
    assert "statistics:" in err and "layer:" in err and "[LastLayerClassifier]" not in out
    assert main(["fit", "--train", "train.npz", "--quiet"]) == 0
    assert "[LastLayerClassifier]" not in capsys.readouterr().err
    assert main(["fit", "--train", "train.npz", "--json"]) == 0
    assert capsys.readouterr().err == ""


def test_verbose_estimator_phases(capsys):
    X, y = gaussian([40, 40])
    LastLayerClassifier(verbose=1).fit(X, y)
    out, err = capsys.readouterr()
    assert out == ""
    for phase in ("statistics:", "alpha:", "weights:", "layer:"):
        assert phase in err
    LastLayerClassifier().fit(X, y)
    assert capsys.readouterr().err == ""


def test_verbose_cross_entropy_path_shows_its_progress(capsys):
    # the cross-entropy alpha path (seconds to minutes with many classes) advances a
    # bar on stderr, one step an alpha; silent without verbose
    X, y = gaussian([40, 40])
    LastLayerClassifier(verbose=1, loss="logistic", weighting="balanced").fit(X, y)
    out, err = capsys.readouterr()
    assert out == "" and "cross-entropy alpha, balanced weights (ALO)" in err
    assert re.search(r"\d+/16", err)  # the grid's 16 alphas (every third of 46)
    LastLayerClassifier(loss="logistic", weighting="balanced").fit(X, y)
    assert capsys.readouterr().err == ""


def test_outlier_detection_is_quiet_on_clean_heavy_tails():
    rng = np.random.default_rng(3)
    X = rng.standard_t(4, size=(5000, 20))  # heavy tails, no planted outlier
    y = rng.integers(0, 2, 5000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FeatureOutlierWarning)
        LastLayerClassifier(weighting="balanced").fit(X, y)


def test_outlier_detection_is_quiet_on_sparse_activations():
    # ReLU-like features: some columns are zero but for one ordinary value; that cell is
    # thousands of its own column's sds away, but not an outlier of the features
    rng = np.random.default_rng(4)
    X = np.maximum(rng.standard_normal((300, 30)), 0.0)
    X[:, :5] = 0.0
    X[rng.integers(0, 300, 5), np.arange(5)] = 0.8
    y = rng.integers(0, 2, 300)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FeatureOutlierWarning)
        LastLayerClassifier(weighting="balanced", loss="square").fit(X, y)
    X[7, 3] = 1e3  # and a real outlier among them is still named
    with pytest.warns(FeatureOutlierWarning, match="row 7, column 3"):
        LastLayerClassifier(weighting="balanced", loss="square").fit(X, y)


def test_optional_dask_present_or_skipped():
    # the dask rows above skip without dask; make the skip visible here
    if importlib.util.find_spec("dask") is None:
        pytest.skip("dask not installed")
