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
from rollout_helpers import (
    DEPLOYMENT,
    LIVE_ROLLOUT,
    LiveServer,
    LoadGenerator,
    as_instances,
    live_server,
    poll,
    register,
    write_project,
)

from modelpilot.project import Project
from modelpilot.rollout import RolloutStore


@pytest.fixture(scope="module")
def two_workers(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model: Path,
) -> Iterator[tuple[LiveServer, int, int]]:
    """A server of two worker processes; (server, serving version, another copy of it)."""
    directory = write_project(
        tmp_path_factory.mktemp("workers") / "project",
        house_data[1],
        settings={"rollout": LIVE_ROLLOUT},
    )
    primary = register(directory, house_model, production=True)
    candidate = register(directory, house_model)
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
        record = poll(ended, what="the rolling deployment to end", timeout=150)
        load.wait_answered(load.answered + 20)

    assert record["id"] == rollout_id
    assert (record["status"], record["reason"]) == (
        "promoted",
        "every worker runs the new version",
    ), snapshots
    assert server.status()["version"] == candidate
    # One at a time: the status showed one worker moved and the other not yet, and no
    # worker ever went back; each of the two was moved once, by its own step.
    on_candidate = [sum(v == candidate for v in s.values()) for s in snapshots]
    assert 1 in on_candidate, snapshots
    assert on_candidate == sorted(on_candidate), snapshots
    assert primary in snapshots[0].values()
    moves = [h for h in record["history"] if h.get("event") == "worker"]
    assert len({h["worker"] for h in moves}) == 2, record["history"]
    assert moves[0]["at"] < moves[1]["at"]
    assert {h["worker"] for h in moves} == set(snapshots[0])
    assert load.failures == [], load.statuses


def test_two_admins_racing_on_two_processes_one_wins(
    two_workers: tuple[LiveServer, int, int],
) -> None:
    server, _, _ = two_workers
    serving = server.status()["version"]
    other = server.status()["last_good_version"]
    assert other is not None and other != serving
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
