"""The rollout controller on a fake clock: a canary of four 10-minute steps runs in milliseconds.

Each test plays the server's part by hand: it writes to the prediction log what the server
would have logged (the candidate's answers, the primary's, and the primary's mirrored answers
to the candidate's requests), moves the clock and calls ``tick()``, as the server's control
loop does every second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rollout_helpers import (
    ANALYSIS_S,
    DEPLOYMENT,
    STEP_S,
    ControllerHarness,
    ControllerVersions,
    Traffic,
    assert_serving,
    canary_at_step_three,
    canary_step,
    feed,
    open_controller,
)

from fake_clock import FakeClock
from modelpilot.project import Project
from modelpilot.spec import GateSpec
from modelpilot.store import FeedbackItem


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
    reason = (
        "error_rate failed (candidate errors 50.0% vs primary 0.0%: 0.5 vs 0.02); "
        "a guard vetoes whatever else is known"
    )
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

        # At the first analysis, not the failure_limit's second: the always-valid test may
        # stop at whichever look crosses its level.
        clock.advance(ANALYSIS_S)
        (event,) = h.controller.tick()
        assert event["event"] == "rolled_back"
        assert event["reason"].startswith("key_metric failed (loss difference +")
        assert "misses mae <= 25000" in event["reason"]
        assert "labels show the candidate worse than the primary" in event["reason"]
        assert_serving(h, v.primary)
    finally:
        h.close()


# ---- restarts ---------------------------------------------------------------------------------
def test_a_restarted_server_resumes_the_canary_in_the_step_it_was_in(
    harness: ControllerHarness, versions: ControllerVersions, project_copy: Path
) -> None:
    h, v = harness, versions
    canary_at_step_three(h, v)
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
