"""Alert rules on ``shadow_agreement``: the real rollout controller, monitor and alert engine on
the project's SQLite database, the shadow's traffic written to the prediction log, a fake clock.

Each interval the controller analyses the shadow (``rollout.analysis_interval_s``), the monitor
turns its figure into a point (``monitoring.interval_s``) and the engine, the monitor's
listener, evaluates the rules on it: the server's loop, one tick at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alerting_helpers import DEPLOYMENT, RecordingNotifier, feed, log_shadow_pairs, update_project

from fake_clock import FakeClock
from modelpilot.alerting import Alert, AlertEngine, AlertStore
from modelpilot.inference import DeploymentManager
from modelpilot.monitoring import Monitor, Point, ServingMetrics
from modelpilot.project import Project
from modelpilot.rollout import RolloutController
from modelpilot.spec import AlertRuleSpec

INTERVAL = 10.0  # both the controller's analysis and the monitor's snapshot
MIN_COMPARED = 30  # the agreement gate's min_samples
RULE = {
    "name": "shadow_disagrees",
    "metric": "shadow_agreement",
    "comparison": "<",
    "threshold": 0.9,
    "aggregate": "last",
    "window_s": 60,
    "severity": "critical",
}


@dataclass
class ShadowHarness:
    """The server's control loop over the two-version project: v1 serves, v2 is the
    candidate."""

    project: Project
    controller: RolloutController
    monitor: Monitor
    engine: AlertEngine
    metrics: ServingMetrics
    clock: FakeClock
    notifier: RecordingNotifier

    def tick(self) -> list[Point]:
        """One interval later: the controller analyses, the monitor records, the engine
        evaluates. Returns the ``shadow_agreement`` points of this tick."""
        self.clock.advance(INTERVAL)
        self.controller.tick()
        return [p for p in self.monitor.tick() if p.name == "shadow_agreement"]

    def pairs(self, **counts: int) -> None:
        log_shadow_pairs(self.project, self.clock, **counts)

    def alerts(self) -> list[Alert]:
        return [a for a in self.engine.active() if a.details["metric"] == "shadow_agreement"]

    def gauge(self) -> float | None:
        return self.metrics.registry.get_sample_value(
            "modelpilot_shadow_agreement_ratio", {"deployment": DEPLOYMENT, "version": "2"}
        )

    def firing(self) -> float | None:
        return self.metrics.registry.get_sample_value(
            "modelpilot_alerts_firing", {"rule": RULE["name"], "severity": RULE["severity"]}
        )

    def rollout_id(self) -> int:
        record = self.controller.store.active(DEPLOYMENT)
        assert record is not None
        return record.id


def open_harness(
    directory: Path, rules: list[dict[str, Any]], *, shadow_s: float = 600.0
) -> ShadowHarness:
    update_project(
        directory,
        {
            "rollout": {
                "analysis_interval_s": INTERVAL,
                "shadow_s": shadow_s,
                "gates": [{"metric": "agreement", "threshold": 0.8, "min_samples": MIN_COMPARED}],
            },
            "monitoring": {"interval_s": INTERVAL},
            "alerts": {"defaults": False, "rules": rules, "action_cooldown_s": 600},
        },
    )
    project = Project.open(directory, environ={})
    clock = FakeClock(project.registry.resolve(f"{DEPLOYMENT}@production").created_at + 60)
    manager = DeploymentManager(
        project.registry, project.spec.deployment_specs, settings=project.spec.serving
    )
    manager.load_all(clock=clock)
    controller = RolloutController(project, manager, clock=clock)
    controller.attach()
    metrics = ServingMetrics(process=False)
    monitor = Monitor(project, metrics, manager, clock=clock)
    engine = AlertEngine.from_project(project, controller=controller, metrics=metrics, clock=clock)
    monitor.listeners.append(engine.on_points)
    monitor.series_ended.append(engine.resolve_absent)
    notifier = RecordingNotifier()
    engine.notifiers.append(notifier)
    return ShadowHarness(project, controller, monitor, engine, metrics, clock, notifier)


@pytest.fixture
def harness(versions_project: Path) -> Iterator[ShadowHarness]:
    opened = open_harness(versions_project, [RULE])
    yield opened
    opened.engine.close()
    opened.controller.manager.close()
    opened.project.engine.dispose()


def test_the_value_is_the_share_of_compared_predictions_that_agree(
    harness: ShadowHarness,
) -> None:
    h = harness
    h.controller.deploy(DEPLOYMENT, 2, "shadow", actor="test")
    # Within 10% of production's answer agrees, beyond it does not; the candidate's errors are
    # not compared at all.
    h.pairs(agree=30, disagree=10, errors=5)
    (point,) = h.tick()
    assert (point.deployment, point.labels, point.value) == (DEPLOYMENT, "version=2", 0.75)
    shadow = h.controller.status(DEPLOYMENT)["rollout"]["shadow"]
    assert (shadow["mirrored"], shadow["compared"], shadow["agreement"]) == (45, 40, 0.75)
    assert h.gauge() == 0.75  # the gauge and the rule read one figure

    (alert,) = h.alerts()
    assert (alert.rule, alert.state, alert.deployment, alert.labels) == (
        "shadow_disagrees",
        "firing",
        DEPLOYMENT,
        "version=2",
    )
    assert (alert.value, alert.threshold) == (0.75, 0.9)


def test_fewer_compared_predictions_than_the_minimum_give_no_value(
    harness: ShadowHarness,
) -> None:
    h = harness
    h.controller.deploy(DEPLOYMENT, 2, "shadow", actor="test")
    # 40 mirrored requests, but the 11 errors leave 29 compared: one short of the minimum.
    h.pairs(disagree=MIN_COMPARED - 1, errors=11)
    for _ in range(3):
        assert h.tick() == []
    assert h.alerts() == []
    assert h.gauge() == 0.0  # the gauge shows the figure from the first pair on

    h.pairs(disagree=1)
    (point,) = h.tick()
    assert point.value == 0.0
    assert [(a.rule, a.state) for a in h.alerts()] == [("shadow_disagrees", "firing")]


def test_an_agreeing_shadow_does_not_fire_and_a_firing_alert_resolves_once_it_agrees(
    harness: ShadowHarness,
) -> None:
    h = harness
    h.controller.deploy(DEPLOYMENT, 2, "shadow", actor="test")
    h.pairs(agree=MIN_COMPARED)
    assert [p.value for p in h.tick()] == [1.0]
    assert h.alerts() == []

    h.pairs(disagree=10)  # 30 of 40
    assert [p.value for p in h.tick()] == [0.75]
    assert [a.state for a in h.alerts()] == ["firing"]
    h.pairs(agree=70)  # 100 of 110: 0.909, past the threshold again
    (point,) = h.tick()
    assert point.value == pytest.approx(100 / 110)
    assert h.alerts() == []
    (resolved,) = h.engine.recent()
    assert (resolved.rule, resolved.state, resolved.labels) == (
        "shadow_disagrees",
        "resolved",
        "version=2",
    )


def test_without_a_shadow_there_is_no_value_and_an_aborted_shadow_resolves_its_alert(
    harness: ShadowHarness,
) -> None:
    h = harness
    h.pairs(disagree=MIN_COMPARED)  # mirrored-looking rows, but no rollout: nothing to compare
    assert h.tick() == []
    h.controller.deploy(DEPLOYMENT, 2, "canary", actor="test")  # a canary is no shadow
    assert h.tick() == []
    h.controller.abort(DEPLOYMENT, actor="test")

    h.controller.deploy(DEPLOYMENT, 2, "shadow", actor="test")
    rollout = h.rollout_id()
    h.clock.advance(1)  # the rows of the earlier rollouts are not this shadow's
    h.pairs(disagree=MIN_COMPARED)
    assert [p.value for p in h.tick()] == [0.0]
    (firing,) = h.alerts()
    assert h.firing() == 1.0
    h.controller.abort(DEPLOYMENT, actor="test", reason="seen enough")
    assert h.tick() == []
    # Nothing would ever evaluate it again: the end of the shadow resolves it.
    assert h.alerts() == []
    (resolved,) = h.engine.recent()
    assert (resolved.id, resolved.state, resolved.resolved_at) == (firing.id, "resolved", h.clock())
    assert resolved.details["resolved_reason"] == (
        f"the shadow of version 2 ended (rollout {rollout} aborted: seen enough)"
    )
    assert h.firing() == 0.0
    assert h.gauge() is None
    for _ in range(10):  # told once
        assert h.tick() == []
    assert h.notifier.statuses() == [
        ("shadow_disagrees", "firing"),
        ("shadow_disagrees", "resolved"),
    ]


@pytest.mark.parametrize("strategy", ["shadow", "shadow-canary"])
def test_rollback_canary_stops_a_disagreeing_shadow(versions_project: Path, strategy: str) -> None:
    h = open_harness(versions_project, [{**RULE, "actions": ["rollback_canary"]}])
    try:
        h.controller.deploy(DEPLOYMENT, 2, strategy, actor="test")
        rollout = h.controller.store.active(DEPLOYMENT)
        assert rollout is not None
        h.pairs(agree=20, disagree=20)
        started = h.clock()
        while h.controller.store.active(DEPLOYMENT) is not None:
            assert [p.value for p in h.tick()] == [0.5]
            # A rollback waits for a minute of evidence, even from a rule with for_s: 0.
            assert h.clock() - started <= 70, "the shadow was not rolled back"
        assert h.clock() - started >= 60

        status = h.controller.status(DEPLOYMENT)
        assert (status["version"], status["routing"]["kind"]) == (1, "static")
        assert (status["recent"][0]["status"], status["recent"][0]["reason"]) == (
            "rolled_back",
            "alert shadow_disagrees firing: shadow_agreement 0.5 < 0.9",
        )
        (alert,) = h.alerts()
        assert alert.details["actions"]["rollback_canary"]["detail"] == (
            f"rolled back the {strategy} of v2 (rollout {rollout.id}); houses serves v1"
        )
        assert h.tick() == []  # the shadow is over: no more points
    finally:
        h.engine.close()
        h.controller.manager.close()
        h.project.engine.dispose()


# ---- the end of a shadow resolves its alerts ----------------------------------------------------
def test_a_shadow_the_alert_rolled_back_resolves_the_alert_on_the_next_tick(
    versions_project: Path,
) -> None:
    h = open_harness(versions_project, [{**RULE, "actions": ["rollback_canary"]}])
    try:
        h.controller.deploy(DEPLOYMENT, 2, "shadow", actor="test")
        rollout = h.rollout_id()
        h.pairs(agree=20, disagree=20)
        started = h.clock()
        while h.controller.store.active(DEPLOYMENT) is not None:
            assert [p.value for p in h.tick()] == [0.5]
            assert h.clock() - started <= 70, "the shadow was not rolled back"
        (firing,) = h.alerts()  # the tick that rolled back evaluated the shadow's last point
        assert firing.state == "firing"

        assert h.tick() == []
        assert h.alerts() == []
        assert h.firing() == 0.0
        (resolved,) = h.engine.recent()
        reason = (
            f"the shadow of version 2 ended (rollout {rollout} rolled back: "
            "alert shadow_disagrees firing: shadow_agreement 0.5 < 0.9)"
        )
        assert (resolved.id, resolved.details["resolved_reason"]) == (firing.id, reason)
        (stored,) = AlertStore(h.project.engine).resolved()
        assert (stored.id, stored.state, stored.details["resolved_reason"]) == (
            firing.id,
            "resolved",
            reason,
        )
        for _ in range(3):
            assert h.tick() == []
        assert h.notifier.statuses() == [
            ("shadow_disagrees", "firing"),
            ("shadow_disagrees", "resolved"),
        ]
        event = h.notifier.events[-1]
        assert (event["id"], event["labels"], event["resolved_reason"]) == (
            firing.id,
            {"version": "2"},
            reason,
        )

        # A later shadow gets an alert of its own; the resolved one stays resolved.
        h.controller.deploy(DEPLOYMENT, 2, "shadow", actor="test")
        h.clock.advance(1)
        h.pairs(disagree=MIN_COMPARED)
        assert [p.value for p in h.tick()] == [0.0]
        (again,) = h.alerts()
        assert again.state == "firing" and again.id != firing.id
        assert [a.id for a in h.engine.recent()] == [firing.id]
    finally:
        h.engine.close()
        h.controller.manager.close()
        h.project.engine.dispose()


def test_a_shadow_canary_past_its_shadow_phase_resolves_the_alert(versions_project: Path) -> None:
    h = open_harness(versions_project, [RULE], shadow_s=60)
    try:
        h.controller.deploy(DEPLOYMENT, 2, "shadow-canary", actor="test")
        rollout = h.rollout_id()
        h.pairs(agree=30, disagree=30)  # no errors: the shadow phase passes at 60 s
        assert [p.value for p in h.tick()] == [0.5]
        (firing,) = h.alerts()
        for _ in range(10):  # the shadow phase passes on the first analysis past 60 s
            assert [(a.id, a.state) for a in h.alerts()] == [(firing.id, "firing")]
            h.tick()
            if h.controller.status(DEPLOYMENT)["rollout"]["strategy"] == "canary":
                break
        else:
            pytest.fail("the shadow phase did not pass")
        # The tick that began the canary found no shadow phase any more.
        assert h.alerts() == []
        (resolved,) = h.engine.recent()
        assert (resolved.id, resolved.details["resolved_reason"]) == (
            firing.id,
            f"the shadow of version 2 ended (rollout {rollout} passed its shadow phase: "
            "a canary now)",
        )
        assert h.firing() == 0.0
        assert h.notifier.statuses() == [
            ("shadow_disagrees", "firing"),
            ("shadow_disagrees", "resolved"),
        ]
    finally:
        h.engine.close()
        h.controller.manager.close()
        h.project.engine.dispose()


def test_a_pending_alert_goes_away_silently_when_its_shadow_ends(versions_project: Path) -> None:
    h = open_harness(versions_project, [{**RULE, "for_s": 600}])
    try:
        h.controller.deploy(DEPLOYMENT, 2, "shadow", actor="test")
        h.pairs(disagree=MIN_COMPARED)
        assert [p.value for p in h.tick()] == [0.0]
        assert [a.state for a in h.alerts()] == ["pending"]
        assert [a.state for a in AlertStore(h.project.engine).open()] == ["pending"]

        h.controller.abort(DEPLOYMENT, actor="test")
        assert h.tick() == []
        # As when a pending alert's condition goes away: it never fired, nobody was told.
        assert h.alerts() == []
        assert AlertStore(h.project.engine).open() == []
        assert h.engine.recent() == []
        assert h.notifier.events == []
    finally:
        h.engine.close()
        h.controller.manager.close()
        h.project.engine.dispose()


def test_the_alert_of_an_ended_shadow_resolves_and_the_running_shadows_stays(
    clock: FakeClock,
) -> None:
    rule = AlertRuleSpec(**{**RULE, "actions": []})
    notifier = RecordingNotifier()
    engine = AlertEngine([rule], clock=clock, notifiers=[notifier])
    feed(engine, clock, "shadow_agreement", [0.5], labels="version=2")
    feed(engine, clock, "shadow_agreement", [0.5], labels="version=3")
    assert sorted(a.labels for a in engine.active()) == ["version=2", "version=3"]

    (resolved,) = engine.resolve_absent(
        "shadow_agreement", DEPLOYMENT, "a shadow of v3 replaced it", keep="version=3"
    )
    assert (resolved.labels, resolved.state) == ("version=2", "resolved")
    assert [(a.labels, a.state) for a in engine.active()] == [("version=3", "firing")]
    # Other metrics and deployments are not this method's business.
    assert engine.resolve_absent("latency_p99_ms", DEPLOYMENT, "gone") == []
    assert engine.resolve_absent("shadow_agreement", "elsewhere", "gone") == []
    assert [e["status"] for e in notifier.events] == ["firing", "firing", "resolved"]
    # The ended series starts afresh: a new point on version=2 opens a new alert.
    (again,) = feed(engine, clock, "shadow_agreement", [0.5], labels="version=2")
    assert (again.id, again.state, again.started_at) == (None, "firing", clock())
