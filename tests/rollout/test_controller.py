"""The rollout controller on a fake clock: a canary of four 10-minute steps runs in milliseconds.

Each test plays the server's part by hand: it writes to the prediction log what the server
would have logged (the candidate's answers, the primary's, and the primary's mirrored answers
to the candidate's requests), moves the clock and calls ``tick()``, as the server's control
loop does every second.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rollout_helpers import (
    DEPLOYMENT,
    ControllerHarness,
    ControllerVersions,
    FakeClock,
    Traffic,
    feed,
    feed_shadow,
    open_controller,
)

from modelpilot.errors import ConflictError, ModelpilotError, RejectedVersionError
from modelpilot.project import Project
from modelpilot.rollout import STRATEGIES
from modelpilot.spec import GateSpec
from modelpilot.store import FeedbackItem

STEP_S = 600.0  # the project file's default: 10 minutes per step
ANALYSIS_S = 10.0


def canary_step(
    h: ControllerHarness, v: ControllerVersions, traffic: Traffic | None = None
) -> list[dict[str, Any]]:
    """One step's worth of good traffic, then the step's 10 minutes pass; returns the events."""
    weight = h.controller.status(DEPLOYMENT)["rollout"]["weight"]
    traffic = traffic or Traffic(primary_rows=0 if weight == 100 else 60)
    feed(h.project, h.clock() + 1, candidate=v.candidate, primary=v.primary, traffic=traffic)
    h.clock.advance(STEP_S)
    return h.controller.tick()


def assert_serving(h: ControllerHarness, version: int) -> None:
    """Every place that says which version serves agrees: state, router, alias, status."""
    assert h.state.version == version
    assert h.state.active_rollout is None
    assert h.routing() == {"kind": "static", "traffic": {str(version): 100.0}}
    assert h.production() == version
    status = h.controller.status(DEPLOYMENT)
    assert status["version"] == version
    assert status["rollout"] is None


# ---- the canary ---------------------------------------------------------------------------------
def test_a_four_step_canary_of_ten_minute_steps_is_promoted_without_sleeping(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    h, v = harness, versions
    started = h.clock()
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice", reason="new trees")

    seen, events = [], []
    for _ in range(4):
        rollout = h.controller.status(DEPLOYMENT)["rollout"]
        weight = rollout["weight"]
        seen.append((rollout["step_of"], weight))
        assert h.routing() == {
            "kind": "canary",
            "traffic": {str(v.primary): 100 - weight, str(v.candidate): weight},
        }
        events += canary_step(h, v)

    assert seen == [("1/4", 5.0), ("2/4", 25.0), ("3/4", 50.0), ("4/4", 100.0)]
    assert [e["event"] for e in events] == ["step", "step", "step", "promoted"]
    assert h.clock() - started == 4 * STEP_S  # 40 minutes of rollout, no real time waited
    assert_serving(h, v.candidate)
    assert h.state.last_good_version == v.primary
    finished = h.controller.status(DEPLOYMENT)["recent"][0]
    assert (finished["status"], finished["reason"]) == (
        "promoted",
        "every canary step passed its gates",
    )
    # Who did what, and why.
    (deploy,) = h.audit("deploy.canary")
    assert deploy["actor"] == "alice"
    assert deploy["details"] | {"rollout": None} == {
        "rollout": None,
        "from": v.primary,
        "to": v.candidate,
        "reason": "new trees",
    }
    (promote,) = h.audit("promote")
    assert promote["actor"] == "controller"
    assert promote["details"]["reason"] == "every canary step passed its gates"
    moved = h.project.registry.alias_history(DEPLOYMENT, "production")[-1]
    assert (moved["version"], moved["previous_version"], moved["by"]) == (
        v.candidate,
        v.primary,
        "controller",
    )


def test_a_step_lasts_its_interval_however_good_the_analysis(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    h, v = harness, versions
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
    feed(h.project, h.clock() + 1, candidate=v.candidate, primary=v.primary)

    h.clock.advance(STEP_S - 1)
    assert h.controller.tick() == []
    status = h.controller.status(DEPLOYMENT)["rollout"]
    assert status["step_of"] == "1/4"
    assert status["next_step_in_s"] == 1.0
    assert {g["metric"]: g["status"] for g in status["gates"]} == {
        "error_rate": "pass",
        "latency_p99": "pass",
        "prediction_shift": "pass",
        "agreement": "pass",
        "key_metric": "insufficient",
    }  # labels come later; never blocks

    h.clock.advance(1)
    assert h.controller.tick() == [{"deployment": DEPLOYMENT, "event": "step", "weight": 25.0}]


def test_too_few_samples_hold_the_step_until_enough_arrive(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    h, v = harness, versions
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
    few = Traffic(candidate_rows=10, primary_rows=10)
    feed(h.project, h.clock() + 1, candidate=v.candidate, primary=v.primary, traffic=few)

    h.clock.advance(3 * STEP_S)  # long past the interval: time alone does not advance it
    assert h.controller.tick() == []
    rollout = h.controller.status(DEPLOYMENT)["rollout"]
    assert rollout["step_of"] == "1/4"
    gates = {g["metric"]: g for g in rollout["gates"]}
    assert gates["error_rate"]["status"] == "insufficient"
    assert gates["error_rate"]["detail"] == "10 of 50 candidate requests"
    assert gates["agreement"]["detail"] == "10 of 30 mirrored requests"

    feed(h.project, h.clock(), candidate=v.candidate, primary=v.primary, seed=1)
    h.clock.advance(ANALYSIS_S)
    assert h.controller.tick() == [{"deployment": DEPLOYMENT, "event": "step", "weight": 25.0}]


def test_the_last_step_passes_on_mirrored_requests_when_the_primary_answers_none(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    """At 100% the primary answers no request itself; it still scores the mirrored ones, and
    those are what the latency and error gates compare against (the step must not wait
    forever for primary traffic that cannot come)."""
    h, v = harness, versions
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
    for _ in range(3):
        canary_step(h, v)
    assert h.controller.status(DEPLOYMENT)["rollout"]["weight"] == 100.0

    only_mirrored = Traffic(primary_rows=0, candidate_ms=3.0, primary_ms=3.0)
    assert canary_step(h, v, only_mirrored) == [{"deployment": DEPLOYMENT, "event": "promoted"}]
    gates = {
        g["metric"]: g for g in h.controller.status(DEPLOYMENT)["recent"][0]["history"][-1]["gates"]
    }
    assert gates["latency_p99"]["status"] == "pass"
    assert gates["latency_p99"]["samples"] == 60


def test_a_slow_candidate_at_the_last_step_is_still_caught(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    h, v = harness, versions
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
    for _ in range(3):
        canary_step(h, v)
    slow = Traffic(primary_rows=0, candidate_ms=60.0, primary_ms=3.0)
    feed(h.project, h.clock() + 1, candidate=v.candidate, primary=v.primary, traffic=slow)
    for _ in range(2):  # failure_limit: 2
        h.clock.advance(ANALYSIS_S)
        events = h.controller.tick()
    assert events[0]["event"] == "rolled_back"
    assert events[0]["reason"].startswith("latency_p99 failed (p99 ")
    assert_serving(h, v.primary)


# ---- pause, resume, failures ---------------------------------------------------------------
def test_a_pause_does_not_count_toward_the_step(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    h, v = harness, versions
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
    h.clock.advance(300)
    paused = h.controller.pause(DEPLOYMENT, actor="bob")["rollout"]
    assert (paused["paused"], paused["next_step_in_s"]) == (True, None)

    h.clock.advance(3600)  # an hour on hold
    feed(h.project, h.clock(), candidate=v.candidate, primary=v.primary)
    assert h.controller.tick() == []
    assert h.controller.status(DEPLOYMENT)["rollout"]["step_of"] == "1/4"
    assert h.routing()["traffic"] == {str(v.primary): 95.0, str(v.candidate): 5.0}

    resumed = h.controller.resume(DEPLOYMENT, actor="bob")["rollout"]
    assert (resumed["paused"], resumed["next_step_in_s"]) == (False, 300.0)
    h.clock.advance(299)
    assert h.controller.tick() == []
    h.clock.advance(1)
    assert h.controller.tick() == [{"deployment": DEPLOYMENT, "event": "step", "weight": 25.0}]
    assert [e["actor"] for e in h.audit("pause") + h.audit("resume")] == ["bob", "bob"]


def test_the_failure_limit_tolerates_one_failed_analysis_and_rolls_back_at_the_second(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    h, v = harness, versions
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
    broken = Traffic(error_share=0.5)
    feed(h.project, h.clock() + 1, candidate=v.candidate, primary=v.primary, traffic=broken)

    h.clock.advance(ANALYSIS_S)
    assert h.controller.tick() == [{"deployment": DEPLOYMENT, "event": "gate_failed"}]
    rollout = h.controller.status(DEPLOYMENT)["rollout"]
    assert rollout["status"] == "running"
    assert rollout["config"]["failures"] == 1
    assert [g["metric"] for g in rollout["gates"] if g["status"] == "fail"] == ["error_rate"]

    h.clock.advance(ANALYSIS_S)
    (event,) = h.controller.tick()
    reason = "error_rate failed (candidate errors 50.0% vs primary 0.0%: 0.5 vs 0.02)"
    assert event == {"deployment": DEPLOYMENT, "event": "rolled_back", "reason": reason}
    assert_serving(h, v.primary)
    finished = h.controller.status(DEPLOYMENT)["recent"][0]
    assert (finished["status"], finished["reason"]) == ("rolled_back", f"gates failed: {reason}")
    (audit,) = h.audit("rollback")
    assert audit["actor"] == "controller"
    assert audit["details"]["reason"] == reason


def with_rollout(project_dir: Path, **changes: Any) -> Project:
    """The project with some rollout settings changed, as if its file said so."""
    project = Project.open(project_dir, environ={})
    rollout = project.spec.rollout.model_copy(update=changes)
    return Project(project.directory, project.spec.model_copy(update={"rollout": rollout}), {})


def test_a_failure_limit_of_one_rolls_back_at_the_first_failed_analysis(
    project_copy: Path, clock: FakeClock, versions: ControllerVersions
) -> None:
    h = open_controller(project_copy, clock, project=with_rollout(project_copy, failure_limit=1))
    try:
        h.controller.deploy(DEPLOYMENT, versions.candidate, "canary", actor="alice")
        broken = Traffic(error_share=0.5)
        feed(
            h.project,
            clock() + 1,
            candidate=versions.candidate,
            primary=versions.primary,
            traffic=broken,
        )
        clock.advance(ANALYSIS_S)
        assert [e["event"] for e in h.controller.tick()] == ["rolled_back"]
        assert_serving(h, versions.primary)
    finally:
        h.close()


def test_failures_are_counted_per_step(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    h, v = harness, versions
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
    # 3 errors in 60 requests: 5% against the primary's 0%, above the 2% allowed.
    feed(
        h.project,
        h.clock() + 1,
        candidate=v.candidate,
        primary=v.primary,
        traffic=Traffic(error_share=0.05),
    )
    h.clock.advance(ANALYSIS_S)
    assert h.controller.tick() == [{"deployment": DEPLOYMENT, "event": "gate_failed"}]
    # More good traffic dilutes them to 1%: the step passes, and its failure is forgotten.
    feed(
        h.project,
        h.clock(),
        candidate=v.candidate,
        primary=v.primary,
        traffic=Traffic(candidate_rows=240, primary_rows=240),
        seed=1,
    )
    h.clock.advance(STEP_S)
    assert [e["event"] for e in h.controller.tick()] == ["step"]
    assert h.controller.status(DEPLOYMENT)["rollout"]["config"]["failures"] == 0
    # One failed analysis in the next step is again only the first.
    feed(
        h.project,
        h.clock() + 1,
        candidate=v.candidate,
        primary=v.primary,
        traffic=Traffic(error_share=0.5),
        seed=2,
    )
    h.clock.advance(ANALYSIS_S)
    assert h.controller.tick() == [{"deployment": DEPLOYMENT, "event": "gate_failed"}]
    assert h.controller.status(DEPLOYMENT)["rollout"]["status"] == "running"


def test_labels_that_show_a_worse_candidate_roll_it_back_through_the_sequential_test(
    project_copy: Path, clock: FakeClock, versions: ControllerVersions
) -> None:
    v = versions
    only_labels = [GateSpec(metric="key_metric", threshold=0.05, min_samples=30)]
    h = open_controller(project_copy, clock, project=with_rollout(project_copy, gates=only_labels))
    try:
        h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
        feed(
            h.project,
            clock() + 1,
            candidate=v.candidate,
            primary=v.primary,
            traffic=Traffic(offset=40_000.0),
        )
        # Labels: the truth near what the primary says; the candidate is 40,000 too high.
        rng = np.random.default_rng(3)
        logged = h.project.prediction_log.window(model=DEPLOYMENT, source="online")
        truth = logged["prediction"] - np.where(logged["version"] == v.candidate, 40_000.0, 0.0)
        labels = truth + rng.normal(0, 10_000, len(logged))
        results = h.project.prediction_log.add_feedback(
            [FeedbackItem(pid, float(y)) for pid, y in zip(logged["id"], labels, strict=True)]
        )
        assert all(r.accepted for r in results)

        events = []
        for _ in range(2):  # failure_limit: 2
            clock.advance(ANALYSIS_S)
            events = h.controller.tick()
        (event,) = events
        assert event["event"] == "rolled_back"
        assert event["reason"].startswith("key_metric failed (loss difference +")
        assert "misses mae <= 25000" in event["reason"]
        assert_serving(h, v.primary)
    finally:
        h.close()


# ---- admin actions ----------------------------------------------------------------------------
def _canary_at_step_three(h: ControllerHarness, v: ControllerVersions) -> None:
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
    canary_step(h, v)
    canary_step(h, v)
    assert h.controller.status(DEPLOYMENT)["rollout"]["step_of"] == "3/4"


def _paused_canary(h: ControllerHarness, v: ControllerVersions) -> None:
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
    h.controller.pause(DEPLOYMENT, actor="alice")


def _rolling_halfway(h: ControllerHarness, v: ControllerVersions) -> None:
    h.controller.deploy(DEPLOYMENT, v.candidate, "rolling", actor="alice")
    h.controller.heartbeat()
    assert [e["event"] for e in h.controller.tick()] == ["worker_moving"]
    assert h.routing()["traffic"] == {str(v.candidate): 100.0}  # this worker moved


def _promoted(h: ControllerHarness, v: ControllerVersions) -> None:
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
    h.controller.promote(DEPLOYMENT, actor="alice")


def _direct(h: ControllerHarness, v: ControllerVersions) -> None:
    h.controller.deploy(DEPLOYMENT, v.candidate, "direct", actor="alice", force=True)
    assert h.production() == v.candidate


STATES: dict[str, Callable[[ControllerHarness, ControllerVersions], None]] = {
    "canary": lambda h, v: h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice"),
    "canary-step-3": _canary_at_step_three,
    "canary-paused": _paused_canary,
    "shadow": lambda h, v: h.controller.deploy(DEPLOYMENT, v.candidate, "shadow", actor="alice"),
    "blue-green-switched": lambda h, v: h.controller.deploy(
        DEPLOYMENT, v.candidate, "blue-green", actor="alice"
    ),
    "rolling-halfway": _rolling_halfway,
    "promoted-canary": _promoted,
    "direct": _direct,
}


@pytest.mark.parametrize("state", list(STATES))
def test_rollback_from_every_state_returns_to_the_last_good_version(
    harness: ControllerHarness, versions: ControllerVersions, state: str
) -> None:
    h, v = harness, versions
    STATES[state](h, v)
    h.controller.rollback(DEPLOYMENT, actor="carol", reason="the pager went off")

    assert_serving(h, v.primary)
    (audit,) = h.audit("rollback")
    assert (audit["actor"], audit["details"]["reason"]) == ("carol", "the pager went off")
    recent = h.controller.status(DEPLOYMENT)["recent"]
    if state not in ("promoted-canary", "direct"):  # those had finished before the rollback
        assert (recent[0]["status"], recent[0]["reason"]) == ("rolled_back", "the pager went off")
    assert h.controller.tick() == []  # nothing left to do


def test_rollback_with_no_earlier_version_is_a_conflict(harness: ControllerHarness) -> None:
    with pytest.raises(ConflictError, match="'houses' has no earlier version to roll back to"):
        harness.controller.rollback(DEPLOYMENT, actor="carol")


def test_promote_early_makes_the_candidate_the_serving_version(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    h, v = harness, versions
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
    h.controller.promote(DEPLOYMENT, actor="dave", reason="the dashboards look fine")

    assert_serving(h, v.candidate)
    assert h.state.last_good_version == v.primary
    (audit,) = h.audit("promote")
    assert (audit["actor"], audit["details"]["reason"]) == ("dave", "the dashboards look fine")
    with pytest.raises(ConflictError, match="'houses' has no rollout in progress"):
        h.controller.promote(DEPLOYMENT, actor="dave")


def test_abort_stops_the_canary_and_keeps_the_serving_version(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    h, v = harness, versions
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
    canary_step(h, v)
    h.controller.abort(DEPLOYMENT, actor="erin", reason="wrong version")

    assert_serving(h, v.primary)
    assert h.state.last_good_version is None  # nothing was promoted
    recent = h.controller.status(DEPLOYMENT)["recent"][0]
    assert (recent["status"], recent["reason"]) == ("aborted", "wrong version")
    (audit,) = h.audit("abort")
    assert audit["actor"] == "erin"


def test_abort_after_a_blue_green_switch_switches_back(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    h, v = harness, versions
    h.controller.deploy(DEPLOYMENT, v.candidate, "blue-green", actor="alice")
    assert h.production() == v.candidate
    h.controller.abort(DEPLOYMENT, actor="erin")
    assert_serving(h, v.primary)


# ---- deploy: what is refused ---------------------------------------------------------------
def test_a_rejected_version_is_refused_unless_forced(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    h, v = harness, versions
    with pytest.raises(
        RejectedVersionError, match=rf"houses v{v.rejected} is rejected \(mae = .* misses <= 25000"
    ):
        h.controller.deploy(DEPLOYMENT, v.rejected, "shadow", actor="alice")
    assert h.controller.status(DEPLOYMENT)["rollout"] is None

    forced = h.controller.deploy(DEPLOYMENT, v.rejected, "shadow", actor="alice", force=True)
    assert forced["rollout"]["candidate_version"] == v.rejected


def test_a_second_deploy_during_a_rollout_is_a_conflict(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    h, v = harness, versions
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
    with pytest.raises(
        ConflictError,
        match=rf"cannot deploy v{v.other} to 'houses': a canary "
        rf"of v{v.candidate} is running; abort or roll it back first",
    ):
        h.controller.deploy(DEPLOYMENT, v.other, "canary", actor="bob")
    assert h.controller.status(DEPLOYMENT)["rollout"]["candidate_version"] == v.candidate


@pytest.mark.parametrize(
    ("version", "strategy", "error", "message"),
    [
        (
            "candidate",
            "yolo",
            ModelpilotError,
            f"strategy must be one of {', '.join(STRATEGIES)}, got 'yolo'",
        ),
        ("candidate", "direct", ModelpilotError, "direct replaces the serving version at once"),
        ("primary", "canary", ConflictError, "'houses' already serves v1"),
    ],
)
def test_deploy_refuses_what_it_cannot_do(
    harness: ControllerHarness,
    versions: ControllerVersions,
    version: str,
    strategy: str,
    error: type[Exception],
    message: str,
) -> None:
    with pytest.raises(error, match=message):
        harness.controller.deploy(DEPLOYMENT, getattr(versions, version), strategy, actor="a")
    assert harness.controller.status(DEPLOYMENT)["rollout"] is None


# ---- the other strategies ------------------------------------------------------------------
def test_blue_green_switches_at_once_and_keeps_the_old_version_for_its_window(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    h, v = harness, versions
    status = h.controller.deploy(DEPLOYMENT, v.candidate, "blue-green", actor="frank")
    assert status["version"] == v.candidate
    assert status["rollout"]["status"] == "switched"
    assert status["rollout"]["standby_version"] == v.primary
    assert status["rollout"]["standby_until"] == h.clock() + STEP_S  # blue_green_window_s
    assert h.routing() == {"kind": "static", "traffic": {str(v.candidate): 100.0}}
    assert h.production() == v.candidate

    h.clock.advance(STEP_S - 1)
    assert h.controller.tick() == []
    h.clock.advance(1)
    assert h.controller.tick() == [{"deployment": DEPLOYMENT, "event": "promoted"}]
    assert_serving(h, v.candidate)
    assert h.state.last_good_version == v.primary


def test_shadow_compares_the_candidate_without_serving_it(
    harness: ControllerHarness, versions: ControllerVersions
) -> None:
    h, v = harness, versions
    h.controller.deploy(DEPLOYMENT, v.candidate, "shadow", actor="alice")
    assert h.routing() == {
        "kind": "shadow",
        "traffic": {str(v.primary): 100.0},
        "shadow": v.candidate,
    }
    feed_shadow(
        h.project,
        h.clock() + 1,
        primary=v.primary,
        candidate=v.candidate,
        rows=100,
        offset=5_000.0,
        error_share=0.1,
    )
    h.clock.advance(ANALYSIS_S)
    assert h.controller.tick() == []  # a shadow runs until someone decides

    shadow = h.controller.status(DEPLOYMENT)["rollout"]["shadow"]
    assert (shadow["requests"], shadow["mirrored"]) == (100, 100)
    assert shadow["candidate_error_rate"] == pytest.approx(0.1)
    assert shadow["abs_diff_p50"] == pytest.approx(5_000.0)
    assert shadow["candidate_latency_p99_ms"] == pytest.approx(4.0)
    assert shadow["agreement"] == 1.0  # within 10% of prices of 30,000 and more
    assert h.controller.status(DEPLOYMENT)["recent"][0]["history"][-1]["shadow"] == shadow


@dataclass
class TwoWorkers:
    """Two worker processes of one server, played by two controllers on one database."""

    a: ControllerHarness
    b: ControllerHarness

    def on(self) -> dict[str, int]:
        """Which version each worker reports it runs."""
        workers = self.a.controller.store.workers(DEPLOYMENT)
        return {w["worker_id"]: w["version"] for w in workers}

    def loop(self) -> list[str]:
        """One round of the control loop: heartbeats; a leads (ticks), b follows."""
        self.a.clock.advance(1)
        self.a.controller.heartbeat()
        self.b.controller.heartbeat()
        events = [e["event"] for e in self.a.controller.tick()]
        self.b.controller.reconcile()
        return events


@pytest.fixture
def two_workers(project_copy: Path, clock: FakeClock) -> Iterator[TwoWorkers]:
    workers = TwoWorkers(
        open_controller(project_copy, clock, worker_id="worker-a"),
        open_controller(project_copy, clock, worker_id="worker-b"),
    )
    yield workers
    workers.a.close()
    workers.b.close()


def test_rolling_moves_one_worker_at_a_time_then_promotes(
    two_workers: TwoWorkers, versions: ControllerVersions
) -> None:
    w, v = two_workers, versions
    w.a.controller.deploy(DEPLOYMENT, v.candidate, "rolling", actor="alice")
    w.b.controller.reconcile()
    assert w.loop() == ["worker_moving"]
    assert w.on() == {"worker-a": v.candidate, "worker-b": v.primary}
    assert (w.a.routing()["traffic"], w.b.routing()["traffic"]) == (
        {str(v.candidate): 100.0},
        {str(v.primary): 100.0},
    )
    assert w.loop() == ["worker_moving"]
    assert w.on() == {"worker-a": v.candidate, "worker-b": v.candidate}
    assert w.loop() == ["promoted"]
    assert_serving(w.a, v.candidate)
    w.b.controller.reconcile()
    assert_serving(w.b, v.candidate)


def test_a_rolling_deployment_tried_again_after_an_abort_moves_one_worker_at_a_time(
    two_workers: TwoWorkers, versions: ControllerVersions
) -> None:
    w, v = two_workers, versions
    w.a.controller.deploy(DEPLOYMENT, v.candidate, "rolling", actor="alice")
    w.b.controller.reconcile()
    assert w.loop() == ["worker_moving"]
    assert w.loop() == ["worker_moving"]  # both moved; the next tick would promote
    w.a.controller.abort(DEPLOYMENT, actor="alice", reason="not today")
    w.b.controller.reconcile()
    assert w.loop() == []
    assert w.on() == {"worker-a": v.primary, "worker-b": v.primary}

    w.a.controller.deploy(DEPLOYMENT, v.candidate, "rolling", actor="alice")
    w.b.controller.reconcile()
    assert w.on() == {"worker-a": v.primary, "worker-b": v.primary}  # nobody moved on its own
    assert w.loop() == ["worker_moving"]
    assert w.on() == {"worker-a": v.candidate, "worker-b": v.primary}


# ---- restarts ---------------------------------------------------------------------------------
def test_a_restarted_server_resumes_the_canary_in_the_step_it_was_in(
    harness: ControllerHarness, versions: ControllerVersions, project_copy: Path
) -> None:
    h, v = harness, versions
    _canary_at_step_three(h, v)
    h.close()  # the server stops...
    h.clock.advance(120)  # ...and is back two minutes later

    restarted = open_controller(project_copy, h.clock)
    try:
        assert restarted.routing() == {
            "kind": "canary",
            "traffic": {str(v.primary): 50.0, str(v.candidate): 50.0},
        }
        rollout = restarted.controller.status(DEPLOYMENT)["rollout"]
        assert (rollout["step_of"], rollout["weight"]) == ("3/4", 50.0)
        assert rollout["next_step_in_s"] == STEP_S - 120
        assert [e["event"] for e in canary_step(restarted, v)] == ["step"]
        assert [e["event"] for e in canary_step(restarted, v)] == ["promoted"]
        assert_serving(restarted, v.candidate)
    finally:
        restarted.close()


def test_a_restart_during_a_blue_green_window_keeps_the_switch(
    harness: ControllerHarness, versions: ControllerVersions, project_copy: Path
) -> None:
    h, v = harness, versions
    h.controller.deploy(DEPLOYMENT, v.candidate, "blue-green", actor="frank")
    h.close()
    restarted = open_controller(project_copy, h.clock)
    try:
        assert restarted.routing() == {"kind": "static", "traffic": {str(v.candidate): 100.0}}
        restarted.controller.rollback(DEPLOYMENT, actor="frank", reason="instant rollback")
        assert_serving(restarted, v.primary)
    finally:
        restarted.close()
