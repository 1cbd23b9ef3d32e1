"""Sufficient statistics computed with torch on a device (a GPU when one is there)."""

from __future__ import annotations

import numpy as np

from .._core.stats import SufficientStats
from .._validation import check_int, check_row_inputs
from ._sources import DEFAULT_BLOCK_ROWS, as_source
from ._streaming import progress_bar

__all__ = ["torch_statistics"]

_TORCH_HINT = 'pip install "lastlayer[torch]"'


def _import_torch():
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"torch_statistics needs torch: {_TORCH_HINT}") from exc
    return torch


def torch_statistics(X, cells, n_cells, sample_weight=None, *, device="cuda", dtype=None,
                     block_rows=DEFAULT_BLOCK_ROWS, progress=False):
    """Per-cell sufficient statistics computed with torch on a device (e.g. a GPU).

    Blocks of rows are moved to ``device``, cast to ``dtype`` and reduced there;
    the Gram matrices and sums are accumulated on the device in float64.

    Parameters
    ----------
    X : torch tensor, array, np.memmap or anything :func:`as_source` accepts
        A tensor is sliced in blocks as it is (it may already live on the device);
        anything else is read block by block through :func:`as_source`.
    cells : array-like of int of shape (n_samples,)
    n_cells : int
    sample_weight : array-like of shape (n_samples,), default=None
    device : str or torch.device, default="cuda"
    dtype : torch.dtype, default=None
        Compute dtype of the block products; None is ``torch.float64`` (exact
        agreement with :func:`lastlayer.solvers.sufficient_statistics`).
        ``torch.float32`` is much faster on most GPUs but each block's Gram carries
        float32 round-off (relative ``~1e-7 * sqrt(block_rows)``).
    block_rows : int, default=65536
    progress : bool, default=False

    Returns
    -------
    SufficientStats
        NumPy float64 arrays.

    Raises
    ------
    RuntimeError
        ``device`` is a CUDA device and ``torch.cuda.is_available()`` is False.
    ImportError
        torch is not installed (``pip install "lastlayer[torch]"``).
    """
    torch = _import_torch()
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f"torch_statistics(device={str(device)!r}) needs a CUDA device, but "
            f"torch.cuda.is_available() is False (torch {torch.__version__}). Pass "
            f"device='cpu', or use a CUDA build of torch on a machine with a GPU.")
    dtype = torch.float64 if dtype is None else dtype
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(
            f"The 'dtype' parameter must be a floating torch dtype. Got {dtype!r} instead.")
    n_cells = check_int(n_cells, "n_cells", low=1)
    block_rows = check_int(block_rows, "block_rows", low=1)
    if isinstance(X, torch.Tensor):
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(
                "The 'X' parameter must be a 2-D tensor of shape (n_samples, n_features) "
                f"with at least one row and column. Got shape {tuple(X.shape)} instead.")
        n, d = int(X.shape[0]), int(X.shape[1])
        blocks = (X[lo:lo + block_rows] for lo in range(0, n, block_rows))
    else:
        src = as_source(X, block_rows=block_rows)
        n, d = src.n_samples, src.n_features
        blocks = src.iter_blocks()
    cells, sw = check_row_inputs(cells, n_cells, n, sample_weight)
    f64 = torch.float64
    grams = torch.zeros((n_cells, d, d), dtype=f64, device=dev)
    sums = torch.zeros((n_cells, d), dtype=f64, device=dev)
    lo = 0
    with progress_bar(progress, n, "statistics") as bar:
        for blk in blocks:
            hi = lo + int(blk.shape[0])
            xb = torch.as_tensor(blk).to(device=dev, dtype=dtype)
            if not bool(torch.isfinite(xb).all()):
                raise ValueError("The 'X' parameter must be finite. Got NaN or inf values.")
            cb = cells[lo:hi]
            order = np.argsort(cb, kind="stable")
            cb = cb[order]
            xb = xb[torch.as_tensor(order, device=dev)]
            sb = None if sw is None else torch.as_tensor(sw[lo:hi][order], device=dev,
                                                         dtype=dtype)
            present, first = np.unique(cb, return_index=True)
            bounds = np.append(first, cb.shape[0])
            for j, a, b in zip(present, bounds[:-1], bounds[1:]):
                Xj = xb[a:b]
                if sb is None:
                    sums[j] += Xj.sum(dim=0).to(f64)
                    Xs = Xj
                else:
                    sums[j] += (sb[a:b] @ Xj).to(f64)
                    Xs = Xj * torch.sqrt(sb[a:b])[:, None]
                grams[j] += (Xs.T @ Xs).to(f64)
            bar.update(hi - lo)
            lo = hi
    if lo != n:  # pragma: no cover - sources check their own row counts
        raise ValueError(f"X yielded {lo} rows, expected {n}.")
    G = grams.cpu().numpy()
    G = 0.5 * (G + G.transpose(0, 2, 1))
    weight_sums = (np.bincount(cells, minlength=n_cells).astype(float) if sw is None
                   else np.bincount(cells, weights=sw, minlength=n_cells))
    return SufficientStats(weight_sums, np.bincount(cells, minlength=n_cells).astype(np.int64),
                           sums.cpu().numpy(), G)
