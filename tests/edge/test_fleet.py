"""The fleet's server side in process: idempotent uploads, stable canaries, gates that
promote or roll back from synced logs (a fake clock: no waiting)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fake_clock import FakeClock
from modelpilot.edge import EdgeFleet, in_canary, ingest
from modelpilot.errors import ConflictError, ValidationFailed
from modelpilot.project import Project
from modelpilot_edge import new_ids

RECORD_INPUTS = {
    "size_sqft": 1800.0,
    "bedrooms": 3.0,
    "bathrooms": 2.0,
    "age_years": 12.0,
    "lot_acres": 0.2,
    "distance_km": 8.0,
    "location": "suburban",
    "condition": "good",
    "has_garage": True,
}


def _records(
    n: int, version: int, *, ts: float, price: float = 300_000.0, error: str | None = None
) -> list[dict[str, Any]]:
    outputs: dict[str, Any] = {"prediction": None if error else price}
    if error:
        outputs["error"] = error
    return [
        {
            "id": pid,
            "ts": ts,
            "model": "houses",
            "version": version,
            "inputs": RECORD_INPUTS,
            "outputs": dict(outputs),
            "latency_ms": 0.2,
        }
        for pid in new_ids(n, clock=lambda: ts)
    ]


@pytest.fixture
def project(edge_project: Path) -> Any:
    opened = Project.open(edge_project, environ={})
    yield opened
    opened.engine.dispose()


def _version_of(project: Project) -> Any:
    return lambda number: project.registry.get("houses", number)


def test_an_upload_sent_twice_is_stored_once(project: Project) -> None:
    log = project.prediction_log
    records = _records(5, 1, ts=1000.0)
    first = ingest(
        log, model="houses", device="pos-1", records=records, version_of=_version_of(project)
    )
    again = ingest(
        log,
        model="houses",
        device="pos-1",
        records=records + records[:2],
        version_of=_version_of(project),
    )
    assert (first.accepted, first.duplicates) == (5, 0)
    assert (again.accepted, again.duplicates) == (0, 7)
    stored = log.get([r["id"] for r in records])
    assert len(stored) == 5 and set(stored["device"]) == {"pos-1"}
    assert set(stored["source"]) == {"edge"} and stored["location"].tolist()[0] == "suburban"


def test_every_malformed_record_is_named(project: Project) -> None:
    good = _records(1, 1, ts=1.0)[0]
    bad = [
        {**good, "id": "not an id!"},
        {**good, "version": 99},
        {**good, "inputs": {"colour": "red"}},
        {**good, "outputs": {"probabilities": {"a": 1}}},
        "a string",
    ]
    with pytest.raises(ValidationFailed) as caught:
        ingest(
            project.prediction_log,
            model="houses",
            device="pos-1",
            records=bad,
            version_of=lambda v: project.registry.get("houses", v) if v in (1, 2) else None,
        )
    fields = [(p["instance"], p["field"]) for p in caught.value.problems]
    assert fields == [(0, "id"), (1, "version"), (2, "inputs"), (3, "outputs"), (4, "(record)")]


def _fleet(project: Project, clock: FakeClock) -> EdgeFleet:
    return EdgeFleet(project, clock=clock)


def test_a_canary_takes_a_stable_share_and_promotes_on_passing_gates(
    project: Project, edge_project: Path
) -> None:
    clock = FakeClock(10_000.0)
    fleet = _fleet(project, clock)
    devices = [f"pos-{i}" for i in range(40)]
    assert {fleet.version_for("houses", d)[1] for d in devices} == {1}  # the alias's version
    rollout = fleet.start("houses", 2, 50.0, actor="alice")
    versions = {d: fleet.version_for("houses", d)[1] for d in devices}
    assert versions == {d: 2 if in_canary(rollout, d) else 1 for d in devices}
    assert 10 < sum(v == 2 for v in versions.values()) < 30
    assert versions == {d: fleet.version_for("houses", d)[1] for d in devices}  # stable
    with pytest.raises(ConflictError, match="is running"):
        fleet.start("houses", 2, 10.0, actor="bob")
    for device, version in versions.items():
        ingest(
            project.prediction_log,
            model="houses",
            device=device,
            records=_records(2, version, ts=clock() + 1),
            version_of=_version_of(project),
        )
    clock.advance(0.1)
    assert fleet.judge("houses").state == "running"  # the step lasts step_interval_s (0.5)
    clock.advance(1.0)
    judged = fleet.judge("houses")
    assert judged is not None and judged.state == "promoted", judged
    assert {g["status"] for g in judged.gates} == {"pass"}
    assert {g["metric"] for g in judged.gates} == {"error_rate", "prediction_shift"}
    assert {fleet.version_for("houses", d)[1] for d in devices} == {2}
    status = fleet.status("houses")
    assert status["version"] == 2 and status["rollout"]["state"] == "promoted"


def test_a_canary_whose_devices_fail_is_rolled_back(project: Project) -> None:
    clock = FakeClock(20_000.0)
    fleet = _fleet(project, clock)
    baseline = fleet.status("houses")["version"]
    candidate = 1 if baseline == 2 else 2
    rollout = fleet.start("houses", candidate, 100.0, actor="alice")
    assert rollout.primary_version == baseline
    for i in range(30):
        ingest(
            project.prediction_log,
            model="houses",
            device=f"bad-{i}",
            records=_records(1, candidate, ts=clock() + 1, error="ModelFailed: a bug"),
            version_of=_version_of(project),
        )
        ingest(
            project.prediction_log,
            model="houses",
            device=f"old-{i}",
            records=_records(1, baseline, ts=clock() + 1),
            version_of=_version_of(project),
        )
    clock.advance(0.2)
    judged = fleet.judge("houses")
    assert judged is not None and judged.state == "rolled_back"
    assert "error_rate" in judged.reason
    assert fleet.status("houses")["version"] == baseline
