"""Parameter checks shared by the functional core, estimator and CLI.

Every error names the parameter, the allowed values and what was received, in the
style of scikit-learn: "The 'ridge' parameter must be a float in the range
[0, inf). Got -1 instead."
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

__all__ = [
    "check_real",
    "check_int",
    "check_counts",
    "check_probability_vector",
]


def _interval(low, high, closed):
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    left = "[" if closed in ("both", "left") and low is not None else "("
    right = "]" if closed in ("both", "right") and high is not None else ")"
    return f"{left}{lo}, {hi}{right}"


def check_real(value, name, low=None, high=None, closed="both"):
    """Return ``value`` as a finite float inside the interval, else raise ValueError.

    Parameters
    ----------
    value : object
        What the user passed.
    name : str
        Parameter name used in the message.
    low, high : float or None
        Interval ends (None for unbounded).
    closed : {"both", "left", "right", "neither"}
        Which ends belong to the interval.
    """
    where = _interval(low, high, closed)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"The '{name}' parameter must be a float in the range {where}. "
            f"Got {value!r} instead."
        )
    v = float(value)
    ok = math.isfinite(v)
    if ok and low is not None:
        ok = v >= low if closed in ("both", "left") else v > low
    if ok and high is not None:
        ok = v <= high if closed in ("both", "right") else v < high
    if not ok:
        raise ValueError(
            f"The '{name}' parameter must be a float in the range {where}. "
            f"Got {value!r} instead."
        )
    return v


def check_int(value, name, low=None, high=None):
    """Return ``value`` as an int in ``[low, high]``, else raise ValueError."""
    where = _interval(low, high, "both")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(
            f"The '{name}' parameter must be an int in the range {where}. "
            f"Got {value!r} instead."
        )
    v = int(value)
    if (low is not None and v < low) or (high is not None and v > high):
        raise ValueError(
            f"The '{name}' parameter must be an int in the range {where}. "
            f"Got {value!r} instead."
        )
    return v


def check_counts(counts, name="counts", min_classes=2):
    """Validate per-class sample counts: a 1-D sequence of positive integers."""
    if isinstance(counts, (str, bytes)) or not isinstance(counts, (Sequence, np.ndarray)):
        raise ValueError(
            f"The '{name}' parameter must be a sequence of at least {min_classes} "
            f"positive integers. Got {counts!r} instead."
        )
    arr = np.asarray(counts, dtype=object).ravel()
    if arr.size < min_classes:
        raise ValueError(
            f"The '{name}' parameter must be a sequence of at least {min_classes} "
            f"positive integers. Got {list(arr)!r} instead."
        )
    out = []
    for i, c in enumerate(arr):
        if isinstance(c, bool) or not isinstance(c, numbers.Real) or not math.isfinite(c) \
                or c <= 0 or float(c) != int(c):
            raise ValueError(
                f"The '{name}' parameter must contain positive integers; "
                f"entry {i} is {c!r}."
            )
        out.append(int(c))
    return np.asarray(out, dtype=np.int64)


def check_probability_vector(p, name, size=None):
    """Validate a probability vector (non-negative, finite, sums to one).

    Vectors that sum to a positive number are accepted and normalised, so that
    ``--target 1 1 2`` means (0.25, 0.25, 0.5).
    """
    arr = np.asarray(p, dtype=float).ravel()
    if size is not None and arr.size != size:
        raise ValueError(
            f"The '{name}' parameter must have {size} entries (one per class). "
            f"Got {arr.size} entries instead."
        )
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or arr.sum() <= 0:
        raise ValueError(
            f"The '{name}' parameter must be finite, non-negative and sum to a "
            f"positive number. Got {arr.tolist()!r} instead."
        )
    return arr / arr.sum()
