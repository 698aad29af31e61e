"""The options of a :class:`~modelpilot.drift.ConceptDriftMonitor`, checked and built: its
task, key metrics, detectors (and the defaults per task) and the times of its labels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError

from modelpilot.drift._detectors import DriftDetector, make_detector
from modelpilot.errors import DataError, ModelpilotError
from modelpilot.spec import REGRESSION_METRICS, KeyMetric
from modelpilot.types import Clock

__all__ = ["DEFAULT_DETECTORS", "TASKS", "build_detectors", "key_metric", "label_times"]

TASKS = ("regression", "binary", "multiclass")
_CLASSIFICATION_DETECTORS: tuple[tuple[str, Mapping[str, Any]], ...] = (
    ("adwin", {}),
    ("ddm", {}),
    ("page_hinkley", {}),
)
#: Detectors (name, parameters) a monitor runs when none are given. DDM needs a 0/1 error, so
#: not for regression. A scaled absolute error is about three times as noisy as a 0/1 error, so
#: Page-Hinkley's threshold is doubled there: on the house-price model that cuts false alarms
#: from 1 in 4,000 labels to 1 in 17,000 and still detects a 20% price rise within ~20 labels
#: (``benchmarks/drift_quality.py``, ``docs/concept-drift.md``).
DEFAULT_DETECTORS: dict[str, tuple[tuple[str, Mapping[str, Any]], ...]] = {
    "regression": (("adwin", {}), ("page_hinkley", {"threshold": 100.0})),
    "binary": _CLASSIFICATION_DETECTORS,
    "multiclass": _CLASSIFICATION_DETECTORS,
}


def key_metric(value: KeyMetric | str, task: str) -> KeyMetric:
    try:
        key = value if isinstance(value, KeyMetric) else KeyMetric.model_validate(value)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ModelpilotError(f"key metric {value!r} is not valid: {problem}") from None
    if (key.name in REGRESSION_METRICS) != (task == "regression"):
        fitting = "mae, rmse, mse, mape or r2" if task == "regression" else "accuracy, f1, ..."
        raise ModelpilotError(f"key metric {str(key)!r} does not fit task {task!r}; use {fitting}")
    return key


def build_detectors(
    task: str, detectors: Sequence[str | DriftDetector] | None
) -> list[DriftDetector]:
    if detectors is None:
        return [make_detector(name, **params) for name, params in DEFAULT_DETECTORS[task]]
    built = [make_detector(d) if isinstance(d, str) else d for d in detectors]
    if not built:
        defaults = ", ".join(name for name, _ in DEFAULT_DETECTORS[task])
        raise ModelpilotError(
            "a concept drift monitor needs at least one detector; pass detectors=None for the "
            f"defaults ({defaults})"
        )
    names = [d.name for d in built]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ModelpilotError(
            f"detector names must be unique; repeated: {', '.join(repeated)}. Name the copies, "
            "e.g. make_detector('page_hinkley', threshold=20.0, name='page_hinkley_fast')"
        )
    for detector in built:
        if task == "regression" and detector.input_kind == "binary":
            raise ModelpilotError(
                f"detector {detector.name!r} expects a 0/1 error stream, but a regression "
                "error is real-valued; use 'adwin' or 'page_hinkley' for regression"
            )
    return built


def label_times(
    ts: float | Sequence[float] | np.ndarray | None, n: int, clock: Clock
) -> list[float]:
    if ts is None:
        return [float(clock())] * n
    if isinstance(ts, int | float | np.number):
        return [float(ts)] * n
    times = [float(t) for t in ts]
    if len(times) != n:
        raise DataError(f"got {len(times)} timestamps for {n} labels; pass one per label or one")
    return times
