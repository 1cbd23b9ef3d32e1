"""Tests of :func:`lastlayer.torch.finetune_classifier` and :func:`reset_last_layer`."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from lastlayer.torch import finetune_classifier, reset_last_layer  # noqa: E402

D_IN, K = 10, 3


class SmallNet(nn.Module):
    """body with BatchNorm and dropout (train/eval mode matters) -> head."""

    def __init__(self, k=5):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(D_IN, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                  nn.Dropout(0.2))
        self.head = nn.Linear(16, k)

    def forward(self, x):
        return self.head(self.body(x))


def _data(n=240, seed=0):
    means = np.random.default_rng(123).normal(scale=2.0, size=(K, D_IN))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, size=n)
    x = (means[y] + rng.normal(size=(n, D_IN))).astype(np.float32)
    return x, y


def _net(seed=0):
    torch.manual_seed(seed)
    return reset_last_layer(SmallNet(), K, seed=seed)


def _fit(seed=0, **kw):
    x, y = _data()
    opts = dict(epochs=4, lr=1e-2, batch_size=32, progress=False, seed=seed,
                return_history=True, num_threads=1)
    opts.update(kw)
    return finetune_classifier(_net(), x, y, **opts)


def test_reset_last_layer_shape_and_seed():
    a = reset_last_layer(SmallNet(), K, seed=3)
    b = reset_last_layer(SmallNet(), K, seed=3)
    assert a.head.out_features == K and a.head.in_features == 16
    assert torch.equal(a.head.weight, b.head.weight)
    net = SmallNet()
    state = torch.random.get_rng_state()
    reset_last_layer(net, K, seed=4)
    assert torch.equal(state, torch.random.get_rng_state())  # global RNG untouched
    with pytest.raises(ValueError, match="n_outputs"):
        reset_last_layer(SmallNet(), 0)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_loss_decreases_and_eval_mode(optimizer):
    model, hist = _fit(optimizer=optimizer, lr={"adam": 1e-2, "sgd": 0.1}[optimizer])
    assert len(hist["loss"]) == 4 and hist["steps"] == 4 * 8
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert not model.training and not any(m.training for m in model.modules())
    x, y = _data(seed=1)
    with torch.no_grad():
        acc = (model(torch.from_numpy(x)).argmax(1).numpy() == y).mean()
    assert acc > 0.8


def test_deterministic_with_seed_and_global_rng_kept():
    state = torch.random.get_rng_state()
    m1, h1 = _fit(seed=7)
    assert torch.equal(state, torch.random.get_rng_state())
    m2, h2 = _fit(seed=7)
    m3, _ = _fit(seed=8)
    assert h1["loss"] == h2["loss"]
    for p1, p2, p3 in zip(m1.parameters(), m2.parameters(), m3.parameters()):
        assert torch.equal(p1, p2)
    assert any(not torch.equal(p1, p3) for p1, p3 in zip(m1.parameters(), m3.parameters()))


def test_transform_and_tensor_input():
    x, y = _data()
    seen = []

    def transform(batch):
        seen.append(batch.dtype)
        return batch.to(torch.float32) * 0.5

    model = finetune_classifier(_net(), torch.from_numpy(x).double(), y, epochs=1,
                                batch_size=64, transform=transform, progress=False)
    assert seen and all(d == torch.float64 for d in seen)
    assert not model.training


def test_parameter_errors():
    x, y = _data()
    with pytest.raises(ValueError, match="epochs"):
        finetune_classifier(_net(), x, y, epochs=0, progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        finetune_classifier(_net(), x, y, optimizer="lbfgs", progress=False)
    with pytest.raises(ValueError, match="labels"):
        finetune_classifier(_net(), x, y[:-1], progress=False)
    with pytest.raises(ValueError, match="lr"):
        finetune_classifier(_net(), x, y, lr=0.0, progress=False)
