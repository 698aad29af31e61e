"""Performance while labels lag: the production model's key metric estimated without labels,
and the estimate's error once labels arrive.

- ``estimated_key_metric{metric}``: each key metric the version's performance estimator
  (``modelpilot.registry.PerformanceEstimator``, confidence-based: classifiers with calibrated
  probabilities) can estimate, on the drift check's window of logged predictions (the last
  ``drift.window_s``), at the drift check's cadence. Only when the check at registration found
  the estimate trustworthy; ``modelpilot models show`` says why when it did not. Regressors
  get none (docs/monitoring.md).
- ``estimate_error{metric}``: on the newest ``label_window`` labelled predictions, the estimate
  from their probabilities minus the metric realised with their labels. Near zero, the
  estimate can be believed while labels lag; far from it, the model's confidence no longer
  means what it meant on the holdout (a change of concept, which no estimate can see).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.monitoring._timeseries import Point, format_labels
from modelpilot.registry import ModelVersion, PerformanceEstimator, compute_metrics
from modelpilot.spec import KeyMetric

__all__ = ["PerformanceEstimates"]

logger = logging.getLogger("modelpilot.monitoring")


@dataclass
class _Watch:
    version: int
    estimator: PerformanceEstimator | None
    rows: deque[pd.DataFrame] = field(default_factory=deque)
    n_rows: int = 0


class PerformanceEstimates:
    """The monitor's performance estimates, per deployment (see the module's docstring)."""

    def __init__(self, task: str | None, key_metrics: list[KeyMetric], label_window: int) -> None:
        self.task = task
        self.key_metrics = key_metrics
        self.label_window = label_window
        self._watch: dict[str, _Watch] = {}

    def _of(self, name: str, version: ModelVersion) -> _Watch:
        watch = self._watch.get(name)
        if watch is None or watch.version != version.version:
            estimator = PerformanceEstimator.of(version, key_metrics=self.key_metrics)
            if estimator is not None and not estimator.trusted:
                logger.info(
                    "%s v%d: no performance estimate, it cannot be trusted: %s",
                    version.name,
                    version.version,
                    estimator.reason,
                )
                estimator = None
            watch = self._watch[name] = _Watch(version.version, estimator)
        return watch

    def estimated(
        self, name: str, version: ModelVersion, frame: pd.DataFrame, now: float
    ) -> list[Point]:
        """``estimated_key_metric`` points of the logged predictions in ``frame``."""
        estimator = self._of(name, version).estimator
        if estimator is None:
            return []
        return [
            Point("estimated_key_metric", name, value, now, format_labels({"metric": metric}))
            for metric, value in estimator.estimate(frame).items()
        ]

    def realised(
        self, name: str, version: ModelVersion, labelled: pd.DataFrame, now: float
    ) -> list[Point]:
        """``estimate_error`` points, after ``labelled`` (new labelled predictions of
        ``version``) joined the newest ``label_window`` ones."""
        watch = self._of(name, version)
        if watch.estimator is None or labelled.empty:
            return []
        watch.rows.append(labelled)
        watch.n_rows += len(labelled)
        while watch.rows and watch.n_rows - len(watch.rows[0]) >= self.label_window:
            watch.n_rows -= len(watch.rows.popleft())
        rows = pd.concat(list(watch.rows), ignore_index=True).tail(self.label_window)
        estimate = watch.estimator.estimate(rows)
        realised = self._metrics(rows)
        points = []
        for metric, value in estimate.items():
            actual = realised.get(metric)
            if actual is not None:
                labels = format_labels({"metric": metric})
                points.append(Point("estimate_error", name, value - float(actual), now, labels))
        return points

    def _metrics(self, rows: pd.DataFrame) -> dict[str, Any]:
        truth = np.asarray([str(v) for v in rows["label"]])
        predicted = np.asarray([_name(v) for v in rows["prediction"]])
        return compute_metrics(self.task or "binary", truth, predicted)


def _name(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
