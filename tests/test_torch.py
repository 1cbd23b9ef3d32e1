"""Tests of the PyTorch bridge: feature extraction and last-layer replacement."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sklearn.linear_model import LogisticRegression, Ridge  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

from lastlayer.torch import (  # noqa: E402
    cuda_available,
    extract_features,
    find_last_linear,
    linear_input_features,
    replace_last_layer,
    resolve_device,
)

D_IN, D_FEAT, K = 6, 8, 3


class TinyNet(nn.Module):
    """body -> dropout -> head, with BatchNorm so that train/eval mode matters."""

    def __init__(self, k=K):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(D_IN, D_FEAT), nn.BatchNorm1d(D_FEAT), nn.Tanh())
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(D_FEAT, k)
        with torch.no_grad():  # non-trivial running statistics
            self.body[1].running_mean.uniform_(-0.5, 0.5)
            self.body[1].running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        return self.head(self.drop(self.body(x)))


@pytest.fixture
def net():
    return TinyNet()


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(37, D_IN)).astype(np.float32)


def _reference_features(model, x):
    """The head's input computed by hand in eval mode."""
    model.eval()
    with torch.no_grad():
        return model.body(torch.from_numpy(x)).numpy()


def test_output_shape_dtype_and_determinism(net, x):
    a = extract_features(net, x, batch_size=8, progress=False)
    b = extract_features(net, x, batch_size=8, progress=False)
    assert a.shape == (37, K) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    net.eval()
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(a, expected, rtol=1e-6, atol=1e-6)


def test_features_are_flattened():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1))
    imgs = torch.randn(5, 1, 4, 4)
    f = extract_features(model, imgs, progress=False)
    assert f.shape == (5, 2 * 4 * 4) and f.dtype == np.float32


def test_training_state_restored(net, x):
    net.train()
    net.body.eval()  # mixed state must survive exactly
    before = {name: m.training for name, m in net.named_modules()}
    f = extract_features(net, x, progress=False)
    assert {name: m.training for name, m in net.named_modules()} == before
    # eval mode was used: dropout off, running statistics used
    net_eval = TinyNet()
    np.testing.assert_allclose(f, extract_features(net_eval, x, progress=False),
                               rtol=1e-6, atol=1e-6)


def test_layer_name_callable_and_pre_hook_agree(net, x):
    ref = _reference_features(TinyNet(), x)
    by_name = extract_features(net, x, layer="body", progress=False)
    by_callable = extract_features(net, x, layer=lambda m, t: m.body(t), progress=False)
    by_pre_hook = linear_input_features(net, x, progress=False)  # auto: head
    by_attr = linear_input_features(net, x, attr="head", progress=False)
    for f in (by_name, by_callable, by_pre_hook, by_attr):
        assert f.shape == (37, D_FEAT)
        np.testing.assert_allclose(f, ref, rtol=1e-6, atol=1e-6)


def test_named_layer_skips_the_rest_of_the_forward_pass(net, x):
    def boom(module, args):
        raise AssertionError("the head should not run")

    handle = net.head.register_forward_pre_hook(boom)
    try:
        f = extract_features(net, x, layer="drop", progress=False)
    finally:
        handle.remove()
    assert f.shape == (37, D_FEAT)


def test_input_kinds_agree(net, x):
    t = torch.from_numpy(x)
    y = torch.arange(len(x))
    ref = extract_features(net, x, batch_size=10, progress=False)
    variants = [
        t,
        t.double(),  # cast to the model dtype
        x.astype(np.float64),
        TensorDataset(t),
        TensorDataset(t, y),  # (x, y) pairs: y ignored
        DataLoader(TensorDataset(t, y), batch_size=10, shuffle=False),
        DataLoader(TensorDataset(t), batch_size=10, shuffle=False),
    ]
    for data in variants:
        f = extract_features(net, data, batch_size=10, progress=False)
        np.testing.assert_allclose(f, ref, rtol=1e-6, atol=1e-6)


def test_transform_is_applied(net, x):
    f = extract_features(net, 2 * x, transform=lambda t: t / 2, progress=False)
    np.testing.assert_allclose(f, extract_features(net, x, progress=False), atol=1e-6)


def test_num_threads_is_restored(net, x):
    before = torch.get_num_threads()
    f = extract_features(net, x, num_threads=1, progress=False)
    assert torch.get_num_threads() == before
    np.testing.assert_allclose(f, extract_features(net, x, progress=False), atol=1e-6)
    with pytest.raises(ValueError, match="'num_threads' parameter"):
        extract_features(net, x, num_threads=0, progress=False)


def test_bad_arguments(net, x):
    with pytest.raises(ValueError, match="'layer' parameter must name a submodule"):
        extract_features(net, x, layer="nope", progress=False)
    with pytest.raises(ValueError, match="'batch_size' parameter"):
        extract_features(net, x, batch_size=0, progress=False)
    with pytest.raises(TypeError, match="'data' parameter"):
        extract_features(net, [1, 2, 3], progress=False)
    with pytest.raises(ValueError, match="'device' parameter"):
        extract_features(net, x, device="potato", progress=False)


@pytest.mark.skipif(cuda_available(), reason="checks the error raised without CUDA")
def test_cuda_unavailable_is_a_clear_error(net, x):
    with pytest.raises(ValueError, match="CUDA is not available"):
        extract_features(net, x, device="cuda", progress=False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:0")


def _fit(features, labels):
    return LogisticRegression(C=10.0, max_iter=2000).fit(features.astype(np.float64), labels)


@pytest.mark.parametrize("n_classes", [2, 3, 4])
def test_replace_last_layer_matches_decision_function(net, n_classes):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, D_IN)).astype(np.float32)
    feats = linear_input_features(net, x, progress=False)
    labels = rng.integers(0, n_classes, size=len(x))
    clf = _fit(feats, labels)
    head_before = net.head.weight.detach().clone()

    new = replace_last_layer(net, clf)
    out = extract_features(new, x, progress=False)
    expected = clf.decision_function(feats)
    if n_classes == 2:
        assert new.head.out_features == 1
        expected = expected[:, None]
    else:
        assert new.head.out_features == n_classes
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    # the original is untouched and the body is copied, not shared
    assert torch.equal(net.head.weight, head_before) and net.head.out_features == K
    assert new.body[0].weight.data_ptr() != net.body[0].weight.data_ptr()
    np.testing.assert_array_equal(linear_input_features(new, x, progress=False), feats)


def test_replace_nested_layer_by_dotted_name():
    model = nn.Sequential(nn.Linear(D_IN, D_FEAT), nn.ReLU(),
                          nn.Sequential(nn.Linear(D_FEAT, D_FEAT), nn.Linear(D_FEAT, K)))
    model.train()
    assert find_last_linear(model)[0] == "2.1"
    x = np.random.default_rng(2).normal(size=(50, D_IN)).astype(np.float32)
    feats = linear_input_features(model, x, attr="2.1", progress=False)
    labels = np.arange(50) % K
    clf = _fit(feats, labels)
    new = replace_last_layer(model, clf, attr="2.1")
    assert new.training  # state of the copy follows the original
    np.testing.assert_allclose(extract_features(new, x, progress=False),
                               clf.decision_function(feats), rtol=1e-5, atol=1e-5)


def test_replace_accepts_1d_coef_and_scalar_intercept(net):
    x = np.random.default_rng(3).normal(size=(40, D_IN)).astype(np.float32)
    feats = linear_input_features(net, x, progress=False)
    reg = Ridge(alpha=1.0).fit(feats, feats[:, 0] - feats[:, 1])  # coef_ (d,), scalar b
    new = replace_last_layer(net, reg)
    np.testing.assert_allclose(extract_features(new, x, progress=False)[:, 0],
                               reg.predict(feats), rtol=1e-5, atol=1e-5)


def test_replace_errors(net):
    class NotFitted:
        pass

    class WrongShape:
        coef_ = np.zeros((2, D_FEAT + 1))
        intercept_ = np.zeros(2)

    with pytest.raises(TypeError, match="'coef_' and 'intercept_'"):
        replace_last_layer(net, NotFitted())
    with pytest.raises(ValueError, match=r"coef_ must have shape \(n_outputs, 8\)"):
        replace_last_layer(net, WrongShape())
    with pytest.raises(ValueError, match="must name an nn.Linear"):
        replace_last_layer(net, WrongShape(), attr="body")
    with pytest.raises(ValueError, match="no nn.Linear"):
        find_last_linear(nn.Sequential(nn.ReLU()))


@pytest.mark.gpu
@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(net, x):
    cpu = linear_input_features(net, x, progress=False)
    gpu = linear_input_features(net, x, device="cuda", progress=False)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-5)
    # the model is moved back to where it was
    assert all(p.device.type == "cpu" for p in net.parameters())
    labels = np.arange(len(x)) % K
    clf = _fit(cpu, labels)
    new = replace_last_layer(net.cuda(), clf)
    assert new.head.weight.device.type == "cuda"
    out = extract_features(new, x, device="cuda", progress=False)
    np.testing.assert_allclose(out, clf.decision_function(cpu), rtol=1e-4, atol=1e-4)
