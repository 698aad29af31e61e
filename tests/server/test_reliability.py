"""Reliability of the real server: a stop under load, a crash, a deployment that cannot load.

The invariants, counted from the client side and read back from the prediction log after the
process has ended:

- graceful stop (SIGTERM) under load: every request either got 200 or found the server gone
  (connection refused or closed unanswered), and answered rows == logged rows;
- durable mode under SIGKILL: every answered prediction id is in the log (answered <= logged).
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from live_server import (
    ADMIN_TOKEN,
    CONSOLE_SCRIPT,
    DEPLOYMENT,
    START_DEADLINE,
    LiveServer,
    auth,
    free_port,
    live_server,
    poll,
    server_environ,
)
from project_helpers import (
    as_instances,
    build_project,
    open_prediction_log,
    register,
    write_project,
)

PREDICT = f"/v1/deployments/{DEPLOYMENT}/predict"
N_CLIENTS = 6
ROWS_BEFORE_SIGNAL = 200


class LoadGenerator:
    """Client threads that send predictions (1 to 3 instances each) until the server is gone.

    A transport error before :meth:`signalled` was called is a failure of the server; after it,
    the thread stops: the server is going away, and that request was never answered.
    """

    def __init__(self, url: str, instances: list[dict[str, Any]], *, n_clients: int) -> None:
        self.url = url
        self.instances = instances
        self.answered_ids: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.lost_after_signal: Counter[str] = Counter()
        self.errors_before_signal: list[str] = []
        self.enough = threading.Event()
        self.answered_at_signal = 0
        self._signalled = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(n_clients)
        ]

    def __enter__(self) -> LoadGenerator:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._signalled.set()
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def signalled(self) -> None:
        with self._lock:
            self.answered_at_signal = len(self.answered_ids)
            self._signalled.set()

    def _client(self, index: int) -> None:
        with httpx.Client(base_url=self.url, headers=auth(), timeout=60.0) as client:
            step = index
            while not self._stop.is_set():
                size = 1 + step % 3
                start = (step * 3) % (len(self.instances) - 3)
                step += N_CLIENTS
                try:
                    response = client.post(
                        PREDICT, json={"instances": self.instances[start : start + size]}
                    )
                except httpx.TransportError as exc:
                    with self._lock:
                        if self._signalled.is_set():
                            self.lost_after_signal[type(exc).__name__] += 1
                        else:
                            self.errors_before_signal.append(repr(exc))
                            self.enough.set()  # wake the test, which then fails on it
                    return
                with self._lock:
                    self.statuses[response.status_code] += 1
                    if response.status_code == 200:
                        self.answered_ids += [p["id"] for p in response.json()["predictions"]]
                        if len(self.answered_ids) >= ROWS_BEFORE_SIGNAL:
                            self.enough.set()


@pytest.fixture(scope="module")
def holdout(house_data: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return house_data[1]


def _run_until_signal(
    server: LiveServer, holdout: pd.DataFrame, sig: signal.Signals
) -> tuple[LoadGenerator, int]:
    with LoadGenerator(server.url, as_instances(holdout), n_clients=N_CLIENTS) as load:
        assert load.enough.wait(120), f"the load never got going: {load.errors_before_signal}"
        load.signalled()
        code = server.stop(sig)
    return load, code


def test_graceful_stop_under_load_answers_and_logs_every_accepted_request(
    tmp_path: Path, holdout: pd.DataFrame, house_model_file: Path
) -> None:
    directory = build_project(tmp_path, holdout, house_model_file)
    with live_server(directory) as server:
        load, code = _run_until_signal(server, holdout, signal.SIGTERM)
    assert code == 0, server.log
    assert load.errors_before_signal == []
    assert set(load.statuses) == {200}, load.statuses  # nothing half-answered, no 5xx
    assert sum(load.lost_after_signal.values()) <= N_CLIENTS  # each client stops at its first
    with open_prediction_log(directory) as log:
        logged = log.count()
        assert log.exists(load.answered_ids) == set(load.answered_ids)
    assert logged == len(load.answered_ids)  # sent = answered = logged
    assert len(load.answered_ids) > load.answered_at_signal  # requests were in flight, and drained


@pytest.mark.parametrize("backend", ["sql", "delta"])
def test_durable_mode_logs_every_answered_prediction_even_under_sigkill(
    tmp_path: Path, holdout: pd.DataFrame, house_model_file: Path, backend: str
) -> None:
    """On Delta, answered rows wait in the local spool; the next start commits them."""
    directory = build_project(
        tmp_path,
        holdout,
        house_model_file,
        settings={"logging": {"durable": True, "backend": backend}},
    )
    with live_server(directory) as server:
        load, code = _run_until_signal(server, holdout, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert load.errors_before_signal == []
    assert set(load.statuses) == {200}, load.statuses
    with open_prediction_log(directory) as log:
        log.start()  # what the next server start does first: commit a dead process's spool
        assert log.stop()
        logged = log.count()
        missing = set(load.answered_ids) - log.exists(load.answered_ids)
    assert missing == set(), f"{len(missing)} answered predictions are not in the log"
    assert logged >= len(load.answered_ids) >= ROWS_BEFORE_SIGNAL  # answered <= logged


# ---- a deployment that cannot load -----------------------------------------------------------
def test_a_missing_artifact_keeps_the_server_up_and_not_ready(
    tmp_path: Path, holdout: pd.DataFrame, house_model_file: Path
) -> None:
    directory = build_project(tmp_path, holdout, house_model_file)
    [artifact] = (directory / ".modelpilot" / "artifacts").rglob("*.skops")
    artifact.unlink()
    with (
        live_server(directory, wait_ready=False) as server,
        httpx.Client(base_url=server.url, headers=auth(), timeout=30.0) as http,
    ):

        def loaded() -> httpx.Response | None:
            response = http.get("/readyz")
            return None if response.json()["status"] == "loading" else response

        ready = poll(loaded, what="the deployments' load to end")
        assert ready.status_code == 503
        assert ready.json()["status"] == "failed"
        assert "missing from the artifact store" in ready.json()["error"]
        response = http.post(PREDICT, json={"instances": as_instances(holdout.iloc[:1])})
        assert response.status_code == 503
        assert response.json()["error"] == "not_ready"
        assert "missing from the artifact store" in response.json()["message"]
        assert http.get("/v2/health/ready").status_code == 503
        assert http.get("/healthz").status_code == 200
        assert server.alive()


def test_a_corrupt_artifact_restored_is_reloaded_without_a_restart_and_shown_to_tokens_only(
    tmp_path: Path, holdout: pd.DataFrame, house_model_file: Path
) -> None:
    directory = build_project(tmp_path, holdout, house_model_file)
    [artifact] = (directory / ".modelpilot" / "artifacts").rglob("*.skops")
    original = artifact.read_bytes()
    artifact.write_bytes(original[:-10] + b"tampered!!")
    reload_path = f"/v1/deployments/{DEPLOYMENT}/reload"
    with (
        live_server(directory, wait_ready=False) as server,
        httpx.Client(base_url=server.url, timeout=30.0) as http,
    ):

        def failed() -> httpx.Response | None:
            response = http.get("/readyz")
            return None if response.json()["status"] == "loading" else response

        anonymous = poll(failed, what="the deployments' load to end")
        assert anonymous.status_code == 503
        assert "sha256" not in anonymous.text and "artifact" not in anonymous.text
        assert "is corrupt" in http.get("/readyz", headers=auth()).json()["error"]
        # Reload before the file is restored: the server's files are wrong, not the request.
        refused = http.post(reload_path, headers=auth(ADMIN_TOKEN))
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "artifact_error"
        assert "is corrupt" in refused.json()["message"]
        artifact.write_bytes(original)
        reloaded = http.post(reload_path, headers=auth(ADMIN_TOKEN))
        assert reloaded.status_code == 200, reloaded.text
        assert http.get("/readyz").json() == {"status": "ready"}  # names: token holders only
        assert http.get("/readyz", headers=auth()).json()["deployments"] == [DEPLOYMENT]
        predicted = http.post(
            PREDICT, json={"instances": as_instances(holdout.iloc[:1])}, headers=auth()
        )
        assert predicted.status_code == 200, predicted.text
        hidden = http.get("/v2/models/unknown-model")
        assert hidden.status_code == 404 and DEPLOYMENT not in hidden.text
        shown = http.get("/v2/models/unknown-model", headers=auth())
        assert shown.status_code == 404 and DEPLOYMENT in shown.text


def test_serve_exits_with_the_reason_when_no_deployment_can_be_served(
    tmp_path: Path, holdout: pd.DataFrame, house_model_file: Path
) -> None:
    # The project is named houses; its model was registered under another name.
    directory = write_project(tmp_path, holdout=holdout)
    register(directory, house_model_file, production=True, name="house-rf")
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "-p", str(directory), "serve", "--port", str(free_port())],
        env=server_environ(),
        capture_output=True,
        text=True,
        timeout=START_DEADLINE,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert "no deployment can be served (deployment 'houses':" in message
    assert "Registered models: house-rf" in message
    assert "Uvicorn running" not in result.stderr + result.stdout
