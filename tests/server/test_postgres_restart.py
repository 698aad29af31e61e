"""PostgreSQL stops under a live server and comes back: the server keeps answering, its log
writer retries until the database is back, and every answered prediction ends up in the log
(docs/reliability.md, "Storage faults"). A PostgreSQL of the test's own (``initdb`` into a
temporary directory), so the restart touches nothing else."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from live_server import DEPLOYMENT, auth, live_server, poll
from modelpilot.cluster import TemporaryPostgres
from project_helpers import as_instances, build_project, open_prediction_log

PREDICT = f"/v1/deployments/{DEPLOYMENT}/predict"


@pytest.fixture
def postgres() -> Iterator[TemporaryPostgres]:
    server = TemporaryPostgres().start()
    try:
        yield server
    finally:
        server.stop()


def _metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def test_a_postgres_restart_loses_no_answered_prediction(
    tmp_path: Path,
    postgres: TemporaryPostgres,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> None:
    settings = {"store": {"database_url": postgres.url}}
    directory = build_project(
        tmp_path / "project", house_data[1], house_model_file, settings=settings
    )
    body = {"instances": as_instances(house_data[1].head(1))}
    answered: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def client(url: str) -> None:
        with httpx.Client(base_url=url, headers=auth(), timeout=30.0) as http:
            while not stop.is_set():
                response = http.post(PREDICT, json=body)
                if response.status_code == 200:
                    answered.append(response.json()["predictions"][0]["id"])
                else:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    with live_server(directory) as server:
        sender = threading.Thread(target=client, args=(server.url,))
        sender.start()
        try:
            poll(lambda: len(answered) >= 20, what="the first answers")
            postgres.halt()
            # Answers go on while the database is away; the writer fails and keeps the rows.
            poll(
                lambda: _metric(server.url, "modelpilot_log_write_failures_total") >= 1,
                what="a failed commit while PostgreSQL is down",
            )
            during = len(answered)
            poll(lambda: len(answered) >= during + 20, what="answers while PostgreSQL is down")
            postgres.start_again()
            poll(
                lambda: _metric(server.url, "modelpilot_log_queue_depth") == 0,
                what="the writer to commit what it kept",
            )
        finally:
            stop.set()
            sender.join(30)
    assert not failures, failures[:3]
    with open_prediction_log(directory) as log:
        logged = set(log.get(answered)["id"])
    assert len(answered) >= 40
    assert logged == set(answered)
