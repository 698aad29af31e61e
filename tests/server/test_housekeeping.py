"""The server's housekeeping, on a real server: the prediction log's compaction, and leases
given up at a graceful stop."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import select

from live_server import DEPLOYMENT, auth, live_server, poll
from modelpilot.project import Project
from modelpilot.rollout import RolloutStore
from modelpilot.store import log_stats
from modelpilot.store._tables import leases
from project_helpers import as_instances, build_project, open_prediction_log

PREDICT = f"/v1/deployments/{DEPLOYMENT}/predict"


@pytest.fixture(scope="module")
def served_project(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Path:
    settings = {"logging": {"compact_interval_s": 1, "flush_interval_ms": 5}}
    return build_project(
        tmp_path_factory.mktemp("housekeeping"), house_data[1], house_model_file, settings=settings
    )


def _segments(directory: Path) -> int:
    project = Project.open(directory, environ={})
    try:
        return log_stats(project.engine).segments
    finally:
        project.engine.dispose()


def test_the_server_merges_small_log_segments_and_keeps_every_prediction(
    served_project: Path, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    instances = as_instances(house_data[1].drop(columns="price").head(40))
    with live_server(served_project) as server, httpx.Client(timeout=30.0) as http:
        answers = []
        for instance in instances:  # one at a time: each commit is a segment of its own
            response = http.post(server.url + PREDICT, json=instance, headers=auth())
            assert response.status_code == 200, response.text
            answers.append(response.json()["predictions"][0])
        ids = [a["id"] for a in answers]
        with open_prediction_log(served_project) as log:
            poll(lambda: log.exists(ids) == set(ids), what="every prediction logged", timeout=30)
            assert _segments(served_project) > 10
            # Segments older than one interval (1 s) are merged while the server runs.
            poll(lambda: _segments(served_project) <= 2, what="the log compacted", timeout=30)
            window = log.window(model=DEPLOYMENT)
            assert window["id"].tolist() == ids
            assert window["prediction"].tolist() == [a["prediction"] for a in answers]
        # A label for the oldest prediction still finds it.
        response = http.post(
            server.url + "/v1/feedback",
            json={"items": [{"prediction_id": ids[0], "label": 123_000.0}]},
            headers=auth(),
        )
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 1, response.text


def _held(project: Project, name: str) -> bool:
    """Whether somebody holds lease ``name`` now (read, never taken)."""
    with project.engine.connect() as connection:
        row = connection.execute(select(leases.c.expires_at).where(leases.c.name == name)).first()
    return row is not None and row.expires_at > time.time()


def test_a_graceful_stop_gives_the_leases_up(served_project: Path) -> None:
    project = Project.open(served_project, environ={})
    try:
        with live_server(served_project) as server:
            # The server takes the controller's and the monitor's leases on its first ticks.
            poll(
                lambda: _held(project, "rollout-controller") and _held(project, "monitor"),
                what="the server holding its leases",
            )
            assert server.stop() == 0
        # Given up at the stop (they would otherwise be held for 5 and 10 s more).
        assert not _held(project, "rollout-controller")
        assert not _held(project, "monitor")
        store = RolloutStore(project.engine)
        assert store.acquire_lease("rollout-controller", "the-next-server", ttl=5.0)
    finally:
        project.engine.dispose()
