"""PyTorch bridge: extract penultimate features and put a refitted last layer back.

Last-layer retraining works on the *input* of a network's final linear layer: the
frozen body maps an image ``x`` to a feature vector ``phi(x)``, the head computes
``W phi(x) + b``. This module

* extracts features from any ``torch.nn.Module`` (:func:`extract_features`),
  either the model output, the output of a named submodule, or anything a
  callable computes; :func:`linear_input_features` captures the input of the
  last ``nn.Linear`` with a forward pre-hook, which is ``phi(x)``;
* builds a copy of the network whose last linear layer carries the ``coef_`` and
  ``intercept_`` of a fitted linear model (:func:`replace_last_layer`), so that
  its outputs equal ``fitted.decision_function(phi(x))``.

Needs the optional extra: ``pip install "lastlayer[torch]"``.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as err:  # pragma: no cover - exercised only without torch
    raise ImportError(
        "lastlayer.torch needs PyTorch, which is not installed. "
        'Install it with: pip install "lastlayer[torch]"'
    ) from err

from tqdm.auto import tqdm

from ._validation import check_batch_size, check_num_threads

__all__ = [
    "cuda_available",
    "extract_features",
    "finetune_classifier",
    "find_last_linear",
    "linear_input_features",
    "replace_last_layer",
    "reset_last_layer",
    "resolve_device",
]


# --------------------------------------------------------------------------- devices


def cuda_available() -> bool:
    """Return True when PyTorch can use a CUDA device."""
    return bool(torch.cuda.is_available())


def resolve_device(device) -> torch.device:
    """Turn ``device`` into a ``torch.device``, failing clearly when it is unusable.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... or a ``torch.device``.

    Raises
    ------
    ValueError
        When ``device`` is not a device string, or asks for CUDA where none is
        available.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            "The 'device' parameter must be a torch device such as 'cpu' or "
            f"'cuda'. Got {device!r} instead."
        ) from err
    if dev.type == "cuda":
        if not cuda_available():
            raise ValueError(
                f"The 'device' parameter is {device!r} but CUDA is not available "
                "here (torch.cuda.is_available() is False). Use device='cpu'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"The 'device' parameter is {device!r} but only "
                f"{torch.cuda.device_count()} CUDA device(s) are visible."
            )
    return dev


# --------------------------------------------------------------------------- batching


def _first(batch):
    """The input part of a batch: ``x`` from ``x``, ``(x, y)`` or ``[x, y, ...]``."""
    if isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError("The data yielded an empty batch.")
        return batch[0]
    return batch


def _batches(data, batch_size):
    """Return ``(iterable of input batches, number of batches or None)``."""
    from torch.utils.data import DataLoader, Dataset, IterableDataset

    if isinstance(data, np.ndarray):
        data = torch.from_numpy(np.ascontiguousarray(data))
    if isinstance(data, torch.Tensor):
        if data.ndim == 0:
            raise ValueError(
                "The 'data' parameter must have a leading sample axis. "
                "Got a 0-d tensor instead."
            )
        starts = range(0, data.shape[0], batch_size)
        return (data[s:s + batch_size] for s in starts), len(starts)
    if isinstance(data, (Dataset, IterableDataset)):
        data = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=0)
    if isinstance(data, DataLoader):
        try:
            total = len(data)
        except TypeError:
            total = None
        return (_first(b) for b in data), total
    raise TypeError(
        "The 'data' parameter must be a torch.Tensor, a numpy.ndarray, a "
        f"torch Dataset or a DataLoader. Got {type(data).__name__} instead."
    )


def _model_dtype(model):
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def _single_device(model):
    """The device of all parameters and buffers, or None (none, or several)."""
    devices = {t.device for t in model.parameters()} | {t.device for t in model.buffers()}
    return devices.pop() if len(devices) == 1 else None


# --------------------------------------------------------------------------- capture


class _Captured(Exception):
    """Raised by a capture hook to skip the rest of the forward pass."""


def _tensor_of(value, what):
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        value = value[0]
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{what} is a {type(value).__name__}, not a tensor.")
    return value


def _get_module(model, name, param="layer"):
    modules = dict(model.named_modules())
    if name not in modules:
        some = [n for n in modules if n][-8:]
        raise ValueError(
            f"The '{param}' parameter must name a submodule of the model (a key of "
            f"model.named_modules()). Got {name!r}; the last few names are {some}."
        )
    return modules[name]


def _capture_fn(model, layer, where):
    """A function ``x -> features`` for the output/input of the named submodule.

    The hook raises after capturing, so the layers after it are not computed.
    """
    module = _get_module(model, layer)
    box = {}

    def hook_output(mod, args, output):
        box["x"] = _tensor_of(output, f"The output of layer {layer!r}")
        raise _Captured

    def hook_input(mod, args):
        box["x"] = _tensor_of(args, f"The input of layer {layer!r}")
        raise _Captured

    def run(m, x):
        if where == "output":
            handle = module.register_forward_hook(hook_output)
        else:
            handle = module.register_forward_pre_hook(hook_input)
        box.clear()
        try:
            m(x)
        except _Captured:
            pass
        finally:
            handle.remove()
        if "x" not in box:
            raise RuntimeError(
                f"Layer {layer!r} was not called during the forward pass, so "
                "nothing was captured."
            )
        return box.pop("x")

    return run


def _features_fn(model, layer):
    if layer is None:
        return lambda m, x: _tensor_of(m(x), "The model output")
    if isinstance(layer, str):
        return _capture_fn(model, layer, "output")
    if callable(layer):
        return layer
    raise TypeError(
        "The 'layer' parameter must be None, a module name or a callable "
        f"(model, x) -> features. Got {type(layer).__name__} instead."
    )


def _run_features(model, data, fn, *, batch_size, device, progress, transform,
                  num_threads=None):
    batch_size = check_batch_size(batch_size)
    num_threads = check_num_threads(num_threads)
    dev = resolve_device(device)
    if transform is not None and not callable(transform):
        raise TypeError(
            "The 'transform' parameter must be None or a callable applied to each "
            f"input batch. Got {type(transform).__name__} instead."
        )
    batches, total = _batches(data, batch_size)
    dtype = _model_dtype(model)

    modes = [(m, m.training) for m in model.modules()]
    home = _single_device(model)
    moved = home is not None and home != dev
    threads = torch.get_num_threads()
    out = []
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        model.eval()
        if moved:
            model.to(dev)
        with torch.inference_mode():
            for x in tqdm(batches, total=total, disable=not progress,
                          desc="features", unit="batch", leave=False):
                if not isinstance(x, torch.Tensor):
                    x = torch.as_tensor(np.asarray(x))
                x = x.to(dev)
                if transform is not None:
                    x = transform(x)
                if x.is_floating_point() and x.dtype != dtype:
                    x = x.to(dtype)
                f = _tensor_of(fn(model, x), "The features")
                out.append(f.detach().reshape(f.shape[0], -1).to("cpu", torch.float32)
                           .numpy())
    finally:
        if num_threads is not None:
            torch.set_num_threads(threads)
        if moved:
            model.to(home)
        for m, mode in modes:
            m.training = mode
    if not out:
        return np.empty((0, 0), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(out, axis=0), dtype=np.float32)


def extract_features(model, data, *, layer=None, batch_size=256, device="cpu",
                     progress=True, transform=None, num_threads=None) -> np.ndarray:
    """Run a frozen model over ``data`` and return its features as a float32 array.

    Parameters
    ----------
    model : torch.nn.Module
        The network. It is put in eval mode for the pass and every submodule is
        returned to its previous train/eval state afterwards. If all its
        parameters live on one device other than ``device``, it is moved there
        for the pass and moved back afterwards.
    data : torch.Tensor, numpy.ndarray, torch Dataset or DataLoader
        Inputs with the sample axis first. A Dataset or DataLoader may yield
        ``x`` or ``(x, y, ...)``; only ``x`` is used. A DataLoader is used as is
        (its own batch size and order); anything else is cut into batches of
        ``batch_size`` in order.
    layer : None, str or callable, default=None
        What to return: None, the model output; a name from
        ``model.named_modules()``, the *output* of that submodule (captured by a
        forward hook; the rest of the forward pass is skipped); a callable
        ``layer(model, x) -> tensor``, whatever it returns.
    batch_size : int, default=256
        Samples per forward pass for tensors, arrays and Datasets.
    device : str or torch.device, default="cpu"
        Where the forward passes run. ``"cuda"`` without CUDA raises ValueError.
    progress : bool, default=True
        Show a tqdm progress bar over batches.
    transform : callable, default=None
        Applied to each input batch (a tensor already on ``device``) before the
        model, e.g. ``functools.partial(preprocess_grayscale, size=64)``.
        Floating-point batches are then cast to the model's parameter dtype.
    num_threads : int or None, default=None
        CPU threads for the pass (``torch.set_num_threads``, restored afterwards);
        None keeps PyTorch's setting. When other processes share the cores, 1
        thread can be several times faster than oversubscribing them.

    Returns
    -------
    features : ndarray of shape (n_samples, n_features), float32
        One row per sample, each sample's features flattened.

    Notes
    -----
    Runs under ``torch.inference_mode()``. On CPU the result is deterministic for a
    fixed batch size; different batch sizes may differ in the last float bits.
    """
    fn = _features_fn(model, layer)
    return _run_features(model, data, fn, batch_size=batch_size, device=device,
                         progress=progress, transform=transform,
                         num_threads=num_threads)


# --------------------------------------------------------------------------- last layer


def find_last_linear(model, attr=None) -> tuple[str, nn.Linear]:
    """Return ``(name, module)`` of the model's last linear layer.

    Parameters
    ----------
    model : torch.nn.Module
    attr : str or None, default=None
        Dotted name of the layer (``"_fc"``, ``"head.fc"``). None picks the last
        ``nn.Linear`` in ``model.named_modules()`` order, which is registration
        order and is the head for the usual ``body -> pool -> fc`` networks.
    """
    if attr is not None:
        if not isinstance(attr, str):
            raise TypeError(
                "The 'attr' parameter must be None or a dotted module name. "
                f"Got {type(attr).__name__} instead."
            )
        module = _get_module(model, attr, param="attr")
        if not isinstance(module, nn.Linear):
            raise ValueError(
                f"The 'attr' parameter must name an nn.Linear layer. {attr!r} is a "
                f"{type(module).__name__}."
            )
        return attr, module
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not found:
        raise ValueError(
            "The model has no nn.Linear layer; pass the layer's dotted name as "
            "attr=... if the head is another kind of module."
        )
    return found[-1]


def linear_input_features(model, data, attr=None, *, batch_size=256, device="cpu",
                          progress=True, transform=None,
                          num_threads=None) -> np.ndarray:
    """Features at the *input* of the last linear layer: what the head sees.

    Captures the first positional argument of the layer with a forward pre-hook
    (and skips the layer itself). These are the features on which to refit the
    last layer; see :func:`replace_last_layer`. Other parameters as in
    :func:`extract_features`.

    Parameters
    ----------
    attr : str or None, default=None
        Dotted name of the linear layer; None picks the last ``nn.Linear``.

    Returns
    -------
    features : ndarray of shape (n_samples, in_features), float32
    """
    name, _ = find_last_linear(model, attr)
    fn = _capture_fn(model, name, "input")
    return _run_features(model, data, fn, batch_size=batch_size, device=device,
                         progress=progress, transform=transform,
                         num_threads=num_threads)


def _coef_intercept(fitted, in_features):
    if not (hasattr(fitted, "coef_") and hasattr(fitted, "intercept_")):
        raise TypeError(
            "The 'fitted' parameter must be a fitted linear model with 'coef_' and "
            f"'intercept_' attributes. Got {type(fitted).__name__} without them."
        )
    coef = np.asarray(fitted.coef_, dtype=np.float64)
    if coef.ndim == 1:
        coef = coef[None, :]
    if coef.ndim != 2 or coef.shape[1] != in_features:
        raise ValueError(
            f"fitted.coef_ must have shape (n_outputs, {in_features}) to match the "
            f"layer's in_features. Got shape {np.shape(fitted.coef_)} instead."
        )
    k = coef.shape[0]
    intercept = np.ravel(np.asarray(fitted.intercept_, dtype=np.float64))
    if intercept.size == 1:
        intercept = np.full(k, intercept[0])
    if intercept.shape != (k,):
        raise ValueError(
            f"fitted.intercept_ must be a scalar or have shape ({k},) to match "
            f"coef_. Got shape {np.shape(fitted.intercept_)} instead."
        )
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
        raise ValueError("fitted.coef_ and fitted.intercept_ must be finite.")
    return coef, intercept


def replace_last_layer(model, fitted, *, attr=None) -> nn.Module:
    """Return a deep copy of ``model`` whose last linear layer is ``fitted``.

    The new layer is ``nn.Linear(d, K)`` with weight ``fitted.coef_`` and bias
    ``fitted.intercept_``, so for features ``phi(x)`` captured at the layer's
    input (:func:`linear_input_features`)::

        new_model(x) == fitted.decision_function(phi(x))

    For a binary model (``coef_`` of shape (1, d)) the network ends in a single
    logit column, positive for ``fitted.classes_[1]``. For multiclass the output
    columns follow ``fitted.classes_``.

    Parameters
    ----------
    model : torch.nn.Module
        Left unchanged.
    fitted : object
        A fitted scikit-learn-style linear model with ``coef_`` of shape (K, d),
        (1, d) or (d,) and ``intercept_`` of shape (K,) or a scalar, in the
        units of the raw features (not of internally standardised ones).
    attr : str or None, default=None
        Dotted name of the layer to replace; None picks the last ``nn.Linear``.

    Returns
    -------
    new_model : torch.nn.Module
        The copy, in the same train/eval state as ``model``.
    """
    name, old = find_last_linear(model, attr)
    coef, intercept = _coef_intercept(fitted, old.in_features)
    new = copy.deepcopy(model)
    w = old.weight
    layer = nn.Linear(old.in_features, coef.shape[0], bias=True,
                      device=w.device, dtype=w.dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(coef, dtype=w.dtype))
        layer.bias.copy_(torch.as_tensor(intercept, dtype=w.dtype))
    layer.train(old.training)
    if name == "":  # the model is itself the linear layer
        return layer
    parent_name, _, child = name.rpartition(".")
    parent = new.get_submodule(parent_name) if parent_name else new
    setattr(parent, child, layer)
    return new


# --------------------------------------------------------------------------- fine-tuning


def reset_last_layer(model, n_outputs, *, attr=None, seed=0) -> nn.Module:
    """Replace the model's last linear layer, in place, by a fresh ``nn.Linear(d, K)``.

    The new layer has PyTorch's default initialisation drawn from a generator
    seeded with ``seed`` (the global RNG is left untouched), the dtype and device
    of the old one, and its train/eval state.

    Parameters
    ----------
    model : torch.nn.Module
        Changed in place (use ``copy.deepcopy`` first to keep the original).
    n_outputs : int
        Outputs ``K`` of the new layer (the number of classes).
    attr : str or None, default=None
        Dotted name of the layer; None picks the last ``nn.Linear``.
    seed : int, default=0

    Returns
    -------
    model : torch.nn.Module
        The same object, for chaining.
    """
    if isinstance(n_outputs, bool) or not isinstance(n_outputs, numbers.Integral) \
            or n_outputs < 1:
        raise ValueError("The 'n_outputs' parameter must be an int in the range [1, inf). "
                         f"Got {n_outputs!r} instead.")
    name, old = find_last_linear(model, attr)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        layer = nn.Linear(old.in_features, int(n_outputs), bias=True,
                          device=old.weight.device, dtype=old.weight.dtype)
    layer.train(old.training)
    if name == "":
        raise ValueError("The model is itself a linear layer; build a new nn.Linear instead.")
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, layer)
    return model


_OPTIMIZERS = ("adam", "sgd")


def finetune_classifier(model, images_or_tensor, labels, *, epochs=3, lr=1e-3, batch_size=64,  # long: one loop
                        transform=None, num_threads=None, progress=True, seed=0,
                        optimizer="adam", momentum=0.9, weight_decay=0.0,
                        schedule="cosine", device="cpu", return_history=False):
    r"""Fine-tune every parameter of a classifier with cross-entropy.

    Minimises the mean cross-entropy ``-log softmax(model(transform(x_i)))_{y_i}``
    over mini-batches of a fresh random permutation per epoch (plus
    ``weight_decay``), with Adam or SGD with momentum, the learning rate annealed
    per step along a half cosine from ``lr`` to zero (``schedule="cosine"``) or
    kept constant (``schedule=None``). The model's output must have one column per
    class: replace its head first, e.g. with :func:`reset_last_layer`.

    Deterministic for a fixed ``seed``, batch size and thread count on CPU: the
    shuffling uses its own generator, and dropout (and anything else drawing from
    the global torch RNG) runs inside ``torch.random.fork_rng`` seeded with ``seed``,
    so the caller's global RNG state is left as it was.

    Parameters
    ----------
    model : torch.nn.Module
        Trained in place; returned in eval mode.
    images_or_tensor : numpy.ndarray or torch.Tensor of shape (n, ...)
        Raw inputs, sample axis first (e.g. uint8 images); ``transform`` turns a
        batch into what the model takes.
    labels : array-like of int of shape (n,)
        Class indices in ``[0, K)``.
    epochs : int, default=3
    lr : float, default=1e-3
    batch_size : int, default=64
        The last, smaller batch of an epoch is kept.
    transform : callable or None
        Applied to each batch (on ``device``) before the forward pass, e.g.
        ``functools.partial(lastlayer.datasets.preprocess_grayscale, size=64)``.
    num_threads : int or None
        CPU threads during training (``torch.set_num_threads``, restored after).
    progress : bool, default=True
        A tqdm bar over steps, showing the running loss.
    seed : int, default=0
    optimizer : {"adam", "sgd"}, default="adam"
    momentum : float, default=0.9
        SGD only.
    weight_decay : float, default=0.0
    schedule : {"cosine", None}, default="cosine"
    device : str or torch.device, default="cpu"
    return_history : bool, default=False
        Also return a dict: ``"loss"`` (mean training loss per epoch),
        ``"accuracy"`` (training accuracy per epoch, in train mode),
        ``"seconds"`` (wall time) and ``"steps"``.

    Returns
    -------
    model : torch.nn.Module
        The same object, trained, in eval mode.
    history : dict, only with ``return_history``
    """
    import time

    for p, v, lo in (("epochs", epochs, 1), ("batch_size", batch_size, 1)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
            raise ValueError(f"The '{p}' parameter must be an int in the range [{lo}, inf). "
                             f"Got {v!r} instead.")
    if not (isinstance(lr, numbers.Real) and not isinstance(lr, bool) and lr > 0):
        raise ValueError(f"The 'lr' parameter must be a float in the range (0, inf). "
                         f"Got {lr!r} instead.")
    if optimizer not in _OPTIMIZERS:
        raise ValueError(f"The 'optimizer' parameter must be one of {list(_OPTIMIZERS)}. "
                         f"Got {optimizer!r} instead.")
    if schedule not in ("cosine", None):
        raise ValueError("The 'schedule' parameter must be 'cosine' or None. "
                         f"Got {schedule!r} instead.")
    if transform is not None and not callable(transform):
        raise TypeError("The 'transform' parameter must be None or a callable. "
                        f"Got {type(transform).__name__} instead.")
    num_threads = check_num_threads(num_threads)
    dev = resolve_device(device)
    x_all = images_or_tensor
    if isinstance(x_all, np.ndarray):
        x_all = torch.from_numpy(np.ascontiguousarray(x_all))
    if not isinstance(x_all, torch.Tensor) or x_all.ndim < 1:
        raise TypeError("The 'images_or_tensor' parameter must be a numpy array or a tensor "
                        f"with a sample axis. Got {type(images_or_tensor).__name__}.")
    y_all = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    n = x_all.shape[0]
    if y_all.ndim != 1 or y_all.shape[0] != n:
        raise ValueError(f"'labels' must have shape ({n},) to match the inputs. "
                         f"Got shape {tuple(y_all.shape)} instead.")
    if n == 0:
        raise ValueError("There is nothing to train on: the inputs are empty.")
    dtype = _model_dtype(model)
    model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    steps_per_epoch = -(-n // int(batch_size))
    total = steps_per_epoch * int(epochs)
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
             if schedule == "cosine" else None)
    gen = torch.Generator().manual_seed(int(seed))
    history = {"loss": [], "accuracy": [], "steps": total}
    threads = torch.get_num_threads()
    t0 = time.perf_counter()
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
            torch.manual_seed(int(seed))
            model.train()
            bar = tqdm(total=total, disable=not progress, desc="fine-tuning", unit="step")
            for _ in range(int(epochs)):
                order = torch.randperm(n, generator=gen)
                loss_sum, correct = 0.0, 0
                for s in range(0, n, int(batch_size)):
                    idx = order[s:s + int(batch_size)]
                    xb = x_all[idx].to(dev)
                    yb = y_all[idx].to(dev)
                    if transform is not None:
                        xb = transform(xb)
                    if xb.is_floating_point() and xb.dtype != dtype:
                        xb = xb.to(dtype)
                    out = model(xb)
                    loss = nn.functional.cross_entropy(out, yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
                    loss_sum += float(loss.detach()) * idx.numel()
                    correct += int((out.detach().argmax(1) == yb).sum())
                    bar.update()
                    bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
                history["loss"].append(loss_sum / n)
                history["accuracy"].append(correct / n)
            bar.close()
    finally:
        if num_threads is not None:
            torch.set_num_threads(threads)
        model.eval()
    history["seconds"] = time.perf_counter() - t0
    return (model, history) if return_history else model
