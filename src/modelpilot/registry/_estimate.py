"""Confidence-based performance estimation (CBPE): a classifier's metrics without labels.

If a model's probabilities are calibrated, the probability it gives its predicted class is the
chance that the prediction is right. Summed over many predictions, calibrated probabilities
give the *expected* confusion matrix, and from it every metric of the task (the method of
NannyML's CBPE; Kivimäki et al., "Confidence-based performance estimation", 2023). Before the
labels arrive, a falling estimate is the early sign that the model now sees inputs it is
unsure about.

Its limit: it estimates what the model's own probabilities imply, so it sees a drop caused by
inputs moving to where the model is uncertain (covariate shift), not a change of the rule that
maps inputs to labels (concept drift), which only labels reveal. The probabilities must be
calibrated on labelled data first (``_calibration.py``, at registration, on the holdout), and
the check there says when the estimate cannot be trusted. Regressors get no estimate: a
point prediction carries no probability of being right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["ESTIMABLE", "expected_metrics"]

#: The metrics CBPE estimates (those of modelpilot.spec.METRICS that depend on the labels
#: through the confusion matrix or the ranking of the scores).
ESTIMABLE = (
    "accuracy",
    "balanced_accuracy",
    "f1",
    "f1_macro",
    "precision",
    "recall",
    "roc_auc",
    "log_loss",
)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 1e-12 else None


def _expected_auc(chance: np.ndarray, scores: np.ndarray) -> float | None:
    """The expected ROC AUC: correctly ordered (positive, negative) pairs over all such
    pairs, each pair weighted by the chance that it is one (ties count one half)."""
    order = np.argsort(scores, kind="stable")
    s, p = scores[order], chance[order]
    negatives = 1.0 - p
    cumulative = np.concatenate([[0.0], np.cumsum(negatives)])
    _, first, counts = np.unique(s, return_index=True, return_counts=True)
    below = np.repeat(cumulative[first], counts)  # expected negatives scored strictly lower
    tied = np.repeat(cumulative[first + counts] - cumulative[first], counts) - negatives
    correct = float(np.sum(p * (below + 0.5 * tied)))
    pairs = float(p.sum() * negatives.sum() - np.sum(p * negatives))
    return _ratio(correct, pairs)


def expected_metrics(
    calibrated: np.ndarray,
    predicted: np.ndarray,
    *,
    scores: np.ndarray | None = None,
    positive: int | None = None,
    metrics: Sequence[str] = ESTIMABLE,
) -> dict[str, float]:
    """The metrics a classifier is expected to reach on these rows, from its calibrated
    probabilities (``n x classes``) and predicted class indices.

    ``scores``: the model's own probabilities (the ranking for ``roc_auc``, the loss for
    ``log_loss``; default: the calibrated ones). ``positive``: the positive class's index of a
    binary task (``f1``, ``precision``, ``recall``, ``roc_auc``); None for multiclass.

    Examples
    --------
    >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.7, 0.3]])
    >>> values = expected_metrics(p, p.argmax(axis=1), positive=1)
    >>> round(values["accuracy"], 3), round(values["precision"], 3)
    (0.75, 0.7)
    """
    n, k = calibrated.shape
    out: dict[str, float] = {}
    if n == 0:
        return out
    raw = calibrated if scores is None else scores
    picked = np.zeros_like(calibrated, dtype=bool)
    picked[np.arange(n), predicted] = True
    tp = np.where(picked, calibrated, 0.0).sum(axis=0)  # expected true positives per class
    fp = np.where(picked, 1.0 - calibrated, 0.0).sum(axis=0)
    fn = np.where(picked, 0.0, calibrated).sum(axis=0)
    values: dict[str, float | None] = {"accuracy": float(tp.sum() / n)}
    recall = [_ratio(tp[c], tp[c] + fn[c]) for c in range(k)]
    known = [r for r in recall if r is not None]
    values["balanced_accuracy"] = float(np.mean(known)) if known else None
    f1 = [_ratio(2 * tp[c], 2 * tp[c] + fp[c] + fn[c]) or 0.0 for c in range(k)]
    values["f1_macro"] = float(np.mean(f1))
    if positive is not None:
        values["f1"] = f1[positive]
        values["precision"] = _ratio(tp[positive], tp[positive] + fp[positive])
        values["recall"] = recall[positive]
        values["roc_auc"] = _expected_auc(calibrated[:, positive], raw[:, positive])
    else:
        aucs = [_expected_auc(calibrated[:, c], raw[:, c]) for c in range(k)]
        usable = [a for a in aucs if a is not None]
        values["roc_auc"] = float(np.mean(usable)) if usable else None
    clipped = np.clip(raw, 1e-15, 1.0)
    values["log_loss"] = float(-np.mean(np.sum(calibrated * np.log(clipped), axis=1)))
    for name in metrics:
        value: Any = values.get(name)
        if value is not None and np.isfinite(value):
            out[name] = float(value)
    return out
