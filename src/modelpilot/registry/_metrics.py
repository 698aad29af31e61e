"""Offline metrics of a model version on a holdout set, checked against the key-metric targets."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from modelpilot.spec import KeyMetric

__all__ = ["check_targets", "compute_metrics"]


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def compute_metrics(
    task: str,
    y_true: Sequence[Any] | np.ndarray | pd.Series,
    y_pred: Sequence[Any] | np.ndarray,
    *,
    proba: np.ndarray | None = None,
    classes: Sequence[Any] | None = None,
) -> dict[str, float | None]:
    """Every metric that fits the task.

    Examples
    --------
    >>> compute_metrics("regression", [1.0, 2.0, 3.0], [1.0, 2.5, 2.0])["mae"]
    0.5
    >>> compute_metrics("binary", [0, 1, 1, 0], [0, 1, 0, 0])["accuracy"]
    0.75
    """
    # A holdout (or a monitoring window) holding a single class is ordinary, and scikit-learn
    # warns about it on every call; the metrics it cannot define are simply left out.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return _compute_metrics(task, y_true, y_pred, proba=proba, classes=classes)


def _compute_metrics(
    task: str,
    y_true: Sequence[Any] | np.ndarray | pd.Series,
    y_pred: Sequence[Any] | np.ndarray,
    *,
    proba: np.ndarray | None,
    classes: Sequence[Any] | None,
) -> dict[str, float | None]:
    truth = np.asarray(y_true)
    pred = np.asarray(y_pred)
    out: dict[str, float | None] = {}
    if task == "regression":
        truth_f, pred_f = truth.astype(float), pred.astype(float)
        # A model that answers NaN for some rows: those rows have no error to measure; they
        # are counted as null outputs by monitoring, and the metrics use the rest.
        finite = np.isfinite(truth_f) & np.isfinite(pred_f)
        if not finite.all():
            truth_f, pred_f = truth_f[finite], pred_f[finite]
            out["n_non_finite"] = float((~finite).sum())
        if len(truth_f) == 0:
            return out
        out["mae"] = _finite(skm.mean_absolute_error(truth_f, pred_f))
        out["mse"] = _finite(skm.mean_squared_error(truth_f, pred_f))
        out["rmse"] = _finite(math.sqrt(out["mse"] or 0.0))
        nonzero = truth_f != 0
        out["mape"] = (
            _finite(np.mean(np.abs((truth_f[nonzero] - pred_f[nonzero]) / truth_f[nonzero])))
            if nonzero.any()
            else None
        )
        out["r2"] = _finite(skm.r2_score(truth_f, pred_f)) if len(truth_f) > 1 else None
        return out
    out["accuracy"] = _finite(skm.accuracy_score(truth, pred))
    out["balanced_accuracy"] = _finite(skm.balanced_accuracy_score(truth, pred))
    out["f1_macro"] = _finite(skm.f1_score(truth, pred, average="macro", zero_division=0))
    if task == "binary":
        labels = list(classes) if classes is not None else sorted(set(truth.tolist()))
        positive = labels[-1]
        out["f1"] = _finite(skm.f1_score(truth, pred, pos_label=positive, zero_division=0))
        out["precision"] = _finite(
            skm.precision_score(truth, pred, pos_label=positive, zero_division=0)
        )
        out["recall"] = _finite(skm.recall_score(truth, pred, pos_label=positive, zero_division=0))
    if proba is not None and classes is not None and len(set(truth.tolist())) > 1:
        try:
            if task == "binary":
                out["roc_auc"] = _finite(skm.roc_auc_score(truth == classes[-1], proba[:, -1]))
            else:
                out["roc_auc"] = _finite(
                    skm.roc_auc_score(truth, proba, multi_class="ovr", labels=list(classes))
                )
            out["log_loss"] = _finite(skm.log_loss(truth, proba, labels=list(classes)))
        except ValueError:
            pass  # a class missing from the holdout: these two are undefined, the rest stand
    return out


def check_targets(
    metrics: dict[str, float | None], targets: Sequence[KeyMetric]
) -> list[dict[str, Any]]:
    """One entry per key metric: its value, its target and whether it passed.

    Examples
    --------
    >>> from modelpilot.spec import KeyMetric
    >>> check_targets({"mae": 30000.0}, [KeyMetric.model_validate("mae <= 25000")])
    [{'metric': 'mae', 'op': '<=', 'target': 25000.0, 'value': 30000.0, 'passed': False}]
    """
    checks = []
    for target in targets:
        value = metrics.get(target.name)
        checks.append(
            {
                "metric": target.name,
                "op": target.op,
                "target": target.target,
                "value": value,
                "passed": value is not None and target.passes(value),
            }
        )
    return checks
