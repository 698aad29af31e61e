"""What the live service measures and when it alerts: monitoring, drift, alert rules,
notifiers."""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from modelpilot.spec._base import Comparison, StrictModel


class DriftMonitorSettings(StrictModel):
    """Drift checks of the live service on the prediction log."""

    interval_s: float = Field(default=60.0, gt=0)
    every_n_predictions: int = Field(default=1000, ge=1)
    window_s: float = Field(default=3600.0, gt=0)
    min_rows: int = Field(default=200, ge=10)
    correction: Literal["bh", "bonferroni", "none"] = "bh"
    dataset_threshold: float = Field(default=0.5, gt=0, le=1)
    #: The share of the model's importance whose features drifted that raises the default
    #: ``drift_importance`` alert (``drift_importance_share``).
    importance_share: float = Field(default=0.3, gt=0, le=1)


class MonitoringSettings(StrictModel):
    """What the server measures and keeps over time (the dashboard's and alerts' source).

    ``enabled: false`` turns off the live metrics (``GET /metrics`` answers with an empty
    body) and the monitor (time series, drift checks): for benchmarks that measure their cost.
    """

    enabled: bool = True
    interval_s: float = Field(default=10.0, gt=0)
    retention_days: float = Field(default=30.0, gt=0)
    label_window: int = Field(default=500, ge=10)
    drift: DriftMonitorSettings = Field(default_factory=DriftMonitorSettings)


#: The time series the monitor records (``modelpilot.monitoring``): what an alert rule may watch.
ALERT_METRICS: tuple[str, ...] = (
    "request_rate",
    "error_rate",
    "client_error_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "instances_per_request",
    "missing_rate",
    "out_of_range_rate",
    "unseen_rate",
    "drift_score",
    "drift_detected",
    "labels_skipped",
    "drift_share",
    "drift_importance_share",
    "prediction_drift",
    "drift_window_rows",
    "concept_drift",
    "key_metric",
    "estimated_key_metric",
    "estimate_error",
    "label_coverage",
    "labels",
    "shadow_agreement",
    "memory_rss_bytes",
    "cpu_percent",
    "log_queue_depth",
    "log_lag_seconds",
    # Written when an edge device syncs (modelpilot.edge), labelled by device.
    "edge_predictions",
    "edge_dropped_predictions",
    "edge_drift_share",
    "edge_drift_score",
)
AlertAction = Literal["rollback_canary", "lower_automation", "retrain"]
Severity = Literal["info", "warning", "critical"]
Aggregate = Literal["mean", "max", "min", "last"]


class AlertRuleSpec(StrictModel):
    """One alert rule: a metric's aggregate over a window, compared with a threshold.

    The alert is *pending* while the condition holds and *fires* once it has held ``for_s``
    seconds. A firing alert *resolves* only when the value has been past ``clear_threshold``
    (default: ``threshold``) for ``clear_for_s`` seconds, so a metric that hovers around the
    threshold does not fire and resolve over and over. ``labels`` selects series (e.g.
    ``{feature: size}``); ``annotations`` are attached to every notification.

    Examples
    --------
    >>> rule = AlertRuleSpec(name="slow", metric="latency_p99_ms", threshold=250,
    ...                      for_s=300, clear_threshold=200)
    >>> rule.comparison, rule.aggregate, rule.clear_at
    ('>', 'mean', 200.0)
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    deployment: str | None = None
    comparison: Comparison = ">"
    threshold: float
    aggregate: Aggregate = "mean"
    window_s: float = Field(default=60.0, gt=0)
    for_s: float = Field(default=0.0, ge=0)
    severity: Severity = "warning"
    annotations: dict[str, str] = Field(default_factory=dict)
    actions: list[AlertAction] = Field(default_factory=list)
    clear_threshold: float | None = None
    clear_for_s: float = Field(default=0.0, ge=0)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in ALERT_METRICS:
            raise ValueError(
                f"unknown metric {value!r}; alert rules watch the monitor's time series: "
                f"{', '.join(ALERT_METRICS)}"
            )
        return value

    @model_validator(mode="after")
    def _check_thresholds(self) -> AlertRuleSpec:
        for field_name in ("threshold", "clear_threshold"):
            value = getattr(self, field_name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{field_name} must be a finite number, got {value}")
        if self.clear_threshold is not None:
            above = self.comparison in (">", ">=")
            if (above and self.clear_threshold > self.threshold) or (
                not above and self.clear_threshold < self.threshold
            ):
                side = "at or below" if above else "at or above"
                raise ValueError(
                    f"rule {self.name!r}: clear_threshold must be {side} the threshold for "
                    f"comparison {self.comparison!r} (the value has to come back past it to "
                    f"resolve), got clear_threshold {self.clear_threshold:g} and threshold "
                    f"{self.threshold:g}"
                )
        if len(set(self.actions)) != len(self.actions):
            raise ValueError(f"rule {self.name!r} lists an action twice: {self.actions}")
        return self

    @property
    def clear_at(self) -> float:
        """The value a firing alert must come back past to resolve."""
        return self.threshold if self.clear_threshold is None else float(self.clear_threshold)


class NotifierSpec(StrictModel):
    """Where alert notifications go: the server's log, an HTTP webhook or a command.

    ``command`` is run without a shell (a string is split like a shell would); it gets the
    alert as JSON on stdin and as ``MODELPILOT_ALERT_*`` environment variables. Failed
    deliveries are retried ``retries`` times, waiting ``backoff_s``, then twice as long, ...

    Examples
    --------
    >>> hook = NotifierSpec(kind="webhook", url="https://hooks.example.com/x", retries=5)
    >>> hook.timeout_s, hook.retries, hook.backoff_s
    (5.0, 5, 1.0)
    """

    kind: Literal["log", "webhook", "command"]
    url: str | None = None
    command: str | list[str] | None = None
    timeout_s: float = Field(default=5.0, gt=0, le=300)
    retries: int = Field(default=3, ge=0, le=20)
    backoff_s: float = Field(default=1.0, ge=0, le=300)

    @model_validator(mode="after")
    def _check_target(self) -> NotifierSpec:
        if self.kind == "webhook":
            if not self.url or not re.match(r"^https?://", self.url):
                raise ValueError(f"a webhook notifier needs url: http(s)://..., got {self.url!r}")
        elif self.url is not None:
            raise ValueError(f"url is only allowed on webhook notifiers, not {self.kind}")
        if self.kind == "command":
            if not self.command:
                raise ValueError(
                    "a command notifier needs command: (for example 'notify-send alert' "
                    "or [sh, -c, '...'])"
                )
        elif self.command is not None:
            raise ValueError(f"command is only allowed on command notifiers, not {self.kind}")
        return self


def _default_notifiers() -> list[NotifierSpec]:
    return [NotifierSpec(kind="log")]


class AlertSettings(StrictModel):
    """Alert rules, where notifications go, and how often an action may repeat.

    With ``defaults: true`` rules are generated from the key metrics and the service
    objectives (``modelpilot.alerting.default_rules``); a rule of the same name replaces one.

    Examples
    --------
    >>> settings = AlertSettings()
    >>> settings.defaults, [n.kind for n in settings.notifiers], settings.action_cooldown_s
    (True, ['log'], 1800.0)
    """

    defaults: bool = True
    rules: list[AlertRuleSpec] = Field(default_factory=list)
    notifiers: list[NotifierSpec] = Field(default_factory=_default_notifiers)
    action_cooldown_s: float = Field(default=1800.0, ge=0)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[AlertRuleSpec]) -> list[AlertRuleSpec]:
        names = [r.name for r in rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"alert rule names must be unique; repeated: {', '.join(duplicates)}")
        return rules
