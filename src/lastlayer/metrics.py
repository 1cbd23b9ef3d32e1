"""Per-class and per-group accuracies, reports and tables: pure functions on arrays.

Conventions
-----------
- Labels are numbers or strings, never mixed (``y_true``, ``y_pred`` and ``labels``
  must be of one kind); an empty ``y_true`` raises ValueError.
- ``labels`` defaults to the sorted union of the labels in ``y_true`` and ``y_pred``,
  as in scikit-learn.
- The accuracy of class ``c`` is the fraction of samples with true label ``c`` that
  are predicted ``c`` (its recall). A label with no sample in ``y_true`` has no
  accuracy: it is left out of :func:`per_class_accuracy`, of the minimum in
  :func:`worst_class_accuracy` and of the mean in :func:`balanced_accuracy` (the
  scikit-learn convention), but it keeps its row and column in :func:`confusion`.
- Dictionary keys and report labels are plain Python scalars (``int``, ``float``,
  ``str``, ``bool``), so results are JSON-ready.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._validation import check_groups, check_labels, check_same_family, check_targets

__all__ = [
    "per_class_accuracy",
    "per_group_accuracy",
    "worst_class_accuracy",
    "worst_group_accuracy",
    "balanced_accuracy",
    "confusion",
    "classification_report",
    "report_markdown",
    "format_table",
    "mean_and_sem",
]


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #


def _py(value):
    """A numpy scalar as the matching Python scalar (JSON-ready)."""
    return value.item() if isinstance(value, np.generic) else value


def _resolve_labels(y_true, y_pred, labels):
    if labels is None:
        return np.union1d(y_true, y_pred)
    labels = check_labels(labels, "labels")
    if len(labels) == 0:
        raise ValueError("The 'labels' parameter must hold at least one label. Got [].")
    check_same_family(labels, "labels", y_true, "y_true")
    if len(np.unique(labels)) != len(labels):
        raise ValueError(
            f"The 'labels' parameter must hold distinct labels. Got {labels.tolist()!r}."
        )
    return labels


def _codes(values, labels):
    """Index of each value in ``labels``, or -1 where absent."""
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    pos = np.clip(np.searchsorted(sorted_labels, values), 0, len(labels) - 1)
    found = sorted_labels[pos] == values
    return np.where(found, order[pos], -1)


def _class_counts(y_true, y_pred, labels):
    """Samples and correct predictions per label of ``labels`` (by true label)."""
    t = _codes(y_true, labels)
    known = t >= 0
    n = np.bincount(t[known], minlength=len(labels))
    hits = np.bincount(t[known & (y_true == y_pred)], minlength=len(labels))
    return n, hits


def _group_counts(y_true, y_pred, groups):
    names, g = np.unique(groups, return_inverse=True)
    n = np.bincount(g, minlength=len(names))
    hits = np.bincount(g[y_true == y_pred], minlength=len(names))
    return names, n, hits


# --------------------------------------------------------------------------- #
# Accuracies
# --------------------------------------------------------------------------- #


def per_class_accuracy(y_true, y_pred, labels=None) -> dict:
    """Accuracy (recall) of each class.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    labels : array-like, optional
        Classes to report, in this order; default the sorted union of ``y_true``
        and ``y_pred``.

    Returns
    -------
    dict
        ``{label: accuracy}`` for each label with at least one sample in ``y_true``
        (labels absent from ``y_true`` are left out). Equals
        ``sklearn.metrics.recall_score(y_true, y_pred, average=None)`` on those labels.
    """
    y_true, y_pred = check_targets(y_true, y_pred)
    labels = _resolve_labels(y_true, y_pred, labels)
    n, hits = _class_counts(y_true, y_pred, labels)
    return {_py(lab): float(hits[i] / n[i]) for i, lab in enumerate(labels) if n[i] > 0}


def worst_class_accuracy(y_true, y_pred, labels=None) -> float:
    """Lowest per-class accuracy over the classes present in ``y_true``.

    Raises
    ------
    ValueError
        No label of ``labels`` occurs in ``y_true``.
    """
    acc = per_class_accuracy(y_true, y_pred, labels)
    if not acc:
        raise ValueError("None of the labels given in 'labels' occurs in y_true.")
    return min(acc.values())


def balanced_accuracy(y_true, y_pred) -> float:
    """Mean per-class accuracy over the classes present in ``y_true``.

    Equals ``sklearn.metrics.balanced_accuracy_score(y_true, y_pred)``.
    """
    acc = per_class_accuracy(y_true, y_pred)
    return float(np.mean(np.fromiter(acc.values(), dtype=np.float64, count=len(acc))))


def per_group_accuracy(y_true, y_pred, groups) -> dict:
    """Accuracy within each group.

    Parameters
    ----------
    y_true, y_pred, groups : array-like of shape (n_samples,)

    Returns
    -------
    dict
        ``{group: accuracy}`` over the sorted distinct groups.
    """
    y_true, y_pred = check_targets(y_true, y_pred)
    groups = check_groups(groups, len(y_true))
    names, n, hits = _group_counts(y_true, y_pred, groups)
    return {_py(g): float(hits[i] / n[i]) for i, g in enumerate(names)}


def worst_group_accuracy(y_true, y_pred, groups) -> float:
    """Lowest accuracy within any group."""
    return min(per_group_accuracy(y_true, y_pred, groups).values())


def confusion(y_true, y_pred, labels=None) -> np.ndarray:
    """Confusion matrix: entry ``[i, j]`` counts samples of true ``labels[i]``
    predicted ``labels[j]``.

    Equals ``sklearn.metrics.confusion_matrix(y_true, y_pred, labels=labels)``:
    ``labels`` defaults to the sorted union, and samples whose true or predicted
    label is not in ``labels`` are not counted.

    Returns
    -------
    ndarray of shape (n_labels, n_labels), dtype int64
    """
    y_true, y_pred = check_targets(y_true, y_pred)
    labels = _resolve_labels(y_true, y_pred, labels)
    k = len(labels)
    t, p = _codes(y_true, labels), _codes(y_pred, labels)
    keep = (t >= 0) & (p >= 0)
    flat = np.bincount(t[keep] * k + p[keep], minlength=k * k)
    return flat.reshape(k, k).astype(np.int64)


# --------------------------------------------------------------------------- #
# Reports
# --------------------------------------------------------------------------- #


def classification_report(y_true, y_pred, groups=None, labels=None) -> dict:
    """All metrics of one prediction, as a JSON-ready dict.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    groups : array-like of shape (n_samples,), optional
    labels : array-like, optional
        Order of the classes in ``per_class`` and the confusion matrix, and classes
        to show even without samples (e.g. the estimator's ``classes_``). Must
        contain every label of ``y_true`` and ``y_pred``.

    Returns
    -------
    dict
        ``n`` (int), ``accuracy``, ``balanced_accuracy``, ``worst_class_accuracy``
        (floats), ``per_class`` (list of ``{"label", "n", "accuracy"}`` for the
        classes present in ``y_true``), ``labels`` (list) and ``confusion_matrix``
        (list of lists of int, rows true, columns predicted, in ``labels`` order);
        with groups also ``worst_group_accuracy`` and ``per_group`` (list of
        ``{"group", "n", "accuracy"}``).
    """
    y_true, y_pred = check_targets(y_true, y_pred)
    present = np.union1d(y_true, y_pred)
    labels = _resolve_labels(y_true, y_pred, labels)
    missing = np.setdiff1d(present, labels)
    if missing.size:
        raise ValueError(
            f"The 'labels' parameter must contain every label of y_true and y_pred. "
            f"Missing: {missing.tolist()!r}."
        )
    n, hits = _class_counts(y_true, y_pred, labels)
    per_class = [
        {"label": _py(lab), "n": int(n[i]), "accuracy": float(hits[i] / n[i])}
        for i, lab in enumerate(labels) if n[i] > 0
    ]
    # balanced accuracy averages in sorted-label order, as scikit-learn does
    acc_sorted = [hits[i] / n[i] for i in np.argsort(labels, kind="stable") if n[i] > 0]
    report = {
        "n": int(len(y_true)),
        "accuracy": float(np.mean(y_true == y_pred)),
        "balanced_accuracy": float(np.mean(acc_sorted)),
        "worst_class_accuracy": float(min(acc_sorted)),
        "per_class": per_class,
        "labels": [_py(lab) for lab in labels],
        "confusion_matrix": confusion(y_true, y_pred, labels).tolist(),
    }
    if groups is not None:
        groups = check_groups(groups, len(y_true))
        names, gn, ghits = _group_counts(y_true, y_pred, groups)
        report["per_group"] = [
            {"group": _py(g), "n": int(gn[i]), "accuracy": float(ghits[i] / gn[i])}
            for i, g in enumerate(names)
        ]
        report["worst_group_accuracy"] = float(min(ghits / gn))
    return report


def _cell(value, floatfmt):
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return format(float(value), floatfmt)
    return str(value)


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _normalise_rows(rows, headers):
    """Rows as lists of raw values, plus header names (or None)."""
    rows = list(rows)
    if rows and all(isinstance(r, dict) for r in rows):
        if headers is None:
            headers = []
            for r in rows:
                headers.extend(k for k in r if k not in headers)
        return [[r.get(h) for h in headers] for r in rows], [str(h) for h in headers]
    if any(isinstance(r, dict) for r in rows):
        raise ValueError("The 'rows' parameter must be all dicts or all sequences, not a mix.")
    rows = [list(r) for r in rows]
    width = max([len(r) for r in rows] + [len(headers) if headers is not None else 0])
    rows = [r + [None] * (width - len(r)) for r in rows]
    if headers is not None:
        headers = [str(h) for h in headers] + [""] * (width - len(headers))
    return rows, headers


def _layout(rows, headers, floatfmt):
    """Formatted cells and per-column right alignment (numbers right, text left)."""
    ncol = len(headers) if headers is not None else (len(rows[0]) if rows else 0)
    right = [
        any(r[j] is not None for r in rows)
        and all(r[j] is None or _is_number(r[j]) for r in rows)
        for j in range(ncol)
    ]
    cells = [[_cell(v, floatfmt) for v in r] for r in rows]
    return cells, right


def format_table(rows, headers=None, floatfmt=".3f") -> str:
    """A plain-text table with aligned columns, for the terminal.

    Parameters
    ----------
    rows : list of dict or list of sequences
        Dict rows: columns are the keys (in first-seen order) unless ``headers``
        names them. Sequence rows: shorter rows are padded with blanks.
    headers : list of str, optional
        Column names (and, for dict rows, which keys to show).
    floatfmt : str, default ".3f"
        Format spec for floats; integers print as integers, None as a blank.

    Returns
    -------
    str
        Header, a rule of dashes, then one line per row; numeric columns are
        right-aligned, others left-aligned. No trailing newline.
    """
    rows, headers = _normalise_rows(rows, headers)
    cells, right = _layout(rows, headers, floatfmt)
    table = ([headers] if headers is not None else []) + cells
    if not table:
        return ""
    ncol = len(right)
    widths = [max(len(r[j]) for r in table) for j in range(ncol)]

    def line(r):
        parts = [r[j].rjust(widths[j]) if right[j] else r[j].ljust(widths[j])
                 for j in range(ncol)]
        return "  ".join(parts).rstrip()

    out = []
    if headers is not None:
        out.append(line(headers))
        out.append("  ".join("-" * w for w in widths))
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def _markdown_table(rows, headers, floatfmt=".3f"):
    rows, headers = _normalise_rows(rows, headers)
    cells, right = _layout(rows, headers, floatfmt)

    def esc(text):
        return text.replace("|", "\\|")

    out = ["| " + " | ".join(esc(h) for h in headers) + " |",
           "|" + "|".join("---:" if r else ":---" for r in right) + "|"]
    out.extend("| " + " | ".join(esc(c) for c in r) + " |" for r in cells)
    return "\n".join(out)


def report_markdown(report: dict, title=None, floatfmt=".3f") -> str:
    """Render a :func:`classification_report` dict as Markdown tables.

    Sections: a summary (samples, accuracy, balanced, worst-class and worst-group
    accuracy), per-class and per-group tables, and the confusion matrix (rows true,
    columns predicted). Missing keys are skipped, so partial reports render too.
    """
    parts = []
    if title:
        parts.append(f"## {title}")
    summary = [(name, report[key]) for key, name in (
        ("n", "samples"),
        ("accuracy", "accuracy"),
        ("balanced_accuracy", "balanced accuracy"),
        ("worst_class_accuracy", "worst-class accuracy"),
        ("worst_group_accuracy", "worst-group accuracy"),
    ) if key in report]
    if summary:
        parts.append(_markdown_table(summary, ["metric", "value"], floatfmt))
    if report.get("per_class"):
        rows = [[r.get("label"), r.get("n"), r.get("accuracy")] for r in report["per_class"]]
        parts.append("### Per class\n\n" + _markdown_table(rows, ["class", "n", "accuracy"],
                                                          floatfmt))
    if report.get("per_group"):
        rows = [[r.get("group"), r.get("n"), r.get("accuracy")] for r in report["per_group"]]
        parts.append("### Per group\n\n" + _markdown_table(rows, ["group", "n", "accuracy"],
                                                          floatfmt))
    if report.get("confusion_matrix") is not None and report.get("labels") is not None:
        labels = [str(lab) for lab in report["labels"]]
        rows = [[lab] + list(r) for lab, r in zip(labels, report["confusion_matrix"])]
        parts.append(
            "### Confusion matrix (rows: true, columns: predicted)\n\n"
            + _markdown_table(rows, ["true \\ predicted"] + labels, floatfmt)
        )
    return "\n\n".join(parts) + "\n"


# --------------------------------------------------------------------------- #
# Repeats
# --------------------------------------------------------------------------- #


def mean_and_sem(values, axis=0) -> tuple:
    """Mean and standard error of the mean over repeats along ``axis``.

    ``sem = std(values, ddof=1) / sqrt(r)`` with ``r`` the number of repeats
    (``values.shape[axis]``, or ``values.size`` when ``axis`` is None). With a
    single repeat the standard error is NaN (undefined), without a warning.

    Returns
    -------
    (mean, sem)
        Floats for 1-D input (or ``axis=None``), arrays otherwise.

    Raises
    ------
    ValueError
        No repeats.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    r = arr.size if axis is None else arr.shape[axis]
    if r == 0:
        raise ValueError(
            f"The 'values' parameter must hold at least one repeat along axis {axis}. "
            f"Got shape {arr.shape}."
        )
    mean = arr.mean(axis=axis)
    if r < 2:
        sem = np.full_like(mean, np.nan)
    else:
        sem = arr.std(axis=axis, ddof=1) / math.sqrt(r)
    if np.ndim(mean) == 0:
        return float(mean), float(sem)
    return mean, sem
