"""``rollback_canary`` end to end: a real rollout controller with a canary in progress, rolled
back by a firing alert, on a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alerting_helpers import DEPLOYMENT, feed

from fake_clock import FakeClock
from modelpilot.alerting import AlertEngine
from modelpilot.inference import DeploymentManager
from modelpilot.project import Project
from modelpilot.rollout import RolloutController


@pytest.fixture
def controller(versions_project: Path, clock: FakeClock) -> Iterator[RolloutController]:
    """What the server builds at start: deployments loaded, a controller attached."""
    project = Project.open(versions_project, environ={})
    manager = DeploymentManager(
        project.registry,
        project.spec.deployment_specs,
        settings=project.spec.serving,
    )
    manager.load_all(clock=clock)
    ctl = RolloutController(project, manager, clock=clock)
    ctl.attach()
    yield ctl
    manager.close()
    project.engine.dispose()


def audit(project: Project, action: str) -> list[dict[str, Any]]:
    return [e for e in reversed(project.registry.audit_entries(limit=500)) if e["action"] == action]


def test_a_firing_alert_rolls_back_the_canary(
    controller: RolloutController, clock: FakeClock
) -> None:
    project = controller.project
    controller.deploy(DEPLOYMENT, 2, "canary", actor="test", reason="try v2")
    rollout = controller.store.active(DEPLOYMENT)
    assert rollout is not None and rollout.strategy == "canary"
    engine = AlertEngine.from_project(project, controller=controller, clock=clock)
    assert engine.actions == ["rollback_canary"]

    # One bad minute is not enough evidence for a rollback, even with for_s: 0 ...
    feed(engine, clock, "error_rate", [0.3] * 6)
    assert controller.store.active(DEPLOYMENT) is not None
    # ... a full minute is.
    feed(engine, clock, "error_rate", [0.3])
    assert controller.store.active(DEPLOYMENT) is None
    status = controller.status(DEPLOYMENT)
    assert status["version"] == 1
    assert status["recent"][0]["status"] == "rolled_back"
    assert status["recent"][0]["reason"] == ("alert canary_errors firing: error_rate 0.3 > 0.05")

    (entry,) = audit(project, "alert.rollback_canary")
    assert (entry["actor"], entry["target"], entry["details"]["status"]) == (
        "alerts",
        DEPLOYMENT,
        "done",
    )
    assert entry["details"]["detail"] == (
        f"rolled back the canary of v2 (rollout {rollout.id}); houses serves v1"
    )
    (rollback,) = audit(project, "rollback")  # the controller's own entry, same actor
    assert rollback["actor"] == "alerts"

    # After the cooldown, a new firing finds nothing to roll back, and says so.
    feed(engine, clock, "error_rate", [0.0])
    clock.advance(600)
    feed(engine, clock, "error_rate", [0.3] * 7)
    second = audit(project, "alert.rollback_canary")[-1]["details"]
    assert (second["status"], second["detail"]) == (
        "done",
        "houses has no canary, shadow or blue-green rollout in progress; nothing to roll back",
    )
    assert controller.status(DEPLOYMENT)["version"] == 1
    engine.close()
