"""Actions on firing alerts: registered handlers, minimum evidence, the cooldown, actions that
are not available yet, failures, and the audit log entry each of them leaves."""

from __future__ import annotations

from typing import Any

import pytest
from alerting_helpers import DEPLOYMENT, feed

from fake_clock import FakeClock
from modelpilot.alerting import Alert, AlertEngine, AlertStore
from modelpilot.project import Project
from modelpilot.spec import AlertRuleSpec

COOLDOWN_S = 600.0


def rule(*actions: str, for_s: float = 0.0) -> AlertRuleSpec:
    return AlertRuleSpec.model_validate(
        {
            "name": "errors",
            "metric": "error_rate",
            "threshold": 0.05,
            "window_s": 10.0,
            "for_s": for_s,
            "severity": "critical",
            "actions": list(actions),
        }
    )


class FakeRetrain:
    """A stand-in for the later issue's retraining: counts calls, says what it did."""

    def __init__(self) -> None:
        self.calls: list[Alert] = []

    def __call__(self, alert: Alert) -> str:
        self.calls.append(alert)
        return f"retraining started for {alert.deployment} (call {len(self.calls)})"


def audited(project: Project, action: str) -> list[dict[str, Any]]:
    """The audit entries of one action, oldest first."""
    entries = project.registry.audit_entries(limit=500)
    return [e for e in reversed(entries) if e["action"] == action]


def open_engine(project: Project, clock: FakeClock, *rules: AlertRuleSpec) -> AlertEngine:
    return AlertEngine(
        list(rules),
        store=AlertStore(project.engine),
        audit=project.registry.audit,
        clock=clock,
        action_cooldown_s=COOLDOWN_S,
    )


def test_a_registered_action_runs_once_per_firing_alert_and_is_audited(
    project: Project, clock: FakeClock
) -> None:
    engine = open_engine(project, clock, rule("retrain"))
    retrain = FakeRetrain()
    engine.register_action("retrain", retrain)
    assert engine.actions == ["retrain"]
    feed(engine, clock, "error_rate", [0.2] * 10)  # firing for 100 s
    assert len(retrain.calls) == 1
    (alert,) = engine.active()
    record = alert.details["actions"]["retrain"]
    assert (record["status"], record["detail"]) == (
        "done",
        "retraining started for houses (call 1)",
    )
    (entry,) = audited(project, "alert.retrain")
    assert (entry["actor"], entry["target"]) == ("alerts", DEPLOYMENT)
    details = entry["details"]
    assert (details["rule"], details["value"], details["threshold"], details["status"]) == (
        "errors",
        0.2,
        0.05,
        "done",
    )
    assert details["reason"] == "alert errors firing: error_rate 0.2 > 0.05"
    assert details["alert"] == alert.id


def test_two_firings_within_the_cooldown_trigger_the_action_once(
    project: Project, clock: FakeClock
) -> None:
    engine = open_engine(project, clock, rule("retrain"))
    retrain = FakeRetrain()
    engine.register_action("retrain", retrain)
    feed(engine, clock, "error_rate", [0.2, 0.0])  # fires, acts, resolves
    feed(engine, clock, "error_rate", [0.3, 0.3, 0.3])  # fires again 20 s later
    assert len(retrain.calls) == 1
    (second,) = engine.active()
    record = second.details["actions"]["retrain"]
    assert record["status"] == "cooldown"
    assert "alerts.action_cooldown_s=600" in record["detail"]
    statuses = [e["details"]["status"] for e in audited(project, "alert.retrain")]
    assert statuses == ["done", "cooldown"]  # the wait is audited once, not per evaluation
    # Still firing when the cooldown is over: now it runs, once.
    clock.advance(COOLDOWN_S)
    feed(engine, clock, "error_rate", [0.3, 0.3])
    assert len(retrain.calls) == 2
    assert [e["details"]["status"] for e in audited(project, "alert.retrain")] == [
        "done",
        "cooldown",
        "done",
    ]


def test_the_cooldown_is_per_deployment(project: Project, clock: FakeClock) -> None:
    engine = open_engine(project, clock, rule("retrain"))
    retrain = FakeRetrain()
    engine.register_action("retrain", retrain)
    feed(engine, clock, "error_rate", [0.2], deployment="houses")
    feed(engine, clock, "error_rate", [0.2], deployment="flats")
    assert [a.deployment for a in retrain.calls] == ["houses", "flats"]


def test_an_action_waits_for_its_minimum_evidence(project: Project, clock: FakeClock) -> None:
    engine = open_engine(project, clock, rule("retrain"))
    retrain = FakeRetrain()
    engine.register_action("retrain", retrain, min_breach_s=120.0)
    started = clock() + 10
    feed(engine, clock, "error_rate", [0.2] * 12)  # the condition has held 110 s
    assert retrain.calls == []
    assert engine.active()[0].details["actions"]["retrain"]["status"] == "waiting"
    assert audited(project, "alert.retrain") == []
    feed(engine, clock, "error_rate", [0.2])
    assert len(retrain.calls) == 1 and clock() - started == 120


def test_a_rules_for_s_is_evidence_too(project: Project, clock: FakeClock) -> None:
    engine = open_engine(project, clock, rule("retrain", for_s=60.0))
    retrain = FakeRetrain()
    engine.register_action("retrain", retrain)
    feed(engine, clock, "error_rate", [0.2] * 6)
    assert retrain.calls == []  # pending: 50 s of 60
    feed(engine, clock, "error_rate", [0.2])
    assert len(retrain.calls) == 1


def test_an_action_without_a_handler_is_reported_not_available_never_ignored(
    project: Project, clock: FakeClock
) -> None:
    engine = open_engine(project, clock, rule("lower_automation", "retrain"))
    retrain = FakeRetrain()
    engine.register_action("retrain", retrain)
    feed(engine, clock, "error_rate", [0.2] * 5)
    (alert,) = engine.active()
    record = alert.details["actions"]["lower_automation"]
    assert record["status"] == "not_available"
    assert "no handler is registered for 'lower_automation'" in record["detail"]
    assert "not available yet" in record["detail"]
    (entry,) = audited(project, "alert.lower_automation")  # once, not per evaluation
    assert (entry["actor"], entry["details"]["status"]) == ("alerts", "not_available")
    assert len(retrain.calls) == 1  # the other action ran
    # What `modelpilot alerts` and GET /v1/alerts show comes from the database.
    (stored,) = AlertStore(project.engine).open()
    assert stored.to_dict()["actions"]["lower_automation"]["status"] == "not_available"


def test_a_failing_action_is_recorded_and_audited_and_the_engine_goes_on(
    project: Project, clock: FakeClock
) -> None:
    def broken(alert: Alert) -> str:
        raise ConnectionError("the training cluster is unreachable")

    engine = open_engine(project, clock, rule("retrain"))
    engine.register_action("retrain", broken)
    feed(engine, clock, "error_rate", [0.2, 0.2])
    (alert,) = engine.active()
    assert alert.details["actions"]["retrain"] == {
        "status": "failed",
        "at": alert.fired_at,
        "detail": "ConnectionError: the training cluster is unreachable",
    }
    (entry,) = audited(project, "alert.retrain")
    assert entry["details"]["status"] == "failed"
    assert feed(engine, clock, "error_rate", [0.0])[0].state == "resolved"


def test_a_cooldown_survives_a_restart(project: Project, clock: FakeClock) -> None:
    before = open_engine(project, clock, rule("retrain"))
    first = FakeRetrain()
    before.register_action("retrain", first)
    feed(before, clock, "error_rate", [0.2, 0.0])
    after = open_engine(project, clock, rule("retrain"))
    second = FakeRetrain()
    after.register_action("retrain", second)
    feed(after, clock, "error_rate", [0.2])
    assert (len(first.calls), len(second.calls)) == (1, 0)


def test_register_action_checks_its_arguments() -> None:
    engine = AlertEngine([rule("retrain")])
    with pytest.raises(TypeError, match="the handler of action 'retrain' must be callable"):
        engine.register_action("retrain", "not a function")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_breach_s must be >= 0, got -1"):
        engine.register_action("retrain", FakeRetrain(), min_breach_s=-1)
