"""Admin actions and the other strategies on a fake clock: rollback from every state, promote,
abort, what deploy refuses, blue-green, shadow and rolling (two workers on one database).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from rollout_helpers import (
    ANALYSIS_S,
    DEPLOYMENT,
    STEP_S,
    ControllerHarness,
    ControllerVersions,
    assert_serving,
    canary_at_step_three,
    canary_step,
    feed_shadow,
    open_controller,
)

from fake_clock import FakeClock
from modelpilot.errors import ConflictError, ModelpilotError, RejectedVersionError
from modelpilot.rollout import STRATEGIES


# ---- admin actions ----------------------------------------------------------------------------
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
    "canary-step-3": canary_at_step_three,
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
