"""Canaries on the real server under continuous load: each bad candidate is rolled back by the
gate that sees its fault, and one equal to the primary is promoted.

Client threads send one-row predictions with a sticky key the whole time. The rollout settings
are short (steps of 20, 50 and 100% held 2 s each, an analysis every 0.5 s, 25 samples a gate,
two failed analyses roll back); each test polls the status until its rollout has ended.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rollout_helpers import (
    DEPLOYMENT,
)
from rollout_live import LiveProject, LoadGenerator, finished

from live_server import LiveServer
from modelpilot.project import Project


@pytest.fixture(scope="module")
def load(server: LiveServer, live_project: LiveProject) -> Iterator[LoadGenerator]:
    """Continuous traffic for the whole module."""
    with LoadGenerator(server.url, live_project.instances) as running:
        running.wait_answered(20)
        yield running


def audit_of(project: LiveProject, rollout_id: int, action: str) -> dict[str, Any]:
    """The audit entry of ``action`` on one rollout, read from the project's database."""
    opened = Project.open(project.directory, environ={})
    try:
        entries = opened.registry.audit_entries(limit=500)
    finally:
        opened.engine.dispose()
    return next(
        e
        for e in entries
        if e["action"] == action
        and e["target"] == DEPLOYMENT
        and e["details"].get("rollout") == rollout_id
    )


def start_canary(server: LiveServer, version: int, *, force: bool = False) -> int:
    response = server.admin(
        "deploy", version=version, strategy="canary", force=force, reason="gate test"
    )
    assert response.status_code == 200, response.text
    rollout: dict[str, Any] = response.json()["rollout"]
    assert (rollout["strategy"], rollout["candidate_version"]) == ("canary", version)
    return int(rollout["id"])


@pytest.mark.parametrize(
    ("candidate", "gate", "detail"),
    [
        ("flaky", "error_rate", "candidate errors "),
        ("slow", "latency_p99", "p99 "),
        ("shifted", "prediction_shift", "KS statistic (same requests)"),
    ],
)
def test_a_bad_candidate_is_rolled_back_by_the_gate_that_sees_its_fault(
    idle_server: LiveServer,
    live_project: LiveProject,
    load: LoadGenerator,
    candidate: str,
    gate: str,
    detail: str,
) -> None:
    serving = idle_server.status()["version"]
    version = getattr(live_project.versions, candidate)
    # The shifted model missed its offline targets; forcing it past them does not get it
    # past the online gates.
    rollout_id = start_canary(idle_server, version, force=candidate == "shifted")

    record = finished(idle_server, rollout_id)
    assert record["status"] == "rolled_back", record
    assert record["reason"].startswith(f"gates failed: {gate} failed ({detail}")
    status = idle_server.status()
    assert status["recent"][0]["reason"] == record["reason"]
    assert status["version"] == serving
    assert status["routing"] == {"kind": "static", "traffic": {str(serving): 100.0}}
    audit = audit_of(live_project, rollout_id, "rollback")
    assert audit["actor"] == "controller"
    assert f"gates failed: {audit['details']['reason']}" == record["reason"]


def test_a_candidate_equal_to_the_primary_is_promoted(
    idle_server: LiveServer, live_project: LiveProject, load: LoadGenerator
) -> None:
    v = live_project.versions
    serving = idle_server.status()["version"]
    candidate = v.equal if serving != v.equal else v.primary
    load.reset()
    rollout_id = start_canary(idle_server, candidate)

    record = finished(idle_server, rollout_id)
    assert (record["status"], record["reason"]) == (
        "promoted",
        "every canary step passed its gates",
    ), record
    status = idle_server.status()
    assert (status["version"], status["last_good_version"]) == (candidate, serving)
    audit = audit_of(live_project, rollout_id, "promote")
    assert (audit["actor"], audit["details"]["reason"]) == (
        "controller",
        "every canary step passed its gates",
    )
    opened = Project.open(live_project.directory, environ={})
    try:
        assert opened.registry.alias_version(DEPLOYMENT, "production") == candidate
    finally:
        opened.engine.dispose()
    # The ramp, its promotion and the switch of every key to the new version failed nobody.
    assert load.failures == []
    assert {version for versions in load.versions_by_key.values() for version in versions} == {
        serving,
        candidate,
    }
