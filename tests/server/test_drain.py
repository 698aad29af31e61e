"""The drain on a real server: at SIGTERM ``/readyz`` answers 503 at once, the leases go to
the next replica, requests are still answered for ``serving.drain_s``, then the server stops
cleanly with every answered prediction in the log."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from live_server import DEPLOYMENT, auth, live_server, poll
from modelpilot.project import Project
from modelpilot.store import LeaseTable
from project_helpers import as_instances, build_project, open_prediction_log

PREDICT = f"/v1/deployments/{DEPLOYMENT}/predict"
DRAIN_S = 3.0


@pytest.fixture(scope="module")
def served_project(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Path:
    settings = {"serving": {"drain_s": DRAIN_S}}
    return build_project(
        tmp_path_factory.mktemp("drain"), house_data[1], house_model_file, settings=settings
    )


def _holder(project: Project, name: str) -> str | None:
    held = LeaseTable(project.engine).holder(name)
    return held.holder if held is not None else None


def test_sigterm_drains_then_stops(
    served_project: Path, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    body = {"instances": as_instances(house_data[1].head(1))}
    project = Project.open(served_project, environ={})
    answered: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def clients() -> None:
        with httpx.Client(base_url=server.url, headers=auth(), timeout=30.0) as client:
            while not stop.is_set():
                try:
                    response = client.post(PREDICT, json=body)
                except httpx.TransportError:
                    return  # the server stopped listening: the drain is over
                if response.status_code == 200:
                    answered.append(response.json()["predictions"][0]["id"])
                else:
                    failures.append(f"{response.status_code} {response.text}")

    try:
        with live_server(served_project) as server:
            poll(
                lambda: _holder(project, "rollout-controller") and _holder(project, "monitor"),
                what="the server leading",
            )
            sender = threading.Thread(target=clients)
            sender.start()
            poll(lambda: len(answered) >= 5, what="the first answers")
            server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            readyz = poll(
                lambda: (
                    (r := httpx.get(f"{server.url}/readyz", timeout=5)).status_code == 503 and r
                ),
                what="/readyz answering 503",
                every=0.02,
            )
            assert time.monotonic() - signalled < DRAIN_S / 2
            assert readyz.json() == {"status": "draining"}
            # Leading is handed over at the drain's start, not at the stop.
            poll(
                lambda: (
                    _holder(project, "rollout-controller") is None
                    and _holder(project, "monitor") is None
                ),
                what="the leases given up",
                timeout=DRAIN_S,
            )
            during = len(answered)
            poll(lambda: len(answered) > during + 5, what="answers during the drain")
            assert server.process.wait(60) == 0, server.describe()
            stopped = time.monotonic() - signalled
            stop.set()
            sender.join(30)
        assert stopped >= DRAIN_S, f"stopped {stopped:.1f} s after SIGTERM"
        assert failures == []
        with open_prediction_log(served_project) as log:
            logged = set(log.window(model=DEPLOYMENT)["id"])
        assert set(answered) <= logged
    finally:
        stop.set()
        project.engine.dispose()
