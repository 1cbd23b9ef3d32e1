"""Tests for lastlayer.metrics, against scikit-learn and hand-checked examples."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from lastlayer.metrics import (
    balanced_accuracy,
    classification_report,
    confusion,
    format_table,
    mean_and_sem,
    per_class_accuracy,
    per_group_accuracy,
    report_markdown,
    worst_class_accuracy,
    worst_group_accuracy,
)


def sk_recall(y_true, y_pred, labels):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return skm.recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)


def sk_balanced(y_true, y_pred):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
        return skm.balanced_accuracy_score(y_true, y_pred)


def random_labels(seed, kind):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 200))
    k_true, k_pred = int(rng.integers(1, 6)), int(rng.integers(1, 7))
    p = rng.dirichlet(np.ones(k_true) * 0.5)
    y_true = rng.choice(k_true, size=n, p=p)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, k_pred, n))
    if kind == "str":
        names = np.array(["ant", "bee", "cat", "dog", "eel", "fox", "gnu"])
        return names[y_true], names[y_pred]
    if kind == "sparse":  # non-contiguous, negative and large integer labels
        names = np.array([-7, 0, 3, 12, 100, 101, 10**9])
        return names[y_true], names[y_pred]
    return y_true, y_pred


@pytest.mark.parametrize("kind", ["int", "str", "sparse"])
@pytest.mark.parametrize("seed", range(15))
def test_against_sklearn(seed, kind):
    y_true, y_pred = random_labels(seed, kind)
    assert balanced_accuracy(y_true, y_pred) == sk_balanced(y_true, y_pred)
    np.testing.assert_array_equal(confusion(y_true, y_pred), skm.confusion_matrix(y_true, y_pred))
    present = np.unique(y_true)
    acc = per_class_accuracy(y_true, y_pred)
    assert list(acc) == present.tolist()  # classes only predicted are left out
    np.testing.assert_array_equal(list(acc.values()), sk_recall(y_true, y_pred, present))
    assert worst_class_accuracy(y_true, y_pred) == min(sk_recall(y_true, y_pred, present))
    report = classification_report(y_true, y_pred)
    assert report["balanced_accuracy"] == sk_balanced(y_true, y_pred)
    assert report["accuracy"] == skm.accuracy_score(y_true, y_pred)
    assert report["confusion_matrix"] == skm.confusion_matrix(y_true, y_pred).tolist()


def test_missing_classes_with_labels():
    y_true = np.array([0, 0, 1, 1, 1, 3])
    y_pred = np.array([0, 1, 1, 1, 4, 3])
    labels = [4, 3, 2, 1, 0]  # 2 never occurs, 4 is only predicted, custom order
    np.testing.assert_array_equal(confusion(y_true, y_pred, labels),
                                  skm.confusion_matrix(y_true, y_pred, labels=labels))
    # a subset of labels drops samples outside it, as scikit-learn does
    np.testing.assert_array_equal(confusion(y_true, y_pred, [1, 0]),
                                  skm.confusion_matrix(y_true, y_pred, labels=[1, 0]))
    acc = per_class_accuracy(y_true, y_pred, labels)
    assert acc == {3: 1.0, 1: 2 / 3, 0: 0.5}
    assert list(acc) == [3, 1, 0]
    assert worst_class_accuracy(y_true, y_pred, labels) == 0.5
    assert worst_class_accuracy(y_true, y_pred, [1, 3]) == 2 / 3
    with pytest.raises(ValueError, match="None of the labels"):
        worst_class_accuracy(y_true, y_pred, [2, 4])


def test_string_labels_missing_class_report():
    y_true = np.array(["cat", "cat", "dog", "dog", "dog"])
    y_pred = np.array(["cat", "dog", "dog", "dog", "emu"])
    report = classification_report(y_true, y_pred, labels=["emu", "dog", "cat", "fox"])
    json.dumps(report)  # JSON-ready
    assert report["labels"] == ["emu", "dog", "cat", "fox"]
    assert report["per_class"] == [
        {"label": "dog", "n": 3, "accuracy": 2 / 3},
        {"label": "cat", "n": 2, "accuracy": 0.5},
    ]
    assert report["confusion_matrix"] == [[0, 0, 0, 0], [1, 2, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    assert report["worst_class_accuracy"] == 0.5
    assert report["balanced_accuracy"] == sk_balanced(y_true, y_pred)
    assert report["n"] == 5 and report["accuracy"] == 0.6
    with pytest.raises(ValueError, match="every label of y_true and y_pred.*'emu'"):
        classification_report(y_true, y_pred, labels=["cat", "dog"])


def test_worst_group_hand_made():
    # Waterbirds-style: class x background. The minority group (1, "land") is worst.
    y_true = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 0])
    y_pred = np.array([0, 0, 0, 1, 1, 1, 1, 0, 0, 0])
    groups = np.array(["0-land", "0-land", "0-land", "0-land",
                       "1-water", "1-water", "1-water", "1-land", "1-land", "0-water"])
    acc = per_group_accuracy(y_true, y_pred, groups)
    assert acc == {"0-land": 0.75, "0-water": 1.0, "1-land": 0.0, "1-water": 1.0}
    assert worst_group_accuracy(y_true, y_pred, groups) == 0.0
    report = classification_report(y_true, y_pred, groups=groups)
    assert report["worst_group_accuracy"] == 0.0
    assert report["per_group"][0] == {"group": "0-land", "n": 4, "accuracy": 0.75}
    assert [g["n"] for g in report["per_group"]] == [4, 1, 2, 3]
    json.dumps(report)


def test_report_types_are_plain_python():
    y_true = np.array([2, 2, 5], dtype=np.int32)
    y_pred = np.array([2, 5, 5], dtype=np.int32)
    report = classification_report(y_true, y_pred, groups=np.array([0, 1, 1], dtype=np.int8))
    assert type(report["labels"][0]) is int
    assert type(report["per_class"][0]["label"]) is int
    assert type(report["per_group"][0]["group"]) is int
    assert type(report["confusion_matrix"][0][0]) is int
    assert all(type(k) is int for k in per_class_accuracy(y_true, y_pred))
    assert json.loads(json.dumps(report)) == report


def test_invariant_to_permuting_samples():
    y_true, y_pred = random_labels(3, "str")
    groups = np.arange(len(y_true)) % 3
    perm = np.random.default_rng(0).permutation(len(y_true))
    assert classification_report(y_true, y_pred, groups) == classification_report(
        y_true[perm], y_pred[perm], groups[perm])


def test_input_errors():
    with pytest.raises(ValueError, match="at least one sample"):
        balanced_accuracy([], [])
    with pytest.raises(ValueError, match=r"len\(y_true\) = 3 and len\(y_pred\) = 2"):
        per_class_accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="string labels in y_true and numeric labels in y_pred"):
        confusion(["a", "b"], [0, 1])
    with pytest.raises(ValueError, match="y_pred.*missing values"):
        balanced_accuracy([0, 1], [0.0, np.nan])
    with pytest.raises(ValueError, match="mixed types"):
        balanced_accuracy(np.array([0, "a"], dtype=object), [0, 1])
    with pytest.raises(ValueError, match=r"len\(groups\) = 1"):
        per_group_accuracy([0, 1], [0, 1], [0])
    with pytest.raises(ValueError, match="distinct"):
        confusion([0, 1], [0, 1], labels=[0, 0, 1])


def test_report_markdown_contains_numbers():
    y_true = np.array(["cat", "cat", "dog", "dog", "dog", "dog"])
    y_pred = np.array(["cat", "dog", "dog", "dog", "dog", "cat"])
    report = classification_report(y_true, y_pred, groups=["a", "a", "b", "b", "a", "b"])
    md = report_markdown(report, title="Held-out")
    assert md.startswith("## Held-out")
    for text in ["| accuracy | 0.667 |", "| balanced accuracy | 0.625 |",
                 "| worst-class accuracy | 0.500 |", "| worst-group accuracy | 0.667 |",
                 "| cat | 2 | 0.500 |", "| dog | 4 | 0.750 |", "### Per group",
                 "| a | 3 | 0.667 |", "| cat | 1 | 1 |", "| dog | 1 | 3 |"]:
        assert text in md, text
    # every table row has the same number of pipes
    for block in md.split("\n\n"):
        rows = [r for r in block.splitlines() if r.startswith("|")]
        assert len({r.count("|") for r in rows}) <= 1


def test_format_table_dict_rows():
    rows = [{"class": "cat", "n": 12, "accuracy": 0.91234},
            {"class": "hippopotamus", "n": 3, "accuracy": float("nan")}]
    text = format_table(rows)
    lines = text.splitlines()
    assert lines[0].split() == ["class", "n", "accuracy"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert "0.912" in text and "nan" in text and "12" in text
    assert len({len(line) for line in lines[:2]}) == 1  # header and rule align
    # numbers right-aligned: the last characters of the column line up
    assert lines[2].endswith("0.912") and lines[3].endswith("  nan")
    assert lines[2].index("12") + 1 == lines[3].index("3")
    assert format_table(rows, headers=["n"]).splitlines()[2].strip() == "12"


def test_format_table_list_rows():
    text = format_table([[1, 2.5, "x"], [10, None, "yy"], [3, 0.25, True]],
                        headers=["a", "b", "c"], floatfmt=".1f")
    lines = text.splitlines()
    assert lines[0] == " a    b  c"
    assert lines[1] == "--  ---  ----"
    assert lines[2] == " 1  2.5  x"
    assert lines[3] == "10       yy"
    assert lines[4] == " 3  0.2  True"  # bools are text, left-aligned
    # short rows are padded; a column of text is left-aligned
    assert format_table([["a", 1], ["bbb"]]).splitlines() == ["a    1", "bbb"]
    assert format_table([]) == ""
    assert format_table([[1.23456]], floatfmt=".2e") == "1.23e+00"


def test_mean_and_sem():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((7, 3))
    mean, sem = mean_and_sem(values)
    np.testing.assert_allclose(mean, values.mean(axis=0))
    np.testing.assert_allclose(sem, stats.sem(values, axis=0))
    mean, sem = mean_and_sem(values, axis=1)
    np.testing.assert_allclose(sem, stats.sem(values, axis=1))
    m, s = mean_and_sem([1.0, 2.0, 4.0])
    assert isinstance(m, float) and m == pytest.approx(7 / 3)
    assert s == pytest.approx(np.std([1, 2, 4], ddof=1) / np.sqrt(3))
    m, s = mean_and_sem([0.5])
    assert m == 0.5 and np.isnan(s)
    with pytest.raises(ValueError, match="at least one repeat"):
        mean_and_sem([])
