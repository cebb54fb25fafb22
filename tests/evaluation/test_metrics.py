"""The evaluation metrics on small arrays, checked against figures worked out by hand."""

import numpy as np
import pytest

from resnet_tf.evaluation import metrics


def test_ece_is_zero_when_confidence_matches_accuracy():
    confidences = np.array([0.8] * 10 + [0.5] * 4)
    correct = np.array([1] * 8 + [0] * 2 + [1, 0, 1, 0])
    assert metrics.expected_calibration_error(confidences, correct) == pytest.approx(0, abs=1e-12)


def test_ece_of_a_hand_computed_case():
    # bin (14/15, 1]: 0.95, 0.95 with 1 of 2 right: gap 0.45, weight 2/5
    # bin (8/15, 9/15]: 0.55 x3 with 2 of 3 right: gap |2/3 - 0.55| = 0.11667, weight 3/5
    confidences = np.array([0.95, 0.95, 0.55, 0.55, 0.55])
    correct = np.array([1, 0, 1, 1, 0])
    expected = 2 / 5 * 0.45 + 3 / 5 * (2 / 3 - 0.55)
    assert metrics.expected_calibration_error(confidences, correct) == pytest.approx(expected)
    # With one bin everything is pooled: |3/5 - 0.71|.
    one_bin = metrics.expected_calibration_error(confidences, correct, n_bins=1)
    assert one_bin == pytest.approx(abs(3 / 5 - 0.71))


def test_top_k_confusion_and_per_class_on_small_arrays():
    logits = np.array([[3.0, 2.0, 1.0], [1.0, 3.0, 2.0], [1.0, 2.0, 3.0], [3.0, 1.0, 2.0]])
    labels = np.array([0, 2, 1, 0])
    assert metrics.top_k_accuracy(logits, labels, 1) == 0.5
    assert metrics.top_k_accuracy(logits, labels, 2) == 1.0
    tied = np.array([[1.0, 1.0, 0.0]])  # ties go to the lower index, as argmax
    assert metrics.top_k_accuracy(tied, np.array([0]), 1) == 1.0
    assert metrics.top_k_accuracy(tied, np.array([1]), 1) == 0.0
    matrix = metrics.confusion_matrix(labels, logits.argmax(axis=1), 3)
    assert matrix.tolist() == [[2, 0, 0], [0, 0, 1], [0, 1, 0]]
    rows = metrics.per_class_metrics(matrix, ["a", "b", "c"])
    assert [(r["class"], r["recall"], r["precision"]) for r in rows] == [
        ("a", 1.0, 1.0),
        ("b", 0.0, 0.0),
        ("c", 0.0, 0.0),
    ]
    absent = metrics.per_class_metrics(np.array([[1, 0], [0, 0]]), ["a", "b"])
    assert [r["class"] for r in absent] == ["a"]
    never_predicted = metrics.per_class_metrics(np.array([[0, 2], [0, 1]]), ["a", "b"])
    assert never_predicted[0]["precision"] is None
    pairs = metrics.most_confused_pairs(matrix, ["a", "b", "c"])
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        ("b", "c", 1),
        ("c", "b", 1),
    ]
