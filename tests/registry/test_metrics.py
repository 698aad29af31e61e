"""Offline metrics of a version on a holdout, checked against the key-metric targets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelpilot.registry import check_targets, compute_metrics
from modelpilot.spec import KeyMetric


def test_regression_metrics() -> None:
    truth = [100.0, 200.0, 300.0, 400.0]
    pred = [110.0, 190.0, 330.0, 400.0]
    metrics = compute_metrics("regression", truth, pred)
    assert metrics["mae"] == pytest.approx(12.5)
    assert metrics["mse"] == pytest.approx(275.0)
    assert metrics["rmse"] == pytest.approx(math.sqrt(275.0))
    assert metrics["mape"] == pytest.approx((0.1 + 0.05 + 0.1 + 0.0) / 4)
    assert metrics["r2"] == pytest.approx(1 - 1100.0 / 50_000.0)
    assert set(metrics) == {"mae", "mse", "rmse", "mape", "r2"}


def test_mape_skips_zero_labels_and_is_undefined_without_others() -> None:
    assert compute_metrics("regression", [0.0, 10.0], [5.0, 12.0])["mape"] == pytest.approx(0.2)
    assert compute_metrics("regression", [0.0, 0.0], [1.0, 2.0])["mape"] is None


def test_r2_is_undefined_for_one_row() -> None:
    metrics = compute_metrics("regression", [3.0], [2.0])
    assert metrics["r2"] is None
    assert metrics["mae"] == 1.0


def test_binary_metrics_treat_the_last_class_as_positive() -> None:
    truth = ["no", "yes", "yes", "no", "yes"]
    pred = ["no", "yes", "no", "yes", "yes"]
    metrics = compute_metrics("binary", truth, pred)
    assert metrics["accuracy"] == pytest.approx(0.6)
    assert metrics["precision"] == pytest.approx(2 / 3)  # of 3 predicted "yes", 2 are right
    assert metrics["recall"] == pytest.approx(2 / 3)  # of 3 true "yes", 2 were found
    assert "roc_auc" not in metrics  # no probabilities given


def test_binary_probability_metrics() -> None:
    truth = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]])
    metrics = compute_metrics("binary", truth, proba.argmax(axis=1), proba=proba, classes=[0, 1])
    assert metrics["roc_auc"] == 1.0
    expected = -np.mean(np.log([0.9, 0.6, 0.7, 0.8]))
    assert metrics["log_loss"] == pytest.approx(expected)


def test_multiclass_metrics() -> None:
    truth = ["a", "b", "c", "a", "b", "c"]
    proba = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.1, 0.8, 0.1],
            [0.2, 0.2, 0.6],
            [0.5, 0.4, 0.1],
            [0.6, 0.3, 0.1],
            [0.1, 0.1, 0.8],
        ]
    )
    pred = np.array(["a", "b", "c"])[proba.argmax(axis=1)]
    metrics = compute_metrics("multiclass", truth, pred, proba=proba, classes=["a", "b", "c"])
    assert metrics["accuracy"] == pytest.approx(5 / 6)
    assert 0 < metrics["f1_macro"] < 1  # type: ignore[operator]
    assert metrics["roc_auc"] is not None and "f1" not in metrics


def test_probability_metrics_are_left_out_when_the_holdout_has_one_class() -> None:
    proba = np.array([[0.2, 0.8], [0.4, 0.6]])
    metrics = compute_metrics("binary", [1, 1], [1, 1], proba=proba, classes=[0, 1])
    assert metrics["accuracy"] == 1.0
    assert "roc_auc" not in metrics and "log_loss" not in metrics


def test_check_targets_reports_each_key_metric() -> None:
    targets = [KeyMetric.model_validate(t) for t in ("mae <= 100", "r2 >= 0.9", "mape < 0.1")]
    checks = check_targets({"mae": 80.0, "r2": 0.5, "mape": None}, targets)
    assert [(c["metric"], c["value"], c["passed"]) for c in checks] == [
        ("mae", 80.0, True),
        ("r2", 0.5, False),
        ("mape", None, False),  # a metric that could not be computed never passes
    ]
    assert checks[0] == {
        "metric": "mae",
        "op": "<=",
        "target": 100.0,
        "value": 80.0,
        "passed": True,
    }


def test_check_targets_without_targets() -> None:
    assert check_targets({"mae": 1.0}, []) == []
