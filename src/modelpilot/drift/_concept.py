"""Concept drift: the mapping x -> y changes, and the model's error shows it once labels arrive.

The seed's example: the same house starts to sell for more. Its inputs look as before, so data
drift checks stay quiet; only the labels, as they come back, reveal that the predictions are now
too low. :class:`ConceptDriftMonitor` turns ``(prediction, label)`` pairs into an error stream,
runs drift detectors on it, and keeps the key metrics over the last labels against their targets.
Before any label arrives, a shift in the distribution of the predictions is the early sign; that
is the data-drift engine's job (see ``docs/concept-drift.md``). What the monitor reports lives in
``_concept_status.py``, the detectors in ``_detectors.py``, the checks of its options and the
default detectors in ``_concept_options.py``.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from modelpilot.drift._concept_options import TASKS, build_detectors, key_metric, label_times
from modelpilot.drift._concept_status import (
    ConceptDriftEvent,
    ConceptDriftStatus,
    DetectorStatus,
    KeyMetricStatus,
)
from modelpilot.drift._detectors import DriftDetector
from modelpilot.errors import DataError, ModelpilotError
from modelpilot.registry import compute_metrics
from modelpilot.spec import KeyMetric, Task
from modelpilot.types import Clock

if TYPE_CHECKING:
    from modelpilot.store import PredictionStore

__all__ = [
    "ConceptDriftEvent",
    "ConceptDriftMonitor",
    "ConceptDriftStatus",
    "DetectorStatus",
    "KeyMetricStatus",
]


class ConceptDriftMonitor:
    """Watch the error of a deployed model as labels arrive; flag drift and missed targets.

    Regression errors are absolute (or, with ``error="relative"``, relative to the label) and
    are divided by ``error_scale`` before they reach the detectors, so that thresholds made for
    streams of about 0 to 1 (Page-Hinkley's) work in any currency. Classification errors are
    0/1 (the prediction differs from the label). Windowed metrics use the raw values.

    Parameters
    ----------
    task
        ``"regression"``, ``"binary"`` or ``"multiclass"``.
    key_metrics
        Targets such as ``"mae <= 25000"`` (strings or :class:`~modelpilot.spec.KeyMetric`).
        ``roc_auc`` and ``log_loss`` need probabilities, which the monitor does not see; they
        are reported with ``passed=None``.
    detectors
        Detector names (see ``make_detector``) or built detectors. None: ADWIN and Page-Hinkley
        (``threshold=100`` for regression, see ``DEFAULT_DETECTORS``), plus DDM for
        classification. A detector must not be shared by monitors.
    window
        Key metrics and the per-detector drift flag cover the last this many labels.
    error
        Regression only: ``"absolute"`` (|label - prediction|) or ``"relative"`` (divided by
        |label|; labels must not be 0).
    error_scale
        Regression only: the error that counts as 1 for the detectors, e.g. the version's
        offline MAE. None: the mean error of the first ``calibration`` labels (the detectors
        see those labels once the scale is known).
    calibration
        Labels used to estimate ``error_scale`` when it is not given.
    min_labels
        With fewer labels in the window, key metrics are reported but not judged.
    classes
        Classification: the class labels, last = positive class for binary metrics.
    clock
        Time of a label when ``update`` gets no ``ts``, and of a snapshot.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> price = rng.uniform(100_000, 500_000, 2400)
    >>> predicted = price + rng.normal(0, 15_000, 2400)
    >>> price[2000:] *= 1.2  # the same houses now sell for 20% more
    >>> monitor = ConceptDriftMonitor("regression", ["mae <= 25000"], clock=lambda: 0.0)
    >>> events = monitor.update_many(predicted, price)
    >>> sorted({e.detector for e in events if 2000 <= e.index < 2100})
    ['adwin', 'page_hinkley']
    >>> status = monitor.status()
    >>> status.drift_detected, status.key_metrics[0].passed, status.n_labels
    (True, False, 2400)
    """

    def __init__(
        self,
        task: Task,
        key_metrics: Sequence[KeyMetric | str] = (),
        *,
        detectors: Sequence[str | DriftDetector] | None = None,
        window: int = 500,
        error: Literal["absolute", "relative"] = "absolute",
        error_scale: float | None = None,
        calibration: int = 100,
        min_labels: int = 30,
        classes: Sequence[Any] | None = None,
        clock: Clock = time.time,
    ) -> None:
        if task not in TASKS:
            raise ModelpilotError(f"task must be one of {', '.join(TASKS)}; got {task!r} instead")
        for param, value in (
            ("window", window),
            ("calibration", calibration),
            ("min_labels", min_labels),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ModelpilotError(f"{param} must be an int >= 1; got {value!r} instead")
        if error not in ("absolute", "relative"):
            raise ModelpilotError(f"error must be 'absolute' or 'relative'; got {error!r} instead")
        if error_scale is not None and not (
            isinstance(error_scale, int | float) and math.isfinite(error_scale) and error_scale > 0
        ):
            raise ModelpilotError(
                f"error_scale must be a positive number (e.g. the offline MAE) or None to "
                f"calibrate on the first labels; got {error_scale!r} instead"
            )
        self.task = task
        self.key_metrics = [key_metric(k, task) for k in key_metrics]
        self.window = window
        self.error = error
        self.calibration = calibration
        self.min_labels = min_labels
        self.classes = list(classes) if classes is not None else None
        self.clock = clock
        self._detectors = build_detectors(task, detectors)
        self._given_scale = error_scale
        self._predictions: deque[Any] = deque(maxlen=window)
        self._labels: deque[Any] = deque(maxlen=window)
        self.reset()

    @classmethod
    def from_log(
        cls,
        prediction_log: PredictionStore,
        model: str,
        start: float | None = None,
        end: float | None = None,
        *,
        task: Task,
        key_metrics: Sequence[KeyMetric | str] = (),
        version: int | None = None,
        **options: Any,
    ) -> ConceptDriftMonitor:
        """A monitor fed with the labelled predictions of ``model`` logged in ``[start, end)``.

        Rows are replayed in prediction-time order, each stamped with its prediction's ``ts``
        (when the concept was observed). ``version`` keeps one model version only; ``options``
        go to the constructor.
        """
        frame = prediction_log.labeled(model=model, start=start, end=end)
        if version is not None and not frame.empty:
            frame = frame[frame["version"] == version]
        monitor = cls(task, key_metrics, **options)
        if frame.empty:
            return monitor
        if "prediction" not in frame.columns:
            raise DataError(
                f"the logged outputs of {model!r} have no 'prediction' field (columns: "
                f"{', '.join(map(str, frame.columns))}); log predictions as "
                "{'prediction': ...} to monitor concept drift"
            )
        monitor.update_many(
            frame["prediction"].tolist(),
            frame["label"].tolist(),
            ts=frame["ts"].astype(float).tolist(),
        )
        return monitor

    @property
    def detectors(self) -> list[DriftDetector]:
        """The detectors, in the order they were given."""
        return list(self._detectors)

    @property
    def n_labels(self) -> int:
        """How many (prediction, label) pairs were fed since construction or :meth:`reset`."""
        return self._n_labels

    @property
    def error_scale(self) -> float | None:
        """The regression error that counts as 1 (None while calibrating or for classification)."""
        return self._scale

    @property
    def events(self) -> list[ConceptDriftEvent]:
        """Every detection so far, in order."""
        return list(self._events)

    def reset(self) -> None:
        """Start over, e.g. after deploying a retrained model: detectors, window, calibration."""
        for detector in self._detectors:
            detector.reset()
        self._predictions.clear()
        self._labels.clear()
        self._n_labels = 0
        self._events: list[ConceptDriftEvent] = []
        self._pending: list[tuple[float, float]] = []  # (error, ts) awaiting the scale
        self._scale = self._given_scale if self.task == "regression" else None

    def update(
        self, prediction: Any, label: Any, ts: float | None = None
    ) -> list[ConceptDriftEvent]:
        """Feed one labelled prediction; returns the detections it caused (empty: none)."""
        return self.update_many([prediction], [label], ts=None if ts is None else [ts])

    def update_many(
        self,
        predictions: Sequence[Any] | np.ndarray,
        labels: Sequence[Any] | np.ndarray,
        ts: float | Sequence[float] | np.ndarray | None = None,
    ) -> list[ConceptDriftEvent]:
        """Feed a batch in arrival order; returns the detections it caused.

        ``ts`` is one time for the whole batch, one per row, or None for ``clock()``. The batch
        is checked as a whole first: a bad row leaves the monitor unchanged.
        """
        preds = np.asarray(predictions, dtype=object).ravel()
        truth = np.asarray(labels, dtype=object).ravel()
        if len(preds) != len(truth):
            raise DataError(
                f"got {len(preds)} predictions but {len(truth)} labels; pass one label per "
                "prediction, in the same order"
            )
        times = label_times(ts, len(preds), self.clock)
        errors = self._errors(preds, truth)
        events: list[ConceptDriftEvent] = []
        for i in range(len(preds)):
            self._predictions.append(preds[i])
            self._labels.append(truth[i])
            self._n_labels += 1
            if self.task == "regression" and self._scale is None:
                self._pending.append((float(errors[i]), times[i]))
                if len(self._pending) >= self.calibration:
                    events += self._calibrate()
            else:
                events += self._feed(float(errors[i]), times[i])
        self._events += events
        return events

    def status(self) -> ConceptDriftStatus:
        """A typed snapshot: detector flags, windowed metrics vs targets, label counts."""
        n_window = len(self._labels)
        metrics = self._window_metrics() if n_window else {}
        first_in_window = self._n_labels - n_window
        detectors = []
        for detector in self._detectors:
            own = [e for e in self._events if e.detector == detector.name]
            last = own[-1] if own else None
            detectors.append(
                DetectorStatus(
                    name=detector.name,
                    drift_detected=last is not None and last.index >= first_in_window,
                    n_detections=len(own),
                    last_detection_index=None if last is None else last.index,
                    last_detection_ts=None if last is None else last.ts,
                )
            )
        checks = []
        for key in self.key_metrics:
            value = metrics.get(key.name)
            judged = value is not None and n_window >= self.min_labels
            checks.append(
                KeyMetricStatus(
                    key.name,
                    key.op,
                    key.target,
                    value,
                    key.passes(value) if judged and value is not None else None,
                )
            )
        return ConceptDriftStatus(
            task=self.task,
            ts=self.clock(),
            n_labels=self._n_labels,
            n_window=n_window,
            error_scale=self._scale,
            detectors=tuple(detectors),
            metrics=metrics,
            key_metrics=tuple(checks),
        )

    def _errors(self, preds: np.ndarray, truth: np.ndarray) -> np.ndarray:
        if self.task != "regression":
            if any(v is None for v in preds) or any(v is None for v in truth):
                raise DataError("a prediction or label is missing (None); drop such rows first")
            wrong: np.ndarray = np.not_equal(preds, truth)
            return wrong.astype(float)
        try:
            pred_f, truth_f = preds.astype(float), truth.astype(float)
        except (TypeError, ValueError) as exc:
            raise DataError(f"regression predictions and labels must be numbers ({exc})") from None
        bad = ~(np.isfinite(pred_f) & np.isfinite(truth_f))
        if bad.any():
            where = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"row {where} of the batch has prediction {preds[where]!r} and label "
                f"{truth[where]!r}; both must be finite numbers, drop rows without them first"
            )
        errors: np.ndarray = np.abs(truth_f - pred_f)
        if self.error == "relative":
            if (truth_f == 0).any():
                where = int(np.flatnonzero(truth_f == 0)[0])
                raise DataError(
                    f"row {where} of the batch has label 0, where a relative error is "
                    "undefined; use error='absolute' for labels that can be 0"
                )
            errors = errors / np.abs(truth_f)
        return errors

    def _calibrate(self) -> list[ConceptDriftEvent]:
        mean = float(np.mean([e for e, _ in self._pending]))
        self._scale = mean if mean > 0 else 1.0  # a perfect start gives no scale: use raw units
        pending, self._pending = self._pending, []
        events: list[ConceptDriftEvent] = []
        for error, ts in pending:
            events += self._feed(error, ts)
        return events

    def _feed(self, error: float, ts: float) -> list[ConceptDriftEvent]:
        value = error / self._scale if self._scale is not None else error
        return [
            ConceptDriftEvent(detector.name, detector.n_updates - 1, ts)
            for detector in self._detectors
            if detector.update(value)
        ]

    def _window_metrics(self) -> dict[str, float | None]:
        truth, preds = list(self._labels), list(self._predictions)
        try:
            if self.task == "regression":
                return compute_metrics(
                    "regression", np.asarray(truth, dtype=float), np.asarray(preds, dtype=float)
                )
            return compute_metrics(self.task, truth, preds, classes=self.classes)
        except (TypeError, ValueError):
            # Labels of mixed kinds (scikit-learn's "Mix of label input types"): no metric
            # this time, but the detectors and the label counts go on; callers check labels
            # first (modelpilot.data.TargetValidator), so this is a last resort.
            return {}
