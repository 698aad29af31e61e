"""``serve --workers 2``: a rolling deployment moves the worker processes one at a time, and the
database, not a lock in one process, settles two admins racing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from rollout_helpers import DEPLOYMENT
from rollout_live import LIVE_ROLLOUT, LoadGenerator, live_server, poll

from live_server import LiveServer
from modelpilot.project import Project
from modelpilot.rollout import RolloutStore
from project_helpers import as_instances, register, write_project


@pytest.fixture(scope="module")
def two_workers(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model: Path,
) -> Iterator[tuple[LiveServer, int, int]]:
    """A server of two worker processes; (server, serving version, another copy of it)."""
    directory = write_project(
        tmp_path_factory.mktemp("workers") / "project",
        holdout=house_data[1],
        settings={"rollout": LIVE_ROLLOUT},
    )
    primary = register(directory, house_model, production=True)
    candidate = register(directory, house_model, production=False)
    with live_server(directory, workers=2, trust=False) as server:
        project = Project.open(directory, environ={})
        try:
            store = RolloutStore(project.engine)
            # Both processes have loaded their models and report in (the heartbeat, every s).
            poll(lambda: len(store.workers(DEPLOYMENT)) == 2, what="two workers", timeout=120)
        finally:
            project.engine.dispose()
        yield server, primary, candidate


def test_rolling_moves_one_worker_at_a_time_then_promotes(
    two_workers: tuple[LiveServer, int, int], house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    server, primary, candidate = two_workers
    snapshots: list[dict[str, int]] = []

    def ended() -> dict[str, Any] | None:
        status = server.status()
        rollout = status["rollout"]
        if rollout is not None:
            snapshot = {w["worker_id"]: w["version"] for w in rollout["workers"]}
            # A worker whose heartbeat is late drops out of the list for a moment.
            if len(snapshot) == 2 and (not snapshots or snapshots[-1] != snapshot):
                snapshots.append(snapshot)
            return None
        return dict(status["recent"][0])

    with LoadGenerator(server.url, as_instances(house_data[1])) as load:
        load.wait_answered(20)
        response = server.admin("deploy", version=candidate, strategy="rolling", reason="roll")
        assert response.status_code == 200, response.text
        rollout_id = response.json()["rollout"]["id"]
        record = poll(ended, what="the rolling deployment to end", timeout=150, every=0.05)
        load.wait_answered(load.answered + 20)

    assert record["id"] == rollout_id
    assert (record["status"], record["reason"]) == (
        "promoted",
        "every worker runs the new version",
    ), snapshots
    assert server.status()["version"] == candidate
    # One at a time: the controller moved one worker per tick (a tick is 1 s), the second only
    # once the first reported the new version; each of the two was moved once.
    moves = [h for h in record["history"] if h.get("event") == "worker"]
    assert len({h["worker"] for h in moves}) == 2, record["history"]
    assert moves[1]["at"] - moves[0]["at"] >= 0.5, record["history"]
    # What the status showed meanwhile: a worker on the old version first, none ever back.
    # (The moment with only the first worker moved can be shorter than a look: when the
    # lease holder moves itself second, it does so as soon as it sees the first one done.)
    on_candidate = [sum(v == candidate for v in s.values()) for s in snapshots]
    assert on_candidate == sorted(on_candidate), snapshots
    assert primary in snapshots[0].values(), snapshots  # both cannot move within one tick
    assert {h["worker"] for h in moves} == set(snapshots[0])
    assert load.failures == [], (load.statuses, load.failures[:5])  # the answers say why


def test_two_admins_racing_on_two_processes_one_wins(
    two_workers: tuple[LiveServer, int, int],
) -> None:
    # Independent of the other test's outcome: whichever of the two versions serves now (the
    # rolling test, when it ran first on this server, promoted the second one).
    server, primary, candidate = two_workers
    serving = server.status()["version"]
    assert serving in (primary, candidate)
    other = candidate if serving == primary else primary
    start = threading.Barrier(4)
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def deploy(strategy: str) -> None:
        start.wait()
        response = server.admin("deploy", version=other, strategy=strategy)
        with lock:
            responses.append(response)

    # Four requests at once, on new connections: the two processes each get some of them.
    threads = [
        threading.Thread(target=deploy, args=(s,))
        for s in ("canary", "shadow", "canary", "blue-green")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409, 409, 409], [r.text for r in responses]
    won = next(r for r in responses if r.status_code == 200).json()["rollout"]
    for lost in (r.json() for r in responses if r.status_code == 409):
        # From the controller of the winner's process, or from the database's conditional
        # update in the other process: either way it names the rollout that won.
        assert lost["error"] == "conflict"
        assert f"a {won['strategy']} of v{won['candidate_version']}" in lost["message"]
        assert f"is {won['status']}" in lost["message"]  # running, or switched (blue-green)
        assert "abort" in lost["message"]
    assert server.status()["rollout"]["id"] == won["id"]
    assert server.admin("abort", reason="race checked").status_code == 200
    assert server.status()["version"] == serving
