"""Admin actions on the real server: switches without failed requests, refusals, races, sticky
routing, shadow traffic, and the command line against the live server."""

from __future__ import annotations

import json
import subprocess
import threading
from typing import Any

import httpx
import pytest
from rollout_helpers import DEPLOYMENT
from rollout_live import LiveProject, LoadGenerator, finished, poll, server_environ

from live_server import ADMIN_TOKEN, CONSOLE_SCRIPT, LiveServer, auth
from modelpilot.project import Project
from modelpilot.rollout import bucket_of
from project_helpers import run_cli


def other_baseline(server: LiveServer, project: LiveProject) -> tuple[int, int]:
    """(serving, other): the two copies of the house model, whichever serves now."""
    serving = int(server.status()["version"])
    v = project.versions
    assert serving in (v.primary, v.equal), f"v{serving} serves: a test left a bad version"
    return serving, v.equal if serving == v.primary else v.primary


def deploy(server: LiveServer, version: int, strategy: str, **body: Any) -> dict[str, Any]:
    response = server.admin("deploy", version=version, strategy=strategy, **body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_switches_under_load_fail_no_request(
    idle_server: LiveServer, live_project: LiveProject
) -> None:
    """A blue-green switch, a canary promoted by an admin, and a rollback, under load."""
    server = idle_server
    serving, other = other_baseline(server, live_project)
    with LoadGenerator(server.url, live_project.instances) as load:
        load.wait_answered(20)

        switched = deploy(server, other, "blue-green", reason="blue-green under load")
        assert (switched["version"], switched["rollout"]["status"]) == (other, "switched")
        assert switched["rollout"]["standby_version"] == serving
        record = finished(server, switched["rollout"]["id"])
        assert (record["status"], record["reason"]) == ("promoted", "blue-green window over")
        load.wait_answered(load.answered + 20)

        canary = deploy(server, serving, "canary", reason="canary under load")
        load.wait_answered(load.answered + 20)
        assert server.admin("promote", reason="looks good").status_code == 200
        load.wait_answered(load.answered + 20)
        assert server.status()["version"] == serving
        assert finished(server, canary["rollout"]["id"])["status"] == "promoted"

        rolled_back = server.admin("rollback", reason="back to the blue-green version")
        assert rolled_back.status_code == 200, rolled_back.text
        assert rolled_back.json()["version"] == other
        load.wait_answered(load.answered + 20)

    assert load.failures == [], (load.statuses, load.failures[:5])  # the answers say why
    assert load.answered >= 100
    answered_by = {v for versions in load.versions_by_key.values() for v in versions}
    assert answered_by == {serving, other}


def test_a_rejected_version_is_refused_unless_forced(
    idle_server: LiveServer, live_project: LiveProject
) -> None:
    rejected = live_project.versions.rejected
    before = idle_server.status()

    refused = idle_server.admin("deploy", version=rejected, strategy="canary")
    assert refused.status_code == 409
    assert refused.json()["error"] == "rejected_version"
    assert refused.json()["message"].startswith(f"houses v{rejected} is rejected (mae = ")
    assert refused.json()["message"].endswith("; pass --force to use it anyway")
    after = idle_server.status()
    assert (after["version"], after["rollout"]) == (before["version"], None)

    forced = deploy(idle_server, rejected, "shadow", force=True, reason="look at it")
    assert forced["rollout"]["candidate_version"] == rejected
    assert idle_server.admin("abort", reason="seen enough").status_code == 200


def _race(server: LiveServer, requests: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """Send admin requests at the same moment, one thread each."""
    start = threading.Barrier(len(requests))
    responses: list[httpx.Response | None] = [None] * len(requests)

    def send(index: int, action: str, body: dict[str, Any]) -> None:
        start.wait()
        responses[index] = server.admin(action, **body)

    threads = [
        threading.Thread(target=send, args=(i, action, body))
        for i, (action, body) in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert all(r is not None for r in responses)
    return [r for r in responses if r is not None]


def test_two_admins_racing_one_wins_the_other_gets_a_clear_conflict(
    idle_server: LiveServer, live_project: LiveProject
) -> None:
    server = idle_server
    serving, other = other_baseline(server, live_project)
    slow = live_project.versions.slow

    responses = _race(
        server,
        [
            ("deploy", {"version": other, "strategy": "canary", "reason": "admin A"}),
            ("deploy", {"version": slow, "strategy": "canary", "reason": "admin B"}),
        ],
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    won = next(r for r in responses if r.status_code == 200).json()["rollout"]
    lost = next(r for r in responses if r.status_code == 409).json()
    assert lost["error"] == "conflict"
    assert lost["message"].endswith(
        f"a canary of v{won['candidate_version']} is running; abort or roll it back first"
    )
    status = server.status()
    assert status["rollout"]["id"] == won["id"]
    assert status["rollout"]["candidate_version"] == won["candidate_version"]

    # A deploy while the canary runs is refused the same way.
    again = server.admin("deploy", version=other, strategy="blue-green")
    assert again.status_code == 409
    assert "abort or roll it back first" in again.json()["message"]

    # Promote against abort: one of them ends the rollout, the other finds nothing to end.
    ended = _race(server, [("promote", {"reason": "A"}), ("abort", {"reason": "B"})])
    assert sorted(r.status_code for r in ended) == [200, 409]
    loser = next(r for r in ended if r.status_code == 409).json()
    assert loser["message"] == "'houses' has no rollout in progress"
    final = server.status()
    assert final["rollout"] is None
    assert final["recent"][0]["id"] == won["id"]
    expected = won["candidate_version"] if final["recent"][0]["status"] == "promoted" else serving
    assert final["version"] == expected
    if final["version"] == slow:  # promote won with the slow candidate: put a baseline back
        assert server.admin("rollback", reason="test cleanup").status_code == 200


def test_the_canary_is_sticky_by_key(idle_server: LiveServer, live_project: LiveProject) -> None:
    server = idle_server
    serving, other = other_baseline(server, live_project)
    deploy(server, other, "canary", reason="sticky")
    assert server.admin("pause").json()["rollout"]["paused"] is True  # hold it at 20%

    seen: dict[str, set[int]] = {}
    instance = live_project.instances[0]
    with httpx.Client(base_url=server.url, headers=auth(), timeout=30.0) as client:
        for _ in range(3):
            for user in range(60):
                key = f"customer-{user}"
                response = client.post(
                    f"/v1/deployments/{DEPLOYMENT}/predict",
                    json={"instances": [instance], "key": key},
                )
                assert response.status_code == 200, response.text
                seen.setdefault(key, set()).add(int(response.json()["version"]))
    assert server.admin("abort", reason="sticky checked").status_code == 200

    assert all(len(versions) == 1 for versions in seen.values()), seen
    # The candidate gets exactly the keys whose bucket is below 20% of the buckets.
    expected = {key: {other if bucket_of(key) < 2_000 else serving} for key in seen}
    assert seen == expected
    assert {v for versions in seen.values() for v in versions} == {serving, other}


def _shadow_report(server: LiveServer, mirrored: int) -> dict[str, Any]:
    def enough() -> dict[str, Any] | None:
        report: dict[str, Any] = server.status()["rollout"]["shadow"]
        return report if report.get("mirrored", 0) >= mirrored else None

    return poll(enough, what=f"{mirrored} mirrored requests", timeout=120.0)


def test_shadow_traffic_is_logged_beside_the_primary_and_never_returned(
    idle_server: LiveServer, live_project: LiveProject
) -> None:
    server = idle_server
    serving, _ = other_baseline(server, live_project)
    v = live_project.versions
    with LoadGenerator(server.url, live_project.instances) as load:
        # A candidate that fails on 30% of houses: nobody notices but the report.
        started = deploy(server, v.flaky, "shadow", reason="shadow the flaky one")
        assert started["routing"] == {
            "kind": "shadow",
            "traffic": {str(serving): 100.0},
            "shadow": v.flaky,
        }
        flaky = _shadow_report(server, 40)
        assert server.admin("abort", reason="seen enough").status_code == 200

        # A candidate 200,000 too high: the log has both answers, the clients only one.
        shifted_id = deploy(server, v.shifted, "shadow", force=True)["rollout"]["id"]
        shifted = _shadow_report(server, 40)
        assert server.admin("abort", reason="seen enough").status_code == 200
    assert load.failures == []
    assert {v for versions in load.versions_by_key.values() for v in versions} == {serving}

    assert 0.15 <= flaky["candidate_error_rate"] <= 0.45
    assert flaky["agreement"] == 1.0  # where it answers, it answers as the primary does
    assert shifted["candidate_error_rate"] == 0.0
    assert shifted["abs_diff_p50"] == pytest.approx(200_000.0)
    assert shifted["agreement"] == 0.0
    for key in ("candidate_latency_p50_ms", "candidate_latency_p99_ms", "primary_latency_p99_ms"):
        assert shifted[key] > 0

    record = next(r for r in server.status()["recent"] if r["id"] == shifted_id)
    opened = Project.open(live_project.directory, environ={})
    try:
        rows = opened.prediction_log.window(model=DEPLOYMENT, start=record["created_at"])
    finally:
        opened.engine.dispose()
    mirrored = rows[(rows["source"] == "shadow") & (rows["version"] == v.shifted)]
    answered = rows[(rows["source"] == "online") & rows["id"].isin(mirrored["id"])]
    pairs = mirrored.merge(answered, on="id", suffixes=("_shadow", "_online"))
    assert len(pairs) == len(mirrored) >= 40  # every shadow row has its answered request
    assert set(pairs["version_online"]) == {serving}
    difference = pairs["prediction_shadow"] - pairs["prediction_online"]
    assert difference.to_numpy() == pytest.approx(200_000.0)


def test_the_command_line_drives_the_live_server(
    idle_server: LiveServer, live_project: LiveProject, capsys: pytest.CaptureFixture[str]
) -> None:
    server = idle_server
    serving, other = other_baseline(server, live_project)
    remote = ["--url", server.url, "--token", ADMIN_TOKEN]
    capsys.readouterr()

    deploy_other = ["deploy", DEPLOYMENT, "--version", str(other)]
    code = run_cli([*deploy_other, "--strategy", "canary", "--reason", "why", *remote, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    started = json.loads(out)["rollout"]
    assert (started["candidate_version"], started["created_by"]) == (other, "env:admin")

    assert run_cli(["status", DEPLOYMENT, *remote, "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["rollout"]["id"] == started["id"]
    assert status["rollout"]["step_of"] == "1/3"

    # A second deploy: the server says 409, the command says why and exits with 2.
    code = run_cli([*deploy_other, *remote, "--json"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert "HTTP 409: cannot deploy" in captured.err
    assert "abort or roll it back first" in captured.err
    # The same from a separate process, as a shell sees it.
    process = subprocess.run(
        [str(CONSOLE_SCRIPT), *deploy_other, *remote],
        capture_output=True,
        text=True,
        env=server_environ(),
        timeout=120,
    )
    assert process.returncode == 2, process.stderr
    assert "HTTP 409" in process.stderr
    assert "abort or roll it back first" in process.stderr

    code = run_cli(["rollback", DEPLOYMENT, "--reason", "from the shell", *remote, "--json"])
    rolled_back = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (rolled_back["version"], rolled_back["rollout"]) == (serving, None)
    assert rolled_back["recent"][0]["status"] == "rolled_back"
    assert rolled_back["recent"][0]["reason"] == "from the shell"
