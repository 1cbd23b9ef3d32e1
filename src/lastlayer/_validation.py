"""Every input check of lastlayer: parameters, arrays, labels, weights.

Public functions of the library validate their inputs here, once, at the entry;
the numerical kernels of :mod:`lastlayer._core` trust what they are given. Every
error names the parameter (or file), the allowed values and what was received, and
where (row, column, label) when that helps, in the style of scikit-learn: "The
'ridge' parameter must be a float in the range [0, inf). Got -1 instead."

Sections: scalars and vectors of parameters; arrays of the solvers (features, cell
indices, weights, targets, alpha grids, statistics); labels (from users and files);
the estimator's parameter table (:func:`check_estimator_params`).
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "check_real",
    "check_int",
    "check_counts",
    "check_probability_vector",
    "check_choice",
    "check_matrix",
    "check_indices",
    "check_nonneg_vector",
    "check_sample_weight",
    "check_cell_weights",
    "check_cell_targets",
    "check_alphas",
    "check_stats",
    "check_rhos",
    "check_unit_of_cell",
    "check_labels",
    "label_family",
    "in_source",
    "check_unit_values",
    "check_fit_labels",
    "check_fit_sample_weight",
    "estimator_parameter_table",
    "check_params",
    "validate_features",
    "first_non_finite",
    "check_row_labels",
    "check_row_inputs",
    "check_logistic_inputs",
    "check_targets",
    "check_same_family",
    "check_groups",
    "check_batch_size",
    "check_num_threads",
    "check_split",
    "MIN_ROWS_LOO",
    "OUTLIER_Z",
    "check_rows_per_unit",
    "check_group_count",
    "warn_zero_target",
    "check_cell_rows",
    "check_feature_range",
    "check_feature_values",
    "check_estimator_rows",
    "check_finite_rows",
    "find_feature_outlier",
    "warn_feature_outlier",
    "check_cv",
    "unseen_labels",
    "warn_unseen_labels",
    "check_output_path",
    "check_cli_int",
    "check_subsample",
    "check_validation_rows",
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


# ----------------------------------------------------------------- solver arrays


def check_matrix(X, name="X"):
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(
            f"The '{name}' parameter must be a 2-D array of shape (n_samples, "
            f"n_features) with at least one row and column. Got shape {X.shape} instead."
        )
    if X.dtype.kind not in "biuf":
        raise ValueError(
            f"The '{name}' parameter must be a real numeric array. Got dtype "
            f"{X.dtype} instead."
        )
    X = np.asarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError(f"The '{name}' parameter must be finite. Got NaN or inf values.")
    return X


def check_indices(labels, n_rows, n_labels, name):
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n_rows:
        raise ValueError(
            f"The '{name}' parameter must be a 1-D array of length {n_rows} (one entry "
            f"per row). Got shape {arr.shape} instead."
        )
    if arr.dtype.kind in "biu":
        out = arr.astype(np.intp)
    elif (
        arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
    ):
        out = arr.astype(np.intp)  # integral floats (e.g. labels read from a CSV)
    else:
        raise ValueError(
            f"The '{name}' parameter must contain integers in [0, {n_labels}). "
            f"Got dtype {arr.dtype} instead."
        )
    if out.size and (out.min() < 0 or out.max() >= n_labels):
        raise ValueError(
            f"The '{name}' parameter must contain integers in [0, {n_labels}). "
            f"Got values in [{out.min()}, {out.max()}] instead."
        )
    return out


def check_nonneg_vector(w, size, name, what):
    arr = np.asarray(w, dtype=np.float64) if not isinstance(w, numbers.Real) else None
    if arr is None or arr.ndim != 1 or arr.shape[0] != size:
        shape = None if arr is None else arr.shape
        raise ValueError(
            f"The '{name}' parameter must be a 1-D array of {size} non-negative finite "
            f"floats ({what}). Got shape {shape} instead."
        )
    bad = ~np.isfinite(arr) | (arr < 0)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"The '{name}' parameter must contain non-negative finite floats. Got "
            f"{float(arr[i])!r} at index {i} instead."
        )
    return arr


def check_sample_weight(sample_weight, n_rows):
    if sample_weight is None:
        return np.ones(n_rows)
    sw = check_nonneg_vector(sample_weight, n_rows, "sample_weight", "one per row")
    if sw.sum() <= 0:
        raise ValueError(
            "The 'sample_weight' parameter must have a positive sum. Got all zeros."
        )
    return sw


def check_cell_weights(cell_weights, n_cells=None):
    arr = np.asarray(cell_weights, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 1:
        raise ValueError(
            "The 'cell_weights' parameter must be a 1-D array with one non-negative "
            f"weight per cell. Got shape {arr.shape} instead."
        )
    if n_cells is None:
        n_cells = arr.size
    return check_nonneg_vector(arr, n_cells, "cell_weights", "one per cell")


def check_cell_rows(X, cells, sample_weight, n_features, n_cells):
    """Rows ``X`` (n, n_features), their cells in ``[0, n_cells)`` and non-negative
    sample weights, for a kernel that reads rows against statistics; returns
    ``(X, cells, sample_weight)`` (X not copied)."""
    if np.ndim(X) != 2 or np.shape(X)[1] != n_features:
        raise ValueError(f"The 'X' parameter must be a 2-D array with {n_features} columns "
                         f"(the statistics' features). Got shape {np.shape(X)} instead.")
    n = np.shape(X)[0]
    c = np.asarray(cells)
    if c.shape != (n,) or not np.issubdtype(c.dtype, np.integer) or (
            n and (c.min() < 0 or c.max() >= n_cells)):
        raise ValueError(f"The 'cells' parameter must hold one integer cell in [0, "
                         f"{n_cells}) per row of X ({n}). Got shape {c.shape}, dtype "
                         f"{c.dtype} instead.")
    return X, c.astype(np.intp, copy=False), check_nonneg_vector(
        sample_weight, n, "sample_weight", "one per row of X")


def check_cell_targets(cell_targets, n_cells):
    T = np.asarray(cell_targets, dtype=np.float64)
    if T.ndim == 1:
        T = T[:, None]
    if T.ndim != 2 or T.shape[0] != n_cells or T.shape[1] < 1:
        raise ValueError(
            f"The 'cell_targets' parameter must be an array of shape ({n_cells}, "
            f"n_targets) (one target row per cell). Got shape "
            f"{np.shape(cell_targets)} instead."
        )
    if not np.all(np.isfinite(T)):
        raise ValueError("The 'cell_targets' parameter must be finite. Got NaN or inf.")
    return T


def check_alphas(alphas, name="alphas", strictly_positive=False):
    arr = np.asarray(alphas, dtype=np.float64).ravel() if alphas is not None else None
    where = "(0, inf)" if strictly_positive else "[0, inf)"
    if arr is None or arr.size < 1 or not np.all(np.isfinite(arr)) or (
        np.any(arr <= 0) if strictly_positive else np.any(arr < 0)
    ):
        raise ValueError(
            f"The '{name}' parameter must be a non-empty 1-D array of floats in the "
            f"range {where}. Got {alphas!r} instead."
        )
    return arr


def check_choice(value, name, allowed):
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(
            f"The '{name}' parameter must be one of {', '.join(map(repr, allowed))}. "
            f"Got {value!r} instead."
        )
    return value


def check_stats(stats):
    from ._core.stats import SufficientStats

    if not isinstance(stats, SufficientStats):
        raise ValueError(
            "The 'stats' parameter must be a SufficientStats (from "
            f"sufficient_statistics). Got {type(stats).__name__} instead."
        )
    return stats


def check_rhos(rhos, name="rhos"):
    arr = np.asarray(rhos, dtype=np.float64).ravel() if rhos is not None else None
    if arr is None or arr.size < 1 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(
            f"The '{name}' parameter must be a non-empty 1-D array of floats in the range "
            f"(0, inf). Got {rhos!r} instead."
        )
    return arr


def check_unit_of_cell(unit_of_cell, n_cells):
    arr = np.asarray(unit_of_cell)
    if arr.ndim != 1 or arr.shape[0] != n_cells or arr.dtype.kind not in "biuf":
        raise ValueError(
            f"The 'unit_of_cell' parameter must be a 1-D array of {n_cells} entries in "
            f"{{0, 1}} (the weighting unit of each cell). Got shape {arr.shape} and dtype "
            f"{arr.dtype} instead."
        )
    if not np.all((arr == 0) | (arr == 1)):
        raise ValueError(
            "The 'unit_of_cell' parameter must contain only 0 and 1 (exactly two "
            f"weighting units). Got values {np.unique(arr).tolist()!r} instead."
        )
    return arr.astype(np.intp)


# ----------------------------------------------------------------------- labels


def in_source(source):
    return f" in '{source}'" if source else ""


def _kind_of(value):
    """Type family of one label value: 'missing', 'bool', 'int', 'float', 'str', ..."""
    if value is None:
        return "missing"
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, numbers.Integral):
        return "int"
    if isinstance(value, numbers.Real):
        return "missing" if math.isnan(float(value)) else "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, bytes):
        return "bytes"
    return type(value).__name__


def check_labels(values, name, *, source=None):
    """Return ``values`` as a 1-D label array of one type family, else raise ValueError.

    Accepted: integer, bool, float (finite) and unicode arrays, object arrays whose
    entries are all numbers or all strings (converted to a numeric or ``<U``
    array), and byte strings (decoded as UTF-8). Missing values (None, NaN, inf)
    and mixed numbers and strings are refused.
    """
    at = in_source(source)
    # np.asarray(["a", 1]) would silently turn the 1 into "1": inspect lists entry by entry
    arr = np.asarray(values, dtype=object if isinstance(values, (list, tuple)) else None)
    if arr.ndim != 1:
        hint = ""
        if arr.ndim == 2 and 1 in arr.shape:
            hint = f" Use {name}.ravel() for a column vector."
        raise ValueError(
            f"{name}{at} must be a 1-D array of labels. "
            f"Got an array of shape {arr.shape} instead.{hint}"
        )
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8")
    if arr.dtype.kind == "O":
        kinds = {}
        for i, v in enumerate(arr):
            kinds.setdefault(_kind_of(v), (i, v))
        if "missing" in kinds:
            n_missing = sum(_kind_of(v) == "missing" for v in arr)
            i, v = kinds["missing"]
            raise ValueError(
                f"{name}{at} must not have missing values. Got {n_missing} missing "
                f"value(s) (first at index {i}: {v!r})."
            )
        families = {"str" if k == "bytes" else ("number" if k in ("bool", "int", "float") else k)
                    for k in kinds}
        if len(families) > 1:
            found = ", ".join(f"{k} (e.g. {v!r} at index {i})" for k, (i, v) in kinds.items())
            raise ValueError(
                f"{name}{at} has labels of mixed types: {found}. Labels must be all "
                f"numbers or all strings."
            )
        family = families.pop() if families else "empty"
        if family == "empty":
            arr = arr.astype(np.float64)
        elif family == "str":
            arr = np.asarray([v.decode("utf-8") if isinstance(v, bytes) else v for v in arr],
                             dtype=str)
        elif family == "number":
            if "float" in kinds:
                arr = arr.astype(np.float64)
            elif "int" in kinds:
                arr = arr.astype(np.int64)
            else:
                arr = arr.astype(bool)
        else:
            raise ValueError(
                f"{name}{at} must hold numbers or strings. Got values of type "
                f"{family} (e.g. {kinds[family][1]!r})."
            )
    if arr.dtype.kind not in "biufU":
        raise ValueError(
            f"{name}{at} must hold numbers or strings. Got an array of dtype "
            f"{arr.dtype} instead."
        )
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{name}{at} must not have missing values. Got {int(bad.sum())} "
                f"NaN/inf value(s) (first at index {i})."
            )
    return arr


def label_family(arr):
    """'str' for unicode label arrays, 'number' otherwise (after :func:`check_labels`)."""
    return "str" if arr.dtype.kind == "U" else "number"


def check_unit_values(spec, labels, what, default):
    """Per-unit values from a dict keyed by label (missing labels get ``default``),
    an array in label order, or None (every unit ``default``)."""
    U = len(labels)
    if spec is None:
        return np.full(U, default, dtype=float)
    if isinstance(spec, dict):
        known = {lab.item() if hasattr(lab, "item") else lab: i for i, lab in enumerate(labels)}
        unknown = [k for k in spec if k not in known]
        if unknown:
            raise ValueError(f"The '{what}' dict names labels not in the data: {unknown!r}. "
                             f"Known labels: {list(known)!r}.")
        out = np.full(U, default, dtype=float)
        for k, v in spec.items():
            out[known[k]] = v
    else:
        out = np.asarray(spec, dtype=float).ravel()
        if out.size != U:
            raise ValueError(f"The '{what}' parameter must have {U} entries (one per label "
                             f"{list(labels)!r}). Got {out.size} entries instead.")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"The '{what}' parameter must be finite. Got {out.tolist()!r}.")
    return out


def check_fit_labels(values, name, n):
    """Labels passed to an estimator's ``fit``: scikit-learn's 1-D column rules (a
    column vector warns), one entry per row, one type family."""
    from sklearn.utils.validation import column_or_1d

    arr = column_or_1d(values, warn=True)
    if arr.shape[0] != n:
        raise ValueError(
            f"'{name}' has {arr.shape[0]} entries but X has {n} samples; they must match.")
    if arr.dtype.kind in "fc" or arr.dtype == object:
        missing = np.array([_kind_of(v) == "missing" or (isinstance(v, numbers.Real)
                                                         and not math.isfinite(v))
                            for v in arr.tolist()], dtype=bool)
        if missing.any():
            i = int(np.argmax(missing))
            raise ValueError(
                f"'{name}' must not have missing values (NaN, inf or None). Got "
                f"{int(missing.sum())} missing value(s); the first is at index {i} "
                f"({arr[i]!r}).")
    kinds = {type(v).__name__ for v in arr.tolist()} if arr.dtype == object else set()
    if len({"str" if k in ("str", "str_") else "num" for k in kinds}) > 1:
        raise ValueError(f"'{name}' mixes label types ({sorted(kinds)}); use one type.")
    return arr


def check_fit_sample_weight(sample_weight, n):
    """``sample_weight`` of an estimator's ``fit``: None (ones), a scalar, or one
    finite non-negative value per row (a column vector is accepted), with a positive
    sum -- the same rules and messages as :func:`check_sample_weight`."""
    if sample_weight is None:
        return np.ones(n)
    sw = np.asarray(sample_weight, dtype=float)
    if sw.ndim == 0:
        sw = np.full(n, float(sw))
    elif sw.ndim == 2 and sw.shape[1] == 1:
        sw = sw[:, 0]
    return check_sample_weight(sw, n)


# ------------------------------------------------------------ estimator parameters


def _is_real(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and np.isfinite(x)


def _is_int(v, low):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= low


def _weighting_ok(w, names):
    return (w in names) if isinstance(w, str) else (isinstance(w, dict) or np.ndim(w) == 1)


def _cv_ok(v):
    if isinstance(v, numbers.Integral) and not isinstance(v, bool):
        return v >= 2
    return hasattr(v, "split") or (isinstance(v, Iterable) and not isinstance(v, (str, dict)))


def estimator_parameter_table(weightings, losses, solvers, precisions, dims, metrics):
    """``{name: (accepts(value) -> bool, allowed text)}`` for LastLayerClassifier."""
    return {
        "weighting": (lambda w: _weighting_ok(w, weightings),
                      f"one of {sorted(weightings)}, a dict of per-class weights or an "
                      f"array of them"),
        "loss": (lambda v: isinstance(v, str) and v in losses, f"one of {list(losses)}"),
        "alpha": (lambda v: v == "auto" if isinstance(v, str) else _is_real(v) and v >= 0,
                  "'auto' or a float in the range [0, inf)"),
        "dim": (lambda v: v in dims if isinstance(v, str) else _is_real(v) and v >= 0,
                f"one of {list(dims)} or a float in the range [0, inf)"),
        "max_leverage": (lambda v: _is_real(v) and 0 < v < 1, "a float in the range (0, 1)"),
        "n_subsets": (lambda v: _is_int(v, 1), "an int in the range [1, inf)"),
        "cv": (_cv_ok, "an int in the range [2, inf), a cross-validation splitter (an "
                       "object with a split method) or an iterable of (train, test) index "
                       "arrays"),
        "verbose": (lambda v: isinstance(v, (bool, numbers.Integral)) and v >= 0,
                    "a bool or an int in the range [0, inf)"),
        "device": (lambda v: v is None or isinstance(v, str),
                   "None or a torch device string such as 'cuda'"),
        "precision": (lambda v: isinstance(v, str) and v in precisions,
                      f"one of {list(precisions)}"),
        "solver": (lambda v: isinstance(v, str) and v in solvers, f"one of {list(solvers)}"),
        "metric": (lambda v: isinstance(v, str) and v in metrics, f"one of {list(metrics)}"),
    }


def check_params(owner, params, table):
    """Raise ValueError naming the first parameter of ``params`` that ``table`` refuses."""
    for name, (accepts, allowed) in table.items():
        value = params[name]
        if not accepts(value):
            raise ValueError(f"The '{name}' parameter of {owner} must be {allowed}. "
                             f"Got {value!r} instead.")


# -------------------------------------------------------------- files and metrics


def first_non_finite(X):
    """Count, NaN count, row and column of the first non-finite entry of 2-D ``X``."""
    bad = ~np.isfinite(X)
    count = int(bad.sum())
    flat = int(np.argmax(bad.ravel()))
    row, col = divmod(flat, X.shape[1])
    n_nan = int(np.isnan(X).sum())
    return count, n_nan, row, col


def check_finite_rows(X, name="X", source=None, first_row=0):
    """Refuse NaN or inf in 2-D ``X`` with their count and the first one's row and
    column (``first_row``: the first row of a block of a larger array, e.g. a dask
    chunk). A finite float64 sum proves every entry finite without a boolean copy of
    ``X``; an overflowing (or non-finite) sum falls back to the exact check."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = X.sum(dtype=np.float64)
    if np.isfinite(total) or np.isfinite(X).all():
        return
    count, n_nan, row, col = first_non_finite(X)
    block = (f" in rows {first_row}-{first_row + X.shape[0] - 1}" if first_row else "")
    raise ValueError(
        f"{name}{in_source(source)} must be finite. Got {count} non-finite value(s) "
        f"({n_nan} NaN, {count - n_nan} inf){block}; the first is at row "
        f"{first_row + row}, column {col}."
    )


def validate_features(X, y, groups=None, *, source=None):
    """Check and normalise a feature matrix, its labels and optional groups.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features. float32 and float64 are kept (memory maps stay memory maps);
        float16 becomes float32; integer and bool become float64.
    y : array-like of shape (n_samples,)
        Labels, all numbers or all strings, no missing values. Object arrays of
        strings become unicode (``<U``) arrays, never object arrays.
    groups : array-like of shape (n_samples,), optional
        Group labels, under the same rules as ``y``.
    source : str, optional
        Where the arrays came from, named in error messages.

    Returns
    -------
    X, y, groups : ndarray
        ``groups`` is None when not given.

    Raises
    ------
    ValueError
        ``X`` not 2-D, empty, not numeric or not finite (the message gives the count
        of non-finite values and the first row and column); ``y`` or ``groups`` not
        1-D, of another length than ``X``, with missing values or of mixed types.
    """
    where = in_source(source)
    if not isinstance(X, np.memmap):
        X = np.asarray(X)
    if X.dtype.kind == "O":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"X{where} must be numeric. Got an object array whose entries are not "
                f"all numbers."
            ) from None
    if X.dtype.kind not in "biuf":
        raise ValueError(f"X{where} must be numeric. Got an array of dtype {X.dtype} instead.")
    if X.ndim == 1:
        raise ValueError(
            f"X{where} must be 2-D of shape (n_samples, n_features). Got a 1-D array of "
            f"shape {X.shape} instead; use X.reshape(-1, 1) for a single feature or "
            f"X.reshape(1, -1) for a single sample."
        )
    if X.ndim != 2:
        raise ValueError(
            f"X{where} must be 2-D of shape (n_samples, n_features). Got an array of "
            f"shape {X.shape} instead."
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"X{where} must be non-empty. Got shape {X.shape} "
            f"({X.shape[0]} samples, {X.shape[1]} features)."
        )
    if X.dtype == np.float16:
        X = X.astype(np.float32)
    elif X.dtype.kind != "f":
        X = X.astype(np.float64)
    check_finite_rows(X, source=source)
    check_feature_range(X, "float64", source=source)
    y = check_labels(y, "y", source=source)
    if len(y) != X.shape[0]:
        raise ValueError(
            f"y{where} must have one label per row of X. Got len(y) = {len(y)} and "
            f"len(X) = {X.shape[0]}."
        )
    if groups is not None:
        groups = check_labels(groups, "groups", source=source)
        if len(groups) != X.shape[0]:
            raise ValueError(
                f"groups{where} must have one entry per row of X. Got len(groups) = "
                f"{len(groups)} and len(X) = {X.shape[0]}."
            )
    return X, y, groups


def check_row_labels(values, name, n_rows, source):
    """Labels (or None) of a source with ``n_rows`` rows (None: not known yet)."""
    if values is None:
        return None
    arr = check_labels(values, name, source=source)
    if n_rows is not None and arr.shape[0] != n_rows:
        raise ValueError(
            f"{name}{in_source(source)} must have one entry per row of X. Got "
            f"len({name}) = {arr.shape[0]} and {n_rows} rows of X."
        )
    return arr


def check_row_inputs(cells, n_cells, n, sample_weight):
    """Cell indices and sample weights (None: all ones) of ``n`` rows."""
    cells = check_indices(cells, n, n_cells, "cells")
    sw = None if sample_weight is None else check_nonneg_vector(
        sample_weight, n, "sample_weight", "one per row")
    return cells, sw


def check_logistic_inputs(X, y, n_classes, row_weights):
    """Features, class indices, number of classes and row weights of a logistic fit."""
    X = check_matrix(X)
    K = check_int(n_classes, "n_classes", low=2)
    y = check_indices(y, X.shape[0], K, "y")
    r = check_nonneg_vector(row_weights, X.shape[0], "row_weights", "one per row")
    if not r.sum() > 0:
        raise ValueError("The 'row_weights' parameter must have a positive sum. Got 0.")
    return X, y, K, r


def check_targets(y_true, y_pred):
    """True and predicted labels of a metric: 1-D, same length, same kind."""
    y_true = check_labels(y_true, "y_true")
    y_pred = check_labels(y_pred, "y_pred")
    if len(y_true) == 0:
        raise ValueError("y_true must hold at least one sample. Got an empty array.")
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"y_true and y_pred must have the same length. Got len(y_true) = "
            f"{len(y_true)} and len(y_pred) = {len(y_pred)}."
        )
    check_same_family(y_true, "y_true", y_pred, "y_pred")
    return y_true, y_pred


def check_same_family(a, a_name, b, b_name):
    """Both label arrays hold strings, or both numbers."""
    fa, fb = label_family(a), label_family(b)
    if fa != fb:
        word = {"str": "string", "number": "numeric"}
        raise ValueError(
            f"{a_name} and {b_name} must hold labels of the same kind. Got {word[fa]} "
            f"labels in {a_name} and {word[fb]} labels in {b_name}."
        )


def check_groups(groups, n):
    """Group labels of a metric, one per sample."""
    groups = check_labels(groups, "groups")
    if len(groups) != n:
        raise ValueError(
            f"groups must have one entry per sample. Got len(groups) = {len(groups)} and "
            f"len(y_true) = {n}."
        )
    return groups


# ------------------------------------------------------------------------- apps


def check_batch_size(batch_size):
    """A positive int batch size."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
            or batch_size < 1:
        raise ValueError(
            "The 'batch_size' parameter must be an int in the range [1, inf). "
            f"Got {batch_size!r} instead."
        )
    return int(batch_size)


def check_num_threads(num_threads):
    """None or a positive int number of threads."""
    if num_threads is None:
        return None
    if isinstance(num_threads, bool) or not isinstance(num_threads, numbers.Integral) \
            or num_threads < 1:
        raise ValueError(
            "The 'num_threads' parameter must be None or an int in the range "
            f"[1, inf). Got {num_threads!r} instead."
        )
    return int(num_threads)


def check_split(split):
    """A data set split: "train" or "test"."""
    if split not in ("train", "test"):
        raise ValueError(
            "The 'split' parameter must be a str among {'train', 'test'}. "
            f"Got {split!r} instead."
        )


# -------------------------------------------------------------- fit-time checks

#: Training rows every class (and group) needs when alpha or the weights are chosen
#: from the data (leave-one-out, GCV, leverages, internal CV).
MIN_ROWS_LOO = 2
#: A feature cell more than this many standard deviations (of the other rows of its
#: column) from their mean is reported as an outlier (FeatureOutlierWarning).
OUTLIER_Z = 50.0


def check_rows_per_unit(rows, names, what, data_driven):
    """Every class (or group) with fewer than :data:`MIN_ROWS_LOO` rows of positive
    weight: an error when ``data_driven`` (alpha="auto" or leverage-based weights),
    else a :class:`~lastlayer.exceptions.SmallClassWarning`."""
    from .exceptions import SmallClassWarning

    small = np.asarray(rows) < MIN_ROWS_LOO
    if not small.any():
        return
    labels = np.asarray(names)[small].tolist()
    counts = np.asarray(rows)[small].tolist()
    found = "; ".join(f"{what} {lab!r} has {c} row(s)" for lab, c in zip(labels, counts))
    if data_driven:
        raise ValueError(
            f"Every {what} needs at least {MIN_ROWS_LOO} training rows with positive "
            f"sample weight when alpha='auto' or weighting is 'optimal' or 'tuned' "
            f"(leave-one-out and leverages cannot learn a {what} from its own single "
            f"row). Got: {found}. Add rows, drop or merge the {what}, or pass a fixed "
            f"alpha with a weighting that reads no leverages (e.g. weighting='balanced', "
            f"alpha=1.0).")
    warnings.warn(SmallClassWarning(
        f"A {what} with a single training row ({found}): the layer "
        f"fits that row but has nothing to generalise from."), stacklevel=4)


def check_group_count(group_names):
    """Weighting by group needs at least two distinct groups."""
    if len(group_names) < 2:
        raise ValueError(
            f"The 'groups' parameter must hold at least 2 distinct groups to weight by "
            f"group. Got 1 group, {np.asarray(group_names).tolist()!r}, for every row. "
            f"Omit groups to weight by class.")


def warn_zero_target(target, names, what):
    """A :class:`~lastlayer.exceptions.ZeroTargetWarning` for units of target 0."""
    from .exceptions import ZeroTargetWarning

    zero = np.asarray(target) == 0
    if zero.any():
        warnings.warn(ZeroTargetWarning(
            f"The 'target' parameter gives {what}(es) {np.asarray(names)[zero].tolist()!r} "
            f"share 0: weightings that follow the target give their rows loss weight 0, "
            f"so they do not influence the layer."),
            stacklevel=4)


def _column_moments(X, block_elems=1 << 18):
    """Per-column sum, sum of squares, min and max in float64, in blocks of about
    ``block_elems`` entries (the float64 copy of a block stays in cache)."""
    d = X.shape[1]
    s, s2 = np.zeros(d), np.zeros(d)
    lo, hi = np.full(d, np.inf), np.full(d, -np.inf)
    step = max(1, block_elems // max(d, 1))
    for start in range(0, X.shape[0], step):
        R = np.asarray(X[start:start + step])
        lo, hi = np.minimum(lo, R.min(axis=0)), np.maximum(hi, R.max(axis=0))
        B = R.astype(np.float64, copy=False)
        s += B.sum(axis=0)
        s2 += np.einsum("ij,ij->j", B, B)
    return s, s2, lo, hi


def check_feature_range(X, precision="float64", name="X", source=None, bounds=None,
                        n_rows=None, first_row=0):
    """Refuse entries whose squares, summed over the rows, overflow ``precision``
    (the Gram products of the statistics); the message gives the row and column.
    ``bounds``: the per-column ``(min, max)`` when already computed. For one block of
    a larger source: ``n_rows`` the source's rows, ``first_row`` the block's first."""
    n = max(int(X.shape[0] if n_rows is None else n_rows), 1)
    limit = math.sqrt(np.finfo(np.dtype(precision)).max / (16.0 * n))
    lo, hi = bounds if bounds is not None else (np.min(X, axis=0), np.max(X, axis=0))
    big = np.maximum(np.abs(np.asarray(hi, float)), np.abs(np.asarray(lo, float))) > limit
    if not big.any():
        return
    col = int(np.argmax(big))
    row = int(np.argmax(np.abs(np.asarray(X[:, col], dtype=np.float64))))
    raise ValueError(
        f"{name}{in_source(source)} must have entries of magnitude at most {limit:.3g} "
        f"(their squares, summed over {n} rows, must stay finite in {precision}). Got "
        f"{int(big.sum())} column(s) beyond it; the first value is "
        f"{float(X[row, col]):.6g} at row {first_row + row}, column {col}.")


def find_feature_outlier(X, z=OUTLIER_Z, moments=None):
    """``(row, column, value, z_score, n_columns)`` of the most extreme cell lying
    more than ``z`` standard deviations from the mean of the other rows of its column
    (the larger of that column's and the median column's standard deviation), or
    None. Cost: one pass over ``X`` (none with ``moments``, the column sums, sums of
    squares, minima and maxima) plus O(n) per suspicious column."""
    n = X.shape[0]
    if n < 3:
        return None
    s, s2, lo, hi = _column_moments(X) if moments is None else moments
    mean = s / n
    css = np.maximum(s2 - n * mean**2, 0.0)
    far = np.maximum((hi - mean) ** 2, (lo - mean) ** 2)
    # a cell z sds from the others holds about z^2 / (z^2 + n) of the centred SS
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(css > 0, far / css, 0.0)
    # a deviation counts in units of the larger of its column's spread and the typical
    # column's: sparse activations (a column of zeros and one ordinary value, as ReLU
    # features have) are not outliers; 1e3 among unit-variance features is
    typical = float(np.median(np.sqrt(css / n)))
    worst, count = None, 0
    for j in np.flatnonzero(share > 0.5 * z**2 / (z**2 + n)):
        col = np.asarray(X[:, j], dtype=np.float64)
        i = int(np.argmax(np.abs(col - mean[j])))
        others = np.delete(col, i)
        sd = max(others.std(), typical)
        if not sd > 0:
            continue  # every column constant but for this cell: nothing to compare with
        zj = abs(col[i] - others.mean()) / sd
        if zj > z:
            count += 1
            if worst is None or zj > worst[3]:
                worst = (i, int(j), float(col[i]), float(zj))
    return None if worst is None else (*worst, count)


def check_feature_values(X, precision, outliers):
    """:func:`check_feature_range` and, when ``outliers``, :func:`warn_feature_outlier`
    from one pass of column moments over ``X``."""
    if not outliers:
        return check_feature_range(X, precision)
    moments = _column_moments(X)
    check_feature_range(X, precision, bounds=moments[2:])
    warn_feature_outlier(X, moments=moments)


def warn_feature_outlier(X, z=OUTLIER_Z, name="X", moments=None):
    """A :class:`~lastlayer.exceptions.FeatureOutlierWarning` naming the worst cell."""
    from .exceptions import FeatureOutlierWarning

    found = find_feature_outlier(X, z, moments)
    if found is None:
        return None
    row, col, value, zs, count = found
    warnings.warn(FeatureOutlierWarning(
        f"{name} has {count} column(s) with a cell more than {z:g} standard deviations "
        f"(of its column, at least the median column's) from the other rows; the worst is {value:.6g} at row {row}, column {col} "
        f"({zs:.3g} sd). Leave-one-out (alpha='auto') and the data-driven weights can "
        f"be dominated by that row: check the row, clip or robustly scale the features, "
        f"or pass a fixed alpha."), stacklevel=4)
    return found


def check_cv(cv, X, y, groups=None):
    """``cv`` as the int it is, or as a tuple of ``(train, test)`` index arrays from a
    splitter or an iterable of splits (:func:`sklearn.model_selection.check_cv`);
    every split must have training and test rows inside ``range(n)``."""
    from sklearn.model_selection import check_cv as sk_check_cv

    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        return int(cv)
    n = X.shape[0]
    splits = tuple(sk_check_cv(cv, y, classifier=True).split(X, y, groups))
    if not splits:
        raise ValueError("The 'cv' parameter must give at least one (train, test) split. "
                         "Got none.")
    out = []
    for k, split in enumerate(splits):
        train, test = (np.asarray(part) for part in split)
        for part, what in ((train, "train"), (test, "test")):
            if part.dtype == bool and part.shape == (n,):
                part = np.flatnonzero(part)
            if part.size == 0 or part.dtype.kind not in "iu" or part.min() < 0 \
                    or part.max() >= n:
                raise ValueError(
                    f"The 'cv' parameter must give non-empty {what} indices in [0, {n}). "
                    f"Got split {k} with {what} indices {part[:10].tolist()!r}"
                    f"{'...' if part.size > 10 else ''} instead.")
            if what == "train":
                train = part
            else:
                test = part
        out.append((train.astype(np.intp), test.astype(np.intp)))
    return tuple(out)


# ------------------------------------------------------------------- evaluation


def unseen_labels(y, classes):
    """Sorted labels of ``y`` that are not in ``classes``."""
    y = np.asarray(y)
    if y.size == 0:
        return []
    try:
        return np.setdiff1d(np.unique(y), np.asarray(classes)).tolist()
    except TypeError:  # labels of another kind than the classes: all unseen
        return np.unique(y).tolist()


def warn_unseen_labels(y, classes, source=None):
    """An :class:`~lastlayer.exceptions.UnseenLabelWarning` for evaluation labels the
    layer never saw in training; returns them."""
    from .exceptions import UnseenLabelWarning

    unseen = unseen_labels(y, classes)
    if unseen:
        y = np.asarray(y)
        rows = int(np.isin(y, np.asarray(unseen, dtype=y.dtype)).sum())
        warnings.warn(UnseenLabelWarning(
            f"Labels {unseen!r} of the evaluation set{in_source(source)} ({rows} rows) "
            f"never occur in training (classes {np.asarray(classes).tolist()!r}): the "
            f"layer cannot predict them, so their accuracy is 0 by construction."),
            stacklevel=3)
    return unseen


# ------------------------------------------------------------------ outputs and CLI


def check_output_path(path, name, suffixes=None):
    """An output file we can create: not a directory, its folder exists and is
    writable, and (when ``suffixes`` is given) its suffix is one of them. Raises
    ValueError naming ``name`` (e.g. ``--out``) and the path."""
    p = Path(path)
    if p.is_dir():
        raise ValueError(f"{name} must name a file. Got '{p}', which is a directory.")
    if suffixes and p.suffix.lower() not in suffixes:
        raise ValueError(
            f"{name} must be a file ending in {' or '.join(suffixes)}. Got '{p}' "
            f"(suffix {p.suffix!r}).")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"{name}: cannot write '{p}': directory '{parent}' does not exist.")
    try:  # a probe beside the target: catches read-only and virtual file systems
        import tempfile
        with tempfile.NamedTemporaryFile(dir=parent, prefix=f".{p.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise ValueError(f"{name}: cannot write '{p}': {exc.strerror or exc}.") from None
    if p.exists() and not os.access(p, os.W_OK):
        raise ValueError(f"{name}: cannot write '{p}': the file is not writable.")
    return p


def check_cli_int(text, name, low):
    """An int option of the command line, at least ``low`` (message names ``name``)."""
    try:
        v = int(text)
    except (TypeError, ValueError):
        v = None
    if v is None or v < low:
        raise ValueError(f"{name} must be an int in the range [{low}, inf). Got {text!r}.")
    return v


def check_subsample(subsample, y, min_per_class=2):
    """A stratified subsample size: an int of at least ``min_per_class`` rows per
    class and at most the number of rows."""
    classes = np.unique(y)
    low = min_per_class * classes.size
    if isinstance(subsample, bool) or not isinstance(subsample, numbers.Integral) \
            or not low <= subsample <= len(y):
        raise ValueError(
            f"The 'subsample' parameter (--subsample) must be an int in the range [{low}, "
            f"{len(y)}]: every one of the {classes.size} classes keeps at least "
            f"{min_per_class} rows, and there are {len(y)} training rows. Got "
            f"{subsample!r} instead.")
    return int(subsample)


def check_estimator_rows(estimator, X, y="no_validation", *, name="X",
                         dtype=(np.float64, np.float32), **kwargs):
    """scikit-learn's ``validate_data`` for ``estimator`` (shape, dtype,
    ``n_features_in_``; ``y`` as there), with NaN and inf refused by
    :func:`check_finite_rows` (count, row and column named) instead of scikit-learn's
    message without a position."""
    from sklearn.utils.validation import validate_data

    out = validate_data(estimator, X, y, dtype=dtype, ensure_all_finite=False, **kwargs)
    check_finite_rows(out[0] if isinstance(out, tuple) else out, name)
    return out


def check_validation_rows(estimator, X_val, y_val, groups_val, group_names):
    """Validation rows of ``weighting="tuned"``: features checked against the fitted
    ``estimator`` (its ``n_features_in_`` and ``classes_``), class index and unit index
    (group, when ``group_names``) of every row."""
    if y_val is None:
        raise ValueError("X_val was given without y_val.")
    Xv = check_estimator_rows(estimator, X_val, name="X_val", dtype=np.float64, reset=False)
    yv = check_fit_labels(y_val, "y_val", Xv.shape[0])
    unknown = np.setdiff1d(yv, estimator.classes_)
    if unknown.size:
        raise ValueError(f"y_val has classes not seen in y: {unknown.tolist()!r}.")
    yv_idx = np.searchsorted(estimator.classes_, yv)
    uv = yv_idx
    if groups_val is not None:
        uv = np.searchsorted(group_names, check_fit_labels(groups_val, "groups_val",
                                                           Xv.shape[0]))
    return Xv, yv_idx, uv
