"""An alert: one rule's condition on one series, and where it is in its life."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from modelpilot.monitoring import parse_labels

__all__ = ["Alert", "AlertState"]

AlertState = Literal["pending", "firing", "resolved"]


@dataclass
class Alert:
    """One alert per (rule, deployment, label set): pending, then firing, then resolved.

    ``value`` is the rule's aggregate at the last evaluation; ``details`` holds the rule's
    metric and comparison, its annotations, the outcome of each action and the hysteresis timer.

    Examples
    --------
    >>> alert = Alert(rule="slow", deployment="houses", labels="", state="firing",
    ...               severity="warning", value=180.0, threshold=100.0, started_at=0.0,
    ...               fired_at=300.0)
    >>> alert.to_dict()["state"], alert.key
    ('firing', ('slow', 'houses', ''))
    """

    rule: str
    deployment: str
    labels: str
    state: AlertState
    severity: str
    value: float | None
    threshold: float
    started_at: float
    fired_at: float | None = None
    resolved_at: float | None = None
    updated_at: float = 0.0
    id: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes an alert unique while it is open: rule, deployment, label set."""
        return (self.rule, self.deployment, self.labels)

    @property
    def active(self) -> bool:
        return self.state in ("pending", "firing")

    def to_dict(self) -> dict[str, Any]:
        """The alert as JSON-ready data (the API's, the CLI's and the notifications' shape)."""
        details = self.details
        return {
            "id": self.id,
            "rule": self.rule,
            "deployment": self.deployment,
            "labels": parse_labels(self.labels),
            "state": self.state,
            "severity": self.severity,
            "metric": details.get("metric"),
            "comparison": details.get("comparison"),
            "value": self.value,
            "threshold": self.threshold,
            "clear_threshold": details.get("clear_threshold", self.threshold),
            "started_at": self.started_at,
            "fired_at": self.fired_at,
            "resolved_at": self.resolved_at,
            "annotations": dict(details.get("annotations", {})),
            "actions": {k: dict(v) for k, v in details.get("actions", {}).items()},
            "acknowledged_at": self.acknowledged_at,
            "acknowledged_by": self.acknowledged_by,
        }
