"""The alert engine: the monitor's points in, alerts with states, notifications and actions out.

The monitor calls :meth:`AlertEngine.on_points` with every new batch of points (a worker thread
of the server's control loop, never the event loop). For each rule and each series it watches
(deployment + label set) the engine aggregates the points of the rule's last ``window_s`` and
moves that series' alert through its states::

    (none) --breach--> pending --held for_s--> firing
    firing --past clear_threshold for clear_for_s--> resolved
    pending --condition gone--> (forgotten: it never fired, nobody was told)

Only the transitions to firing and to resolved notify, so an alert that stays firing is
reported once, however long it lasts, and hysteresis (``clear_threshold`` and ``clear_for_s``)
keeps a metric hovering around its threshold from firing again and again. A series that stops
reporting keeps its alert's state until it reports again, unless the monitor says it ended for
good (:meth:`AlertEngine.resolve_absent`: a shadow's agreement once the shadow is over).

Why one module of ~460 lines: it is one state machine under one lock (the series windows, the
open alerts, their persistence and notifications move together in each transition); the parts
that stand alone already live beside it (rules and aggregation ``_rules.py``, actions
``_actions.py``, notifiers ``_notifiers.py``, persistence ``_store.py``, what people do with
an alert and whether its data is stale ``_handling.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelpilot.alerting._actions import (
    ROLLBACK_MIN_BREACH_S,
    ActionHandler,
    ActionRunner,
    AuditFn,
    Rollbacks,
    rollback_canary,
)
from modelpilot.alerting._alert import Alert
from modelpilot.alerting._handling import AlertHandling, Freshness, describe_open
from modelpilot.alerting._notifiers import Notifier, build_notifiers
from modelpilot.alerting._rules import aggregate, alert_rules, breaches
from modelpilot.alerting._store import AlertStore
from modelpilot.monitoring import Point, ServingMetrics, parse_labels
from modelpilot.spec import AlertRuleSpec
from modelpilot.store import LeaseLost
from modelpilot.types import Clock

if TYPE_CHECKING:
    from prometheus_client import Gauge

    from modelpilot.project import Project

__all__ = ["AlertEngine"]

logger = logging.getLogger("modelpilot.alerting")

SeriesKey = tuple[str, str, str]  # metric, deployment, labels
_RECENT = 100


class AlertEngine:
    """Evaluates alert rules on the monitor's points; keeps, notifies and acts on alerts.

    ``store`` persists the alerts (open ones are reloaded here, so a restart keeps them);
    without it they live in memory. ``audit`` is called as ``audit(actor, action, target,
    details)`` for every action (``project.registry.audit``). ``action_cooldown_s`` is the
    least time between two runs of one action on one deployment. ``stale_after_s``: how long
    an open alert may go without a new value before it is shown as stale, while the rhythm of
    its metric is not known yet (``_handling.Freshness``).

    Examples
    --------
    >>> from modelpilot.monitoring import Point
    >>> now = [0.0]
    >>> rule = AlertRuleSpec(name="slow", metric="latency_p99_ms", threshold=100, for_s=60)
    >>> engine = AlertEngine([rule], clock=lambda: now[0])
    >>> engine.evaluate([Point("latency_p99_ms", "houses", 250.0, ts=0.0)])
    []
    >>> [a.state for a in engine.active()]
    ['pending']
    >>> now[0] = 60.0
    >>> fired = engine.evaluate([Point("latency_p99_ms", "houses", 240.0, ts=60.0)])
    >>> [(a.rule, a.deployment, a.state, a.value) for a in fired]
    [('slow', 'houses', 'firing', 240.0)]
    """

    def __init__(
        self,
        rules: Sequence[AlertRuleSpec],
        *,
        store: AlertStore | None = None,
        notifiers: Sequence[Notifier] = (),
        audit: AuditFn | None = None,
        clock: Clock = time.time,
        action_cooldown_s: float = 1800.0,
        firing_gauge: Gauge | None = None,
        project: str | None = None,
        stale_after_s: float = 300.0,
    ) -> None:
        names = [rule.name for rule in rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"alert rule names must be unique; repeated: {', '.join(duplicates)}")
        self.rules = {rule.name: rule for rule in rules}
        self.store = store
        self.notifiers = list(notifiers)
        self.audit = audit
        self.clock = clock
        self.action_cooldown_s = action_cooldown_s
        self.firing_gauge = firing_gauge
        self.project = project
        self._lock = threading.RLock()
        self._open: dict[tuple[str, str, str], Alert] = {}
        self._resolved: deque[Alert] = deque(maxlen=_RECENT)
        self._series: dict[SeriesKey, deque[tuple[float, float]]] = {}
        self._windows: dict[str, float] = {}
        for rule in rules:
            self._windows[rule.metric] = max(self._windows.get(rule.metric, 0.0), rule.window_s)
        self._runner = ActionRunner(cooldown_s=action_cooldown_s, audit=audit, clock=clock)
        self.freshness = Freshness(stale_after_s)
        self.handling = (
            AlertHandling(store, audit=audit, clock=clock) if store is not None else None
        )
        self._reload()
        self._update_gauge()

    @classmethod
    def from_project(
        cls,
        project: Project,
        *,
        controller: Rollbacks | None = None,
        metrics: ServingMetrics | None = None,
        clock: Clock = time.time,
    ) -> AlertEngine:
        """The engine a server runs: the project's rules, database, notifiers and audit log,
        ``rollback_canary`` wired to ``controller`` when one is given, and the
        ``modelpilot_alerts_firing`` gauge of ``metrics`` (a ``ServingMetrics``)."""
        settings = project.spec.alerts
        monitoring = project.spec.monitoring
        engine = cls(
            alert_rules(project.spec),
            store=AlertStore(project.engine),
            notifiers=build_notifiers(settings.notifiers, environ=project.environ),
            audit=project.registry.audit,
            clock=clock,
            action_cooldown_s=settings.action_cooldown_s,
            firing_gauge=metrics.alerts_firing if metrics is not None else None,
            project=project.spec.project,
            stale_after_s=3 * max(monitoring.interval_s, monitoring.drift.interval_s) + 30.0,
        )
        if controller is not None:
            engine.register_action(
                "rollback_canary",
                rollback_canary(controller),
                min_breach_s=ROLLBACK_MIN_BREACH_S,
            )
        return engine

    # ---- actions --------------------------------------------------------------------------
    def register_action(
        self, name: str, handler: ActionHandler, *, min_breach_s: float = 0.0
    ) -> None:
        """Make ``name`` (as listed in a rule's ``actions``) run ``handler(alert)``.

        It runs once per firing alert, when the alert's condition has held for at least
        ``max(rule.for_s, min_breach_s)`` and the action last ran on that deployment at least
        ``action_cooldown_s`` ago (otherwise it waits, while the alert keeps firing).
        """
        self._runner.register(name, handler, min_breach_s=min_breach_s)

    @property
    def actions(self) -> list[str]:
        """The names of the registered actions."""
        return self._runner.names

    # ---- reading --------------------------------------------------------------------------
    def active(self) -> list[Alert]:
        """Pending and firing alerts (copies), firing first, then oldest first."""
        with self._lock:
            alerts = [dataclasses.replace(a, details=_copy(a.details)) for a in self._open.values()]
        return sorted(alerts, key=lambda a: (a.state != "firing", a.started_at))

    def recent(self, *, limit: int = 50) -> list[Alert]:
        """Resolved alerts, the most recently resolved first."""
        if self.store is not None:
            return self.store.resolved(limit=limit)
        with self._lock:
            return list(reversed(self._resolved))[:limit]

    def snapshot(self, *, limit: int = 50) -> dict[str, list[dict[str, Any]]]:
        """``{"active": [...], "recent": [...], "silences": [...]}`` as JSON-ready data
        (``GET /v1/alerts``); an active alert says who acknowledged it, until when it is
        silenced and whether its data went stale."""
        active, silences = describe_open(
            self.active(), self.store, self.freshness, now=self.clock()
        )
        return {
            "active": active,
            "recent": [a.to_dict() for a in self.recent(limit=limit)],
            "silences": [s.to_dict() for s in silences],
        }

    # ---- evaluation -----------------------------------------------------------------------
    def on_points(self, points: Sequence[Point]) -> None:
        """The monitor's listener: evaluate the rules on a new batch of points."""
        self.evaluate(points)

    def evaluate(self, points: Sequence[Point]) -> list[Alert]:
        """Take new points, move alerts through their states, notify, run due actions.

        Returns the alerts that fired or resolved on these points (copies).
        """
        with self._lock:
            now = self.clock()
            self.freshness.observe(points)
            touched = self._ingest(points, now)
            changed: list[Alert] = []
            for key in sorted(touched):
                for rule in self.rules.values():
                    if rule.metric == key[0] and _matches(rule, key):
                        values = [v for ts, v in self._series[key] if ts > now - rule.window_s]
                        if values:
                            value = aggregate(values, rule.aggregate)
                            changed += self._step(rule, key, value, now)
            due = []
            for alert in self._open.values():
                rule = self.rules[alert.rule]
                if alert.state == "firing" and rule.actions:
                    ready, changed_details = self._runner.due(alert, rule, now)
                    due += ready
                    if changed_details:
                        self._save(alert)
            self._update_gauge()
            events = [self._event(alert) for alert in changed]
        for event in events:
            self._notify(event)
        for item in due:
            # Outside the lock: a rollback may take a while, GET /v1/alerts must not wait.
            record = self._runner.run(item)
            with self._lock:
                item.alert.details.setdefault("actions", {})[item.name] = record
                self._save(item.alert)
            self._runner.audit(item.alert, item.name, record, item.reason)
        return [dataclasses.replace(a, details=_copy(a.details)) for a in changed]

    def _ingest(self, points: Sequence[Point], now: float) -> set[SeriesKey]:
        touched: set[SeriesKey] = set()
        for point in points:
            if point.name not in self._windows or point.value is None:
                continue
            if not math.isfinite(point.value):
                continue
            key = (point.name, point.deployment, point.labels)
            self._series.setdefault(key, deque()).append((point.ts, float(point.value)))
            touched.add(key)
        for key in list(self._series):
            series = self._series[key]
            horizon = now - self._windows[key[0]]
            while series and series[0][0] <= horizon:
                series.popleft()
            if not series:
                del self._series[key]
        return touched & set(self._series)

    def _step(self, rule: AlertRuleSpec, key: SeriesKey, value: float, now: float) -> list[Alert]:
        """One evaluation of one rule on one series; returns the alert if it fired/resolved."""
        alert_key = (rule.name, key[1], key[2])
        alert = self._open.get(alert_key)
        breach = breaches(value, rule.comparison, rule.threshold)
        if alert is None:
            if not breach:
                return []
            alert = Alert(
                rule=rule.name,
                deployment=key[1],
                labels=key[2],
                state="pending",
                severity=rule.severity,
                value=value,
                threshold=rule.threshold,
                started_at=now,
                details={
                    "metric": rule.metric,
                    "comparison": rule.comparison,
                    "clear_threshold": rule.clear_at,
                    "annotations": dict(rule.annotations),
                    "actions": {},
                },
            )
            self._open[alert_key] = alert
        alert.value = value
        alert.updated_at = now
        if alert.state == "pending":
            if not breach:
                self._forget(alert)
                return []
            if now - alert.started_at >= rule.for_s:
                alert.state = "firing"
                alert.fired_at = now
                self._save(alert)
                return [alert]
            self._save(alert)
            return []
        # Firing: resolve only once the value has stayed past the clear threshold long enough.
        if breaches(value, rule.comparison, rule.clear_at):
            alert.details.pop("clearing_since", None)
        else:
            since = float(alert.details.setdefault("clearing_since", now))
            if now - since >= rule.clear_for_s:
                self._resolve(alert, now)
                return [alert]
        self._save(alert)
        return []

    def _forget(self, alert: Alert) -> None:
        """A pending alert whose condition is gone: it never fired, nobody was told."""
        del self._open[alert.key]
        if self.store is not None:
            self.store.delete(alert)

    def _resolve(self, alert: Alert, now: float, reason: str | None = None) -> None:
        alert.state = "resolved"
        alert.resolved_at = alert.updated_at = now
        alert.details.pop("clearing_since", None)
        if reason is not None:
            alert.details["resolved_reason"] = reason
        del self._open[alert.key]
        self._resolved.append(alert)
        self._save(alert)

    def resolve_absent(
        self, metric: str, deployment: str, reason: str, *, keep: str | None = None
    ) -> list[Alert]:
        """Close the open alerts on ``metric`` of ``deployment``: their series ended for good.

        For a series that stops because what it measures is over (the monitor calls this for
        ``shadow_agreement`` when the deployment's shadow phase has ended), no point will
        evaluate its alerts again. A firing one resolves now, with ``reason`` as
        ``details["resolved_reason"]``, saved and notified as any resolution; a pending one is
        forgotten, as when its condition goes away. The series labelled ``keep`` (the shadow
        running now) is left alone. The others' value windows go too: a later series with
        the same labels starts afresh. Returns the alerts that resolved (copies).

        Examples
        --------
        >>> from modelpilot.monitoring import Point
        >>> rule = AlertRuleSpec(name="disagrees", metric="shadow_agreement", comparison="<",
        ...                      threshold=0.9)
        >>> engine = AlertEngine([rule], clock=lambda: 0.0)
        >>> fired = engine.evaluate([Point("shadow_agreement", "houses", 0.5, 0.0, "version=2")])
        >>> engine.resolve_absent("shadow_agreement", "houses", "no shadow", keep="version=2")
        []
        >>> (gone,) = engine.resolve_absent("shadow_agreement", "houses", "no shadow")
        >>> gone.state, gone.details["resolved_reason"], engine.active()
        ('resolved', 'no shadow', [])
        """
        with self._lock:
            now = self.clock()
            for key in [k for k in self._series if k[:2] == (metric, deployment) and k[2] != keep]:
                del self._series[key]
            changed: list[Alert] = []
            for alert in list(self._open.values()):
                ended = alert.details.get("metric") == metric and alert.labels != keep
                if not ended or alert.deployment != deployment:
                    continue
                if alert.state == "pending":
                    self._forget(alert)
                else:
                    self._resolve(alert, now, reason)
                    changed.append(alert)
            self._update_gauge()
            events = [self._event(alert) for alert in changed]
        for event in events:
            self._notify(event)
        return [dataclasses.replace(a, details=_copy(a.details)) for a in changed]

    # ---- persistence, notifications, gauge ------------------------------------------------
    def reload(self) -> None:
        """Replace the alerts, action cooldowns and firing gauge in memory by the database's.

        With several worker processes one of them evaluates (the holder of the ``monitor``
        lease, see ``modelpilot.monitoring.MonitorLeader``); the others call this on every
        tick to follow it, and the next holder calls it once more when it takes over. The
        state that matters for notifications lives in the database (``store``): every step
        of an alert is saved as it happens. So an alert the previous holder fired is firing
        here too and is not notified again; it is notified once more only when it resolves.
        The value windows of the rules are forgotten: they hold points this process has
        stopped seeing, and a firing alert needs ``clear_for_s`` of fresh points to resolve.
        Without a store there is nothing to follow and nothing changes.
        """
        if self.store is None:
            return
        with self._lock:
            self._open.clear()
            self._series.clear()
            self._reload()
            self._update_gauge()

    def _reload(self) -> None:
        if self.store is None:
            return
        now = self.clock()
        for alert in self.store.open():
            if alert.rule in self.rules:
                self._open[alert.key] = alert
                continue
            # Its rule left the project file: nothing will ever evaluate it again.
            alert.state = "resolved"
            alert.resolved_at = alert.updated_at = now
            alert.details["resolved_reason"] = "its rule is no longer in the project file"
            self.store.save(alert)
        # Cooldowns survive a restart too: an action that just ran does not run again at once.
        since = now - self.action_cooldown_s
        self._runner.restore(self.store.resolved(limit=1000, since=since))
        self._runner.restore(self._open.values())

    def _save(self, alert: Alert) -> None:
        if self.store is None:
            return
        try:
            self.store.save(alert)
        except LeaseLost:
            # Another replica leads the monitor now: this one must neither notify nor act
            # on what it did not save. Its next tick follows the database's alerts.
            raise
        except Exception:  # keep evaluating in memory; the next save may succeed
            logger.exception("saving alert %s failed", alert.rule)

    def _event(self, alert: Alert) -> dict[str, Any]:
        event = alert.to_dict()
        event["status"] = alert.state
        if "resolved_reason" in alert.details:
            event["resolved_reason"] = alert.details["resolved_reason"]
        if self.project is not None:
            event["project"] = self.project
        return event

    def _notify(self, event: Mapping[str, Any]) -> None:
        if self.handling is not None and self.notifiers and self.handling.mutes(event):
            return
        for notifier in self.notifiers:
            try:
                notifier.notify(event)
            except Exception:  # one broken notifier must not silence the others
                logger.exception("notifier %r failed", notifier)

    def _update_gauge(self) -> None:
        if self.firing_gauge is None:
            return
        counts: dict[tuple[str, str], int] = {
            (rule.name, rule.severity): 0 for rule in self.rules.values()
        }
        for alert in self._open.values():
            if alert.state == "firing":
                key = (alert.rule, alert.severity)
                counts[key] = counts.get(key, 0) + 1
        for (rule_name, severity), count in counts.items():
            self.firing_gauge.labels(rule_name, severity).set(count)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver queued notifications (within ``timeout`` each) and stop their threads."""
        for notifier in self.notifiers:
            try:
                notifier.close(timeout)
            except Exception:
                logger.exception("closing notifier %r failed", notifier)


def _matches(rule: AlertRuleSpec, key: SeriesKey) -> bool:
    if rule.deployment is not None and rule.deployment != key[1]:
        return False
    if not rule.labels:
        return True
    labels = parse_labels(key[2])
    return all(labels.get(k) == v for k, v in rule.labels.items())


def _copy(details: dict[str, Any]) -> dict[str, Any]:
    copied = dict(details)
    for key in ("actions", "annotations"):
        if isinstance(copied.get(key), dict):
            copied[key] = {k: dict(v) if isinstance(v, dict) else v for k, v in copied[key].items()}
    return copied
