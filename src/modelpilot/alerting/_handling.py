"""What people do with an alert, and whether its data still arrives.

- **Acknowledge**: someone is on it. Kept on the alert until it resolves; the next alert of the
  same series starts unacknowledged.
- **Silence** for a duration: the notifications of the alert's series (rule, deployment, label
  set) are muted until the silence ends, even if the alert resolves and fires again meanwhile.
  The alert itself goes on: it is still shown, still resolves, and its actions (a rollback)
  still run; a silence mutes people's phones, not the safety net.
- **Stale**: an open alert keeps its state until its series reports again, so an alert on a
  deployment that stopped receiving traffic would stay "firing for 71 min" although nothing is
  measured any more. :class:`Freshness` says since when no value (or no request) arrived.

Acknowledgements and silences live in the database, written at once, so every worker process
of a server reads the same ones (the process that evaluates the rules keeps the alerts
themselves in memory and would otherwise overwrite them).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelpilot.alerting._actions import AuditFn
from modelpilot.alerting._alert import Alert
from modelpilot.alerting._store import AlertStore, Silence
from modelpilot.errors import ConflictError, ModelpilotError, NotFoundError
from modelpilot.monitoring import format_labels, parse_labels
from modelpilot.types import Clock

__all__ = ["AlertHandling", "Freshness", "describe_open"]

logger = logging.getLogger("modelpilot.alerting")

#: The metric that says a deployment is receiving requests at all.
TRAFFIC_METRIC = "request_rate"
#: Silences longer than this are refused: a forgotten silence hides every later alert.
MAX_SILENCE_S = 30 * 86400.0


class AlertNotFound(NotFoundError):
    def __init__(self, alert_id: int) -> None:
        super().__init__("alert", str(alert_id), hint="GET /v1/alerts lists the open ones")


@dataclass
class Freshness:
    """When values last arrived, per series and per metric, and when traffic stopped.

    ``stale_after_s`` is the silence that makes an alert stale while a metric's own rhythm is
    unknown (after a restart); once two batches of a metric were seen, three of its intervals.

    Examples
    --------
    >>> from modelpilot.monitoring import Point
    >>> fresh = Freshness(stale_after_s=300.0)
    >>> for ts in (0.0, 10.0, 20.0):
    ...     fresh.observe([Point("request_rate", "houses", 0.0 if ts else 4.0, ts)])
    >>> fresh.cadence["request_rate"], fresh.idle_since["houses"]
    (10.0, 10.0)
    >>> alert = Alert(rule="slow", deployment="houses", labels="", state="firing",
    ...               severity="warning", value=300.0, threshold=100.0, started_at=0.0,
    ...               updated_at=20.0, details={"metric": "latency_p99_ms"})
    >>> fresh.stale(alert, now=30.0) is None
    True
    >>> fresh.stale(alert, now=400.0)["reason"]
    'no requests to houses for 6.5 min: nothing new is measured'
    """

    stale_after_s: float = 300.0

    def __post_init__(self) -> None:
        self.cadence: dict[str, float] = {}
        self.idle_since: dict[str, float] = {}
        self._last_batch: dict[str, float] = {}

    def observe(self, points: Any) -> None:
        """Take a batch of the monitor's points (a ``Sequence[Point]``)."""
        newest: dict[str, float] = {}
        for point in points:
            if point.value is None:
                continue
            newest[point.name] = max(newest.get(point.name, point.ts), point.ts)
            if point.name == TRAFFIC_METRIC and point.deployment:
                if point.value > 0:
                    self.idle_since.pop(point.deployment, None)
                else:
                    self.idle_since.setdefault(point.deployment, point.ts)
        for name, ts in newest.items():
            last = self._last_batch.get(name)
            if last is not None and ts > last:
                gap = ts - last
                known = self.cadence.get(name)
                # Smoothed: one late tick must not make every alert of the metric look stale.
                self.cadence[name] = gap if known is None else 0.8 * known + 0.2 * gap
            self._last_batch[name] = ts

    def limit(self, metric: str | None) -> float:
        """Seconds without a value after which an alert on ``metric`` is stale."""
        cadence = self.cadence.get(metric or "")
        if cadence is None:
            return self.stale_after_s
        return max(3 * cadence, cadence + 10.0)

    def stale(self, alert: Alert, *, now: float) -> dict[str, Any] | None:
        """``{"since": ts, "reason": text}`` when the data behind ``alert`` stopped arriving."""
        idle = self.idle_since.get(alert.deployment)
        if idle is not None and now - idle > self.limit(TRAFFIC_METRIC):
            return {
                "since": idle,
                "reason": f"no requests to {alert.deployment} for {_minutes(now - idle)}: "
                "nothing new is measured",
            }
        metric = alert.details.get("metric")
        last = alert.updated_at or alert.started_at
        if now - last > self.limit(metric):
            return {
                "since": last,
                "reason": f"no new {metric} value for {_minutes(now - last)}: the alert keeps "
                "its last state until one arrives",
            }
        return None


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


class AlertHandling:
    """Acknowledgements and silences of a store's alerts, each written to the audit log.

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> store = AlertStore(create_database("sqlite://"))
    >>> alert = Alert(rule="slow", deployment="houses", labels="", state="firing",
    ...               severity="warning", value=180.0, threshold=100.0, started_at=10.0)
    >>> store.save(alert)
    >>> handling = AlertHandling(store, clock=lambda: 100.0)
    >>> handling.acknowledge(alert.id, actor="ann").acknowledged_by
    'ann'
    >>> silence = handling.silence(alert.id, duration_s=3600, actor="ann", reason="known")
    >>> silence.ends_at, handling.silenced(alert)
    (3700.0, True)
    """

    def __init__(
        self,
        store: AlertStore,
        *,
        audit: AuditFn | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.store = store
        self.audit = audit
        self.clock = clock

    def _open_alert(self, alert_id: int, doing: str, *, resolved_too: bool = False) -> Alert:
        alert = self.store.get(alert_id)
        if alert is None:
            raise AlertNotFound(alert_id)
        if not alert.active and not resolved_too:
            raise ConflictError(
                f"alert {alert_id} ({alert.rule}) resolved already; there is nothing to {doing}"
            )
        return alert

    def acknowledge(self, alert_id: int, *, actor: str) -> Alert:
        """Mark an open alert as taken care of by ``actor``; twice keeps the first."""
        alert = self._open_alert(alert_id, "acknowledge")
        if alert.acknowledged_at is not None:
            return alert
        now = self.clock()
        self.store.acknowledge(alert_id, actor=actor, at=now)
        alert.acknowledged_at, alert.acknowledged_by = now, actor
        self._audit(actor, "alert.acknowledge", alert, {})
        return alert

    def silence(self, alert_id: int, *, duration_s: float, actor: str, reason: str) -> Silence:
        """Mute the notifications of the alert's series for ``duration_s``; 0 lifts a silence."""
        if not 0 <= duration_s <= MAX_SILENCE_S:
            raise ModelpilotError(
                f"a silence lasts from 0 (lift it) to {MAX_SILENCE_S:g} seconds (30 days), "
                f'got {duration_s:g}; send for example {{"duration_s": 3600}}'
            )
        # Lifting a silence is allowed after the alert resolved; starting one is not.
        alert = self._open_alert(alert_id, "silence", resolved_too=duration_s == 0)
        now = self.clock()
        self.store.end_silences(alert.key, at=now)
        silence = Silence(
            rule=alert.rule,
            deployment=alert.deployment,
            labels=alert.labels,
            starts_at=now,
            ends_at=now + duration_s,
            created_by=actor,
            reason=reason,
        )
        if duration_s > 0:
            self.store.add_silence(silence)
        action = "alert.silence" if duration_s > 0 else "alert.unsilence"
        self._audit(actor, action, alert, {"until": silence.ends_at, "reason": reason})
        return silence

    def silenced(self, alert: Alert) -> bool:
        """Whether a silence mutes ``alert``'s notifications now."""
        now = self.clock()
        return any(s.covers(alert.key) for s in self.store.silences(now=now))

    def mutes(self, event: Mapping[str, Any]) -> bool:
        """Whether a silence mutes this notification (an alert's ``to_dict()`` and status)."""
        key = (event["rule"], event["deployment"], format_labels(event["labels"]))
        try:
            muted = any(s.covers(key) for s in self.store.silences(now=self.clock()))
        except Exception:  # an unreadable silence must not swallow the notification
            logger.exception("reading the alert silences failed")
            return False
        if muted:
            logger.info("alert %s %s: silenced, nobody notified", event["rule"], event["status"])
        return muted

    def _audit(self, actor: str, action: str, alert: Alert, details: dict[str, Any]) -> None:
        if self.audit is None:
            return
        self.audit(
            actor,
            action,
            alert.deployment or "(process)",
            {
                "rule": alert.rule,
                "alert": alert.id,
                "labels": parse_labels(alert.labels),
                **details,
            },
        )


def describe_open(
    alerts: list[Alert], store: AlertStore | None, freshness: Freshness, *, now: float
) -> tuple[list[dict[str, Any]], list[Silence]]:
    """Open alerts as JSON-ready data with what people did and whether their data is stale;
    and the silences running now."""
    known = [a.id for a in alerts if a.id is not None]
    acknowledged = store.acknowledgements(known) if store is not None else {}
    silences = store.silences(now=now) if store is not None else []
    out = []
    for alert in alerts:
        if alert.id in acknowledged:
            alert.acknowledged_at, alert.acknowledged_by = acknowledged[alert.id]
        silence = next((s for s in silences if s.covers(alert.key)), None)
        out.append(
            {
                **alert.to_dict(),
                "last_value_at": alert.updated_at or alert.started_at,
                "stale": freshness.stale(alert, now=now),
                "silenced_until": silence.ends_at if silence is not None else None,
                "silenced_by": silence.created_by if silence is not None else None,
            }
        )
    return out, silences
