"""What a concept-drift monitor reports: detector events, each detector's state, the key
metrics over the last labels against their targets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modelpilot.spec import Task

__all__ = ["ConceptDriftEvent", "ConceptDriftStatus", "DetectorStatus", "KeyMetricStatus"]


@dataclass(frozen=True, slots=True)
class ConceptDriftEvent:
    """One detection: which detector, at which label (0-based, in arrival order), and when."""

    detector: str
    index: int
    ts: float


@dataclass(frozen=True, slots=True)
class DetectorStatus:
    """One detector in a snapshot; ``drift_detected`` means a detection in the current window."""

    name: str
    drift_detected: bool
    n_detections: int
    last_detection_index: int | None
    last_detection_ts: float | None


@dataclass(frozen=True, slots=True)
class KeyMetricStatus:
    """A key metric over the window; ``passed`` is None when it cannot be judged yet."""

    metric: str
    op: str
    target: float
    value: float | None
    passed: bool | None


@dataclass(frozen=True, slots=True)
class ConceptDriftStatus:
    """A snapshot of a :class:`ConceptDriftMonitor`."""

    task: Task
    ts: float
    n_labels: int
    n_window: int
    error_scale: float | None
    detectors: tuple[DetectorStatus, ...]
    metrics: Mapping[str, float | None]
    key_metrics: tuple[KeyMetricStatus, ...]

    @property
    def drift_detected(self) -> bool:
        """Whether any detector detected a drift within the window."""
        return any(d.drift_detected for d in self.detectors)

    @property
    def failed(self) -> list[KeyMetricStatus]:
        """The key metrics that miss their target over the window."""
        return [k for k in self.key_metrics if k.passed is False]
