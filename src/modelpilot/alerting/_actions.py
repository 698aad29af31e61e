"""What an alert may do besides telling someone: the built-in ``rollback_canary`` action.

An action is a callable taking the firing :class:`~modelpilot.alerting.Alert` and returning a
one-line account of what it did (kept in the alert's details and the audit log); raising means
it failed. ``AlertEngine.register_action`` adds one under a name the rules can list.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from modelpilot.alerting._alert import Alert
from modelpilot.monitoring import parse_labels
from modelpilot.rollout import RolloutRecord, strategy_of
from modelpilot.spec import AlertRuleSpec
from modelpilot.types import Clock

__all__ = ["ActionHandler", "rollback_canary"]

logger = logging.getLogger("modelpilot.alerting")

ActionHandler = Callable[[Alert], str]
AuditFn = Callable[[str, str, str, Mapping[str, Any]], None]
ACTOR = "alerts"
#: A rollback needs at least this much evidence, even when a rule fires on a single point.
ROLLBACK_MIN_BREACH_S = 60.0


class ActiveRollouts(Protocol):
    def active(self, name: str) -> RolloutRecord | None: ...


class Rollbacks(Protocol):
    """What ``rollback_canary`` uses of the rollout controller
    (``modelpilot.rollout.RolloutController``)."""

    @property
    def store(self) -> ActiveRollouts: ...

    def rollback(self, name: str, *, actor: str, reason: str = "") -> dict[str, Any]: ...


def rollback_canary(controller: Rollbacks) -> ActionHandler:
    """The ``rollback_canary`` action: roll back the deployment's canary, shadow (or
    shadow-canary) or blue-green rollout through the rollout controller
    (``controller.rollback``), as actor ``alerts``. A shadow is stopped: the candidate gets no
    more mirrored requests and the primary, which served all along, stays.

    A deployment with no rollout in progress (or a rolling update, which this action leaves
    alone) is not touched; the returned text says so.

    Examples
    --------
    >>> class Idle:  # a stand-in for a RolloutController with nothing in progress
    ...     class store:
    ...         @staticmethod
    ...         def active(name): return None
    >>> alert = Alert(rule="errors", deployment="houses", labels="", state="firing",
    ...               severity="critical", value=0.2, threshold=0.01, started_at=0.0)
    >>> rollback_canary(Idle())(alert)
    'houses has no canary, shadow or blue-green rollout in progress; nothing to roll back'
    """

    def act(alert: Alert) -> str:
        name = alert.deployment
        active = controller.store.active(name)
        # The strategies with a candidate beside the primary (a canary, a shadow, a
        # blue-green switch in its window) say so; a rolling update is left alone.
        if active is None or not strategy_of(active).alert_rollback:
            what = "" if active is None else f" ({active.strategy} rollouts are left alone)"
            return (
                f"{name} has no canary, shadow or blue-green rollout in progress; "
                f"nothing to roll back{what}"
            )
        status = controller.rollback(name, actor=ACTOR, reason=_reason(alert))
        return (
            f"rolled back the {active.strategy} of v{active.candidate_version} (rollout "
            f"{active.id}); {name} serves v{status.get('version')}"
        )

    return act


@dataclass(frozen=True)
class _Action:
    handler: ActionHandler
    min_breach_s: float


@dataclass(frozen=True)
class DueAction:
    """An action to run now for a firing alert (outside the engine's lock)."""

    alert: Alert
    name: str
    action: _Action
    reason: str


class ActionRunner:
    """The engine's bookkeeping of actions: handlers, evidence, cooldowns and the audit log.

    Each alert's ``details["actions"][name]`` records the outcome: ``waiting`` (not enough
    evidence yet), ``cooldown``, ``running``, ``done``, ``failed`` or ``not_available``.
    """

    def __init__(self, *, cooldown_s: float, audit: AuditFn | None, clock: Clock) -> None:
        self.cooldown_s = cooldown_s
        self.audit_fn = audit
        self.clock = clock
        self._actions: dict[str, _Action] = {}
        self._last: dict[tuple[str, str], float] = {}  # (action, deployment) -> last run

    def register(self, name: str, handler: ActionHandler, *, min_breach_s: float) -> None:
        if not callable(handler):
            raise TypeError(f"the handler of action {name!r} must be callable, got {handler!r}")
        if min_breach_s < 0:
            raise ValueError(f"min_breach_s must be >= 0, got {min_breach_s}")
        self._actions[name] = _Action(handler, min_breach_s)

    @property
    def names(self) -> list[str]:
        return sorted(self._actions)

    def restore(self, alerts: Iterable[Alert]) -> None:
        """Remember when actions last ran, from alerts saved before a restart."""
        for alert in alerts:
            for name, record in alert.details.get("actions", {}).items():
                if record.get("status") in ("done", "failed", "running"):
                    key = (name, alert.deployment)
                    self._last[key] = max(self._last.get(key, float("-inf")), record["at"])

    def due(self, alert: Alert, rule: AlertRuleSpec, now: float) -> tuple[list[DueAction], bool]:
        """The actions of a firing alert to run now, and whether its details changed."""
        records = alert.details.setdefault("actions", {})
        reason = _reason(alert)
        due: list[DueAction] = []
        changed = False
        for name in rule.actions:
            record = records.get(name)
            if record is not None and record["status"] not in ("waiting", "cooldown"):
                continue  # done, failed or not available: once per alert
            action = self._actions.get(name)
            if action is None:
                records[name] = {
                    "status": "not_available",
                    "at": now,
                    "detail": f"no handler is registered for {name!r}: the action is not "
                    "available yet, nothing was done",
                }
                changed = True
                self.audit(alert, name, records[name], reason)
                continue
            evidence = max(rule.for_s, action.min_breach_s)
            if now - alert.started_at < evidence:
                records[name] = {
                    "status": "waiting",
                    "at": now,
                    "detail": f"runs once the condition has held {evidence:g}s",
                }
                changed = True
                continue
            last = self._last.get((name, alert.deployment))
            if last is not None and now - last < self.cooldown_s:
                first = record is None or record["status"] != "cooldown"
                records[name] = {
                    "status": "cooldown",
                    "at": now,
                    "detail": f"{name} ran on {alert.deployment or '(process)'} "
                    f"{now - last:.0f}s ago; the cooldown "
                    f"(alerts.action_cooldown_s={self.cooldown_s:g}) ends in "
                    f"{last + self.cooldown_s - now:.0f}s",
                }
                changed = True
                if first:  # audited once, not at every evaluation
                    self.audit(alert, name, records[name], reason)
                continue
            self._last[(name, alert.deployment)] = now
            records[name] = {"status": "running", "at": now, "detail": ""}
            changed = True
            due.append(DueAction(alert, name, action, reason))
        return due, changed

    def run(self, item: DueAction) -> dict[str, Any]:
        """Run one action; its outcome record (``done`` or ``failed``)."""
        try:
            detail = str(item.action.handler(item.alert))
            return {"status": "done", "at": self.clock(), "detail": detail}
        except Exception as exc:
            logger.exception("alert action %s failed", item.name)
            return {
                "status": "failed",
                "at": self.clock(),
                "detail": f"{type(exc).__name__}: {exc}",
            }

    def audit(self, alert: Alert, name: str, record: Mapping[str, Any], reason: str) -> None:
        logger.warning(
            "alert %s: action %s %s: %s", alert.rule, name, record["status"], record["detail"]
        )
        if self.audit_fn is None:
            return
        details = {
            "rule": alert.rule,
            "alert": alert.id,
            "labels": parse_labels(alert.labels),
            "value": alert.value,
            "threshold": alert.threshold,
            "reason": reason,
            "status": record["status"],
            "detail": record["detail"],
        }
        try:
            self.audit_fn(ACTOR, f"alert.{name}", alert.deployment or "(process)", details)
        except Exception:  # the audit log must not stop the alerts
            logger.exception("writing the audit entry of action %s failed", name)


def _reason(alert: Alert) -> str:
    value = "n/a" if alert.value is None else f"{alert.value:.4g}"
    return (
        f"alert {alert.rule} firing: {alert.details.get('metric')} {value} "
        f"{alert.details.get('comparison')} {alert.threshold:g}"
    )
