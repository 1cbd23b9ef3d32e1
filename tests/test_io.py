"""Tests for lastlayer.io: readers, validation, atomic writers and layer files."""

from __future__ import annotations

import json
import os
import stat
import sys

import numpy as np
import pytest

from lastlayer import io as llio
from lastlayer.io import (
    FeatureSet,
    atomic_write_bytes,
    atomic_write_text,
    load_features,
    load_layer,
    save_features,
    save_layer,
    save_npz,
    validate_features,
)



def _needs(suffix):
    """Skip a parquet / safetensors case when its optional extra is missing."""
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    elif suffix == ".safetensors":
        pytest.importorskip("safetensors")


@pytest.fixture(autouse=True)
def _optional_formats(request):
    # every test that takes a ``suffix`` parameter skips without that format's extra
    if "suffix" in request.fixturenames:
        _needs(request.getfixturevalue("suffix"))


@pytest.fixture
def pa():
    return pytest.importorskip("pyarrow")


@pytest.fixture
def pq():
    pytest.importorskip("pyarrow")
    return pytest.importorskip("pyarrow.parquet")

FORMATS = [".npz", ".csv", ".parquet", ".safetensors"]


def make_data(kind="int", n=12, d=3, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(dtype)
    codes = rng.integers(0, 3, n)
    codes[:3] = [0, 1, 2]
    if kind == "int":
        y = np.array([3, 7, 11])[codes]
        groups = rng.integers(0, 2, n)
    else:
        y = np.array(["cat", "dog, big", 'say "hi"'])[codes]
        groups = np.array(["land", "water"])[rng.integers(0, 2, n)]
    return X, y, groups


def temp_names(directory):
    return [p for p in os.listdir(directory) if p.endswith(".tmp")]


# --------------------------------------------------------------------------- #
# Round trips
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("with_groups", [False, True])
@pytest.mark.parametrize("kind", ["int", "str"])
@pytest.mark.parametrize("suffix", FORMATS)
def test_round_trip(tmp_path, suffix, kind, with_groups):
    X, y, groups = make_data(kind)
    path = tmp_path / f"feats{suffix}"
    save_features(path, X, y, groups if with_groups else None)
    fs = load_features(path)
    assert isinstance(fs, FeatureSet)
    assert fs.source == str(path)
    if suffix == ".csv":
        assert fs.X.dtype == np.float64  # CSV holds decimal text; values are exact
        np.testing.assert_array_equal(fs.X.astype(np.float32), X)
    else:
        assert fs.X.dtype == np.float32
        np.testing.assert_array_equal(fs.X, X)
    np.testing.assert_array_equal(fs.y, y)
    assert fs.y.dtype.kind == ("U" if kind == "str" else "i")
    if with_groups:
        np.testing.assert_array_equal(fs.groups, groups)
        assert fs.groups.dtype.kind == ("U" if kind == "str" else "i")
    else:
        assert fs.groups is None
    assert temp_names(tmp_path) == []


@pytest.mark.parametrize("suffix", [".npz", ".parquet", ".safetensors"])
def test_round_trip_keeps_float64(tmp_path, suffix):
    X, y, _ = make_data(dtype=np.float64)
    save_features(tmp_path / f"f{suffix}", X, y)
    fs = load_features(tmp_path / f"f{suffix}")
    assert fs.X.dtype == np.float64
    np.testing.assert_array_equal(fs.X, X)


@pytest.mark.parametrize("kind", ["int", "str"])
def test_npy_pair_explicit_labels(tmp_path, kind):
    X, y, groups = make_data(kind)
    np.save(tmp_path / "features.npy", X)
    np.save(tmp_path / "labels.npy", y)
    np.save(tmp_path / "g.npy", groups)
    fs = load_features(tmp_path / "features.npy", labels=tmp_path / "labels.npy",
                       groups=str(tmp_path / "g.npy"))
    np.testing.assert_array_equal(fs.X, X)
    np.testing.assert_array_equal(fs.y, y)
    np.testing.assert_array_equal(fs.groups, groups)
    # labels may also be an array
    fs = load_features(tmp_path / "features.npy", labels=list(y))
    np.testing.assert_array_equal(fs.y, y)
    assert fs.groups is None


def test_npy_pair_convention(tmp_path):
    X, y, groups = make_data("str")
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    fs = load_features(tmp_path / "X.npy")
    np.testing.assert_array_equal(fs.y, y)
    assert fs.groups is None
    np.save(tmp_path / "groups.npy", groups)
    for target in (tmp_path / "X.npy", tmp_path):  # a directory holding X.npy works too
        fs = load_features(target)
        np.testing.assert_array_equal(fs.X, X)
        np.testing.assert_array_equal(fs.groups, groups)


def test_npy_without_labels_explains_rule(tmp_path):
    X, y, _ = make_data()
    np.save(tmp_path / "feats.npy", X)
    with pytest.raises(ValueError, match="no labels.*X.npy.*y.npy.*command line.*'labels'"):
        load_features(tmp_path / "feats.npy")
    np.save(tmp_path / "X.npy", X)
    with pytest.raises(FileNotFoundError, match="y.npy.*Save the labels there"):
        load_features(tmp_path / "X.npy")


def test_mmap_npy(tmp_path):
    X, y, _ = make_data(n=50, d=4)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    fs = load_features(tmp_path / "X.npy", mmap=True)
    assert isinstance(fs.X, np.memmap)
    assert fs.X.dtype == np.float32
    np.testing.assert_array_equal(fs.X, X)
    np.testing.assert_array_equal(fs.y, y)
    del fs


def test_mmap_only_for_npy(tmp_path):
    X, y, _ = make_data()
    save_features(tmp_path / "f.npz", X, y)
    with pytest.raises(ValueError, match="mmap.*only supported for .npy"):
        load_features(tmp_path / "f.npz", mmap=True)


def test_labels_argument_only_for_npy(tmp_path):
    X, y, _ = make_data()
    save_features(tmp_path / "f.npz", X, y)
    with pytest.raises(ValueError, match="'labels' parameter is only used with .npy"):
        load_features(tmp_path / "f.npz", labels=y)


def test_csv_by_hand(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("a,label,b,site\n1.5,cat,2,north\n-3e-2,dog,4,south\n0,cat,5.25,north\n")
    fs = load_features(path, label_column="label", group_column="site")
    np.testing.assert_array_equal(fs.X, [[1.5, 2], [-0.03, 4], [0, 5.25]])
    assert fs.y.tolist() == ["cat", "dog", "cat"]
    assert fs.groups.tolist() == ["north", "south", "north"]
    # with groups skipped, 'site' would be a feature column and is not numeric
    with pytest.raises(ValueError, match="column 'site'.*numeric.*'north'"):
        load_features(path, label_column="label", group_column=None)
    # the default group column is optional; a named one is required
    path.write_text("a,y\n1,0\n2,1\n")
    assert load_features(path).groups is None
    with pytest.raises(ValueError, match="no group column 'site'.*\\['a', 'y'\\]"):
        load_features(path, group_column="site")


def test_csv_with_byte_order_mark(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffa,y\r\n1,x\r\n2,z\r\n".encode("utf-8"))
    fs = load_features(path)
    assert fs.X.ravel().tolist() == [1.0, 2.0] and fs.y.tolist() == ["x", "z"]


def test_csv_labels_types(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("x,y\n1,0\n2,1\n")
    assert load_features(path).y.dtype == np.int64
    path.write_text("x,y\n1,0.5\n2,1\n")
    assert load_features(path).y.dtype == np.float64


def test_parquet_flat_columns_and_list_column(tmp_path, pa, pq):
    X, y, groups = make_data("str")
    flat = {f"f{j}": X[:, j] for j in range(X.shape[1])}
    pq.write_table(pa.table({**flat, "y": y, "groups": groups}), tmp_path / "flat.parquet")
    fs = load_features(tmp_path / "flat.parquet")
    np.testing.assert_array_equal(fs.X, X)
    np.testing.assert_array_equal(fs.y, y)
    np.testing.assert_array_equal(fs.groups, groups)
    # variable-length list column of equal-length rows, dictionary-encoded labels
    table = pa.table({"X": pa.array([list(map(float, r)) for r in X]),
                      "y": pa.array(list(y)).dictionary_encode()})
    pq.write_table(table, tmp_path / "list.parquet")
    fs = load_features(tmp_path / "list.parquet")
    np.testing.assert_allclose(fs.X, X)
    np.testing.assert_array_equal(fs.y, y)


def test_parquet_written_by_pandas(tmp_path, pq):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [4, 5, 6],
                       "y": pd.Categorical(["u", "v", "u"])}, index=[10, 20, 30])
    df.to_parquet(tmp_path / "pd.parquet")  # stores the index as __index_level_0__
    fs = load_features(tmp_path / "pd.parquet")
    np.testing.assert_array_equal(fs.X, [[1, 4], [2, 5], [3, 6]])
    assert fs.y.tolist() == ["u", "v", "u"]


def test_parquet_ragged_list_column(tmp_path, pa, pq):
    table = pa.table({"X": pa.array([[1.0, 2.0], [3.0]]), "y": [0, 1]})
    pq.write_table(table, tmp_path / "r.parquet")
    with pytest.raises(ValueError, match="equal length"):
        load_features(tmp_path / "r.parquet")


def test_custom_label_column_npz(tmp_path):
    X, y, groups = make_data()
    save_npz(tmp_path / "f.npz", X=X, target=y, site=groups)
    fs = load_features(tmp_path / "f.npz", label_column="target", group_column="site")
    np.testing.assert_array_equal(fs.y, y)
    np.testing.assert_array_equal(fs.groups, groups)
    with pytest.raises(ValueError, match="no array named 'y'.*'target'"):
        load_features(tmp_path / "f.npz")
    with pytest.raises(ValueError, match="no array named 'domain'"):
        load_features(tmp_path / "f.npz", label_column="target", group_column="domain")


# --------------------------------------------------------------------------- #
# Refusals and validation errors
# --------------------------------------------------------------------------- #


def test_pickled_npz_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, X=np.ones((2, 2)), y=np.array([1, "a"], dtype=object))
    with pytest.raises(ValueError, match="contains pickled objects; lastlayer never unpickles"):
        load_features(path)
    with pytest.raises(ValueError, match=r"np.savez\(path, X=X, y=y\)"):
        load_features(path)


def test_pickled_npy_labels_refused(tmp_path):
    np.save(tmp_path / "X.npy", np.ones((2, 2)))
    np.save(tmp_path / "y.npy", np.array(["a", None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickled objects"):
        load_features(tmp_path / "X.npy")


def test_not_an_npz(tmp_path):
    (tmp_path / "text.npz").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a NumPy .npz/.npy file.*never unpickles"):
        load_features(tmp_path / "text.npz")
    with open(tmp_path / "single.npz", "wb") as f:
        np.save(f, np.ones((2, 2)))
    with pytest.raises(ValueError, match="single .npy array"):
        load_features(tmp_path / "single.npz")
    save_features(tmp_path / "ok.npz", np.ones((2, 2)), [0, 1])
    (tmp_path / "cut.npz").write_bytes((tmp_path / "ok.npz").read_bytes()[:100])
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_features(tmp_path / "cut.npz")


def test_non_finite_features(tmp_path):
    X, y, _ = make_data(d=3)
    X[1, 2] = np.nan
    X[4, 0] = np.inf
    np.savez(tmp_path / "f.npz", X=X, y=y)
    with pytest.raises(ValueError) as err:
        load_features(tmp_path / "f.npz")
    for w in ["finite", "2 non-finite", "1 NaN", "1 inf", "row 1, column 2"]:
        assert w in str(err.value)
    assert "f.npz" in str(err.value)


def test_one_dimensional_features(tmp_path):
    np.savez(tmp_path / "f.npz", X=np.arange(4.0), y=np.arange(4))
    with pytest.raises(ValueError, match=r"2-D.*1-D.*reshape\(-1, 1\)"):
        load_features(tmp_path / "f.npz")


def test_length_mismatch(tmp_path):
    np.savez(tmp_path / "f.npz", X=np.ones((4, 2)), y=np.arange(3))
    with pytest.raises(ValueError, match=r"len\(y\) = 3 and len\(X\) = 4"):
        load_features(tmp_path / "f.npz")
    with pytest.raises(ValueError, match=r"len\(groups\) = 2 and len\(X\) = 4"):
        validate_features(np.ones((4, 2)), np.arange(4), groups=[0, 1])


def test_mixed_type_labels():
    with pytest.raises(ValueError, match="mixed types.*int.*str"):
        validate_features(np.ones((3, 2)), np.array([1, "a", 2], dtype=object))
    with pytest.raises(ValueError, match="mixed types.*str.*int"):
        validate_features(np.ones((2, 2)), ["a", 1])  # a plain list is not coerced to str
    with pytest.raises(ValueError, match="groups.*mixed types"):
        validate_features(np.ones((2, 2)), [0, 1], groups=np.array([1.5, "b"], dtype=object))


def test_mixed_type_labels_csv(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("x,y\n1,0\n2,cat\n3,1\n")
    with pytest.raises(ValueError, match="mixed types.*int.*'0'.*text.*'cat'"):
        load_features(path)


def test_missing_labels():
    with pytest.raises(ValueError, match="missing values.*index 1"):
        validate_features(np.ones((3, 2)), np.array(["a", None, "b"], dtype=object))
    with pytest.raises(ValueError, match="missing values"):
        validate_features(np.ones((2, 2)), np.array([0.0, np.nan]))


def test_missing_label_column_lists_columns(tmp_path, pa, pq):
    path = tmp_path / "f.csv"
    path.write_text("a,b,target\n1,2,0\n")
    with pytest.raises(ValueError, match=r"no label column 'y'.*\['a', 'b', 'target'\]"):
        load_features(path)
    pq.write_table(pa.table({"a": [1.0], "target": [0]}), tmp_path / "f.parquet")
    with pytest.raises(ValueError, match=r"no label column 'y'.*\['a', 'target'\]"):
        load_features(tmp_path / "f.parquet")


def test_non_numeric_feature_column(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text("a,b,y\n1,2,0\n3,oops,1\n")
    with pytest.raises(ValueError, match="column 'b'.*numeric.*'oops'.*row 1"):
        load_features(path)


def test_unknown_suffix(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("1")
    with pytest.raises(ValueError, match=r"suffix '\.txt'.*\.npz.*\.csv.*\.parquet.*\.safetensors"):
        load_features(path)
    with pytest.raises(ValueError, match=r"suffix '\.txt'"):
        save_features(path, np.ones((2, 2)), [0, 1])


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_features(tmp_path / "nope.npz")


def test_empty_and_non_numeric_features():
    with pytest.raises(ValueError, match="non-empty"):
        validate_features(np.ones((0, 3)), [])
    with pytest.raises(ValueError, match="numeric"):
        validate_features(np.array([["a"]]), [0])


def test_validate_normalises():
    X, y, g = validate_features(np.arange(6).reshape(3, 2), np.array(["a", "b", "a"], dtype=object),
                                groups=np.array([b"u", b"v", b"u"]))
    assert X.dtype == np.float64
    assert y.dtype.kind == "U" and g.dtype.kind == "U"
    assert g.tolist() == ["u", "v", "u"]
    X16 = validate_features(np.ones((2, 2), np.float16), [0, 1])[0]
    assert X16.dtype == np.float32


def test_feature_set_validates_and_reprs():
    fs = FeatureSet(np.ones((3, 2), np.float32), [1, 0, 1])
    assert fs.n_samples == 3 and fs.n_features == 2
    assert fs.classes.tolist() == [0, 1]
    assert "n_samples=3" in repr(fs)
    with pytest.raises(ValueError, match="len"):
        FeatureSet(np.ones((3, 2)), [1, 0])


@pytest.mark.parametrize("module, suffix", [("pyarrow", ".parquet"),
                                            ("safetensors", ".safetensors")])
def test_missing_extra_gives_install_hint(tmp_path, monkeypatch, module, suffix):
    X, y, _ = make_data()
    path = tmp_path / f"f{suffix}"
    save_features(path, X, y)
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r'pip install "lastlayer\[io\]"'):
        load_features(path)
    with pytest.raises(ImportError, match=r'pip install "lastlayer\[io\]"'):
        save_features(tmp_path / f"g{suffix}", X, y)


def test_csv_refuses_labels_that_would_not_read_back(tmp_path):
    with pytest.raises(ValueError, match="mixes text labels"):
        save_features(tmp_path / "f.csv", np.ones((2, 1)), ["1", "cat"])
    assert not (tmp_path / "f.csv").exists()


# --------------------------------------------------------------------------- #
# Atomic writes
# --------------------------------------------------------------------------- #


def test_atomic_write_text_and_bytes(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "héllo\n")
    assert path.read_text(encoding="utf-8") == "héllo\n"
    atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert temp_names(tmp_path) == []


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    path.write_text("old")

    def broken_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(llio.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_save_npz_failure_mid_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "f.npz"
    X, y, _ = make_data()
    save_features(path, X, y)
    before = path.read_bytes()
    real_write_array = np.lib.format.write_array
    calls = []

    def write_then_fail(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the first array is written, then the serialiser fails
            fp.write(b"partial")
            raise RuntimeError("serialiser exploded")
        return real_write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_then_fail)
    with pytest.raises(RuntimeError, match="serialiser exploded"):
        save_features(path, X * 2, y)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["f.npz"]
    monkeypatch.undo()
    np.testing.assert_array_equal(load_features(path).X, X)


class HalfWriter:
    """A file whose write stores half the bytes and then fails."""

    def __init__(self, f, exc):
        self._f, self._exc = f, exc

    def write(self, data):
        self._f.write(bytes(data)[: len(data) // 2])
        raise self._exc

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


@pytest.mark.parametrize("exc", [OSError("device went away"), KeyboardInterrupt()])
@pytest.mark.parametrize("suffix", FORMATS)
def test_save_features_failure_keeps_old_file(tmp_path, monkeypatch, suffix, exc):
    path = tmp_path / f"f{suffix}"
    X, y, _ = make_data()
    save_features(path, X, y)
    before = path.read_bytes()
    real_fdopen = os.fdopen
    monkeypatch.setattr(llio.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode), exc))
    with pytest.raises(type(exc)):
        save_features(path, X + 1, y)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_atomic_write_permissions(tmp_path):
    path = tmp_path / "p.txt"
    umask = os.umask(0o022)
    os.umask(umask)
    atomic_write_text(path, "x")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    os.chmod(path, 0o600)
    atomic_write_text(path, "y")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_atomic_write_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory .*nowhere.* does not exist"):
        atomic_write_text(tmp_path / "nowhere" / "a.txt", "x")


def test_save_npz_refuses_object_arrays(tmp_path):
    with pytest.raises(ValueError, match="'y' has dtype object.*never contain pickles"):
        save_npz(tmp_path / "f.npz", X=np.ones(2), y=np.array(["a", 1], dtype=object))
    assert os.listdir(tmp_path) == []


def test_save_npz_reads_without_pickle(tmp_path):
    save_npz(tmp_path / "f.npz", a=np.arange(3), file=np.array(["x", "yy"]),
             allow_pickle=np.float32(1.5))
    with np.load(tmp_path / "f.npz", allow_pickle=False) as data:
        assert data["a"].tolist() == [0, 1, 2]
        assert data["file"].dtype.kind == "U"
        assert data["allow_pickle"] == np.float32(1.5)


# --------------------------------------------------------------------------- #
# Layers
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("classes", [["bird", "cat", "dog"], [0, 1, 2]])
def test_layer_round_trip(tmp_path, classes):
    rng = np.random.default_rng(1)
    coef = rng.standard_normal((3, 5))
    intercept = rng.standard_normal(3)
    path = tmp_path / "layer.npz"
    save_layer(path, coef, intercept, classes, weighting="optimal", ridge=np.float64(0.1),
               counts=np.array([5, 50, 500]), n_features=np.int64(5))
    layer = load_layer(path)
    assert set(layer) == {"coef", "intercept", "classes", "meta"}
    np.testing.assert_array_equal(layer["coef"], coef)
    np.testing.assert_array_equal(layer["intercept"], intercept)
    assert layer["classes"].tolist() == classes
    assert layer["classes"].dtype.kind in ("U", "i")
    assert layer["meta"] == {"weighting": "optimal", "ridge": 0.1, "counts": [5, 50, 500],
                             "n_features": 5}
    with np.load(path, allow_pickle=False) as data:  # plain, pickle-free npz
        assert json.loads(str(data["meta"]))["weighting"] == "optimal"


def test_layer_binary_single_row(tmp_path):
    save_layer(tmp_path / "l.npz", np.ones((1, 4)), 0.5, ["neg", "pos"])
    layer = load_layer(tmp_path / "l.npz")
    assert layer["intercept"].tolist() == [0.5]
    assert layer["meta"] == {}


def test_layer_errors(tmp_path):
    with pytest.raises(ValueError, match="coef.*shape"):
        save_layer(tmp_path / "l.npz", np.ones(4), [0.0], [0, 1])
    with pytest.raises(ValueError, match="intercept.*shape \\(3,\\)"):
        save_layer(tmp_path / "l.npz", np.ones((3, 4)), [0.0], [0, 1, 2])
    with pytest.raises(ValueError, match="3 output row.*2 classes"):
        save_layer(tmp_path / "l.npz", np.ones((3, 4)), np.zeros(3), [0, 1])
    with pytest.raises(ValueError, match="mixed types"):
        save_layer(tmp_path / "l.npz", np.ones((2, 4)), np.zeros(2),
                   np.array([0, "a"], dtype=object))
    with pytest.raises(ValueError, match="JSON"):
        save_layer(tmp_path / "l.npz", np.ones((2, 4)), np.zeros(2), [0, 1], bad=object())
    assert os.listdir(tmp_path) == []
    np.savez(tmp_path / "other.npz", a=np.ones(2))
    with pytest.raises(ValueError, match="not a lastlayer layer file.*'a'"):
        load_layer(tmp_path / "other.npz")
