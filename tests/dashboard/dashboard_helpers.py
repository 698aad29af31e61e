"""Helpers of the dashboard tests: a project with short monitoring intervals, the real server,
and a client thread that sends predictions (some invalid) and their labels until stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pandas as pd
import pytest
import yaml

from modelpilot.cli._app import main
from modelpilot.datasets import HOUSE_FEATURES, house_prices
from modelpilot.spec import render_project

T = TypeVar("T")

DEPLOYMENT = "houses"  # the project's name: its model's and its deployment's
PREDICT_TOKEN = "dashboard-predict-token"
ADMIN_TOKEN = "dashboard-admin-token"
CONSOLE_SCRIPT = Path(sys.executable).with_name("modelpilot")
# A cold start imports pandas, scikit-learn and skops; on a busy 2-core machine that is slow.
START_DEADLINE = 120.0
# Measurements every second and drift checks every two, so a test sees charts fill in seconds.
SETTINGS: dict[str, Any] = {
    "monitoring": {
        "interval_s": 1,
        "label_window": 50,
        "drift": {"interval_s": 2, "min_rows": 50, "window_s": 600},
    },
    "rollout": {"steps": [25.0, 50.0, 100.0], "analysis_interval_s": 2, "step_interval_s": 900},
}


def auth(token: str = PREDICT_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def run_cli(args: Sequence[str]) -> int:
    """A CLI command in this process, without the developer's MODELPILOT_* variables."""
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key.startswith("MODELPILOT_") and not key.startswith("MODELPILOT_TEST_"):
                patch.delenv(key)
        return main(list(args))


def build_project(
    directory: Path,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    model_file: Path,
    *,
    settings: Mapping[str, Any] = SETTINGS,
) -> Path:
    """The house-price project: v1 in production (with a reference profile, so drift is
    checked), and v2, a copy, registered for a canary."""
    directory.mkdir(parents=True, exist_ok=True)
    text = render_project(
        project=DEPLOYMENT, task="regression", target="price", features=HOUSE_FEATURES
    )
    text = yaml.safe_dump(_merge(yaml.safe_load(text), settings), sort_keys=False)
    (directory / "modelpilot.yaml").write_text(text, encoding="utf-8")
    train.to_csv(directory / "train.csv", index=False)
    holdout.to_parquet(directory / "holdout.parquet")
    register = ["-p", str(directory), "register", str(model_file)]
    register += ["--eval", str(directory / "holdout.parquet")]
    data = ["--data", str(directory / "train.csv")]
    assert run_cli([*register, *data, "--alias", "production"]) == 0
    assert run_cli(register) == 0  # the candidate needs no reference profile: drift is v1's
    return directory


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """A running ``modelpilot serve`` process."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def get(self, path: str, **params: Any) -> Any:
        """``GET path`` with the predict token; the JSON body of a 200."""
        response = httpx.get(f"{self.url}{path}", params=params, headers=auth(), timeout=30.0)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()


@contextlib.contextmanager
def live_server(directory: Path, *, env: Mapping[str, str] | None = None) -> Iterator[LiveServer]:
    """Run ``modelpilot -p DIRECTORY serve --port PORT`` until the block ends; then SIGTERM,
    and the process must exit with 0."""
    port = free_port()
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MODELPILOT_") or k.startswith("MODELPILOT_TEST_")
    }
    environ |= {"MODELPILOT_PREDICT_TOKEN": PREDICT_TOKEN, "MODELPILOT_ADMIN_TOKEN": ADMIN_TOKEN}
    # The model calls are small: OpenMP threads only spin-wait for CPUs on a shared machine.
    environ["OMP_NUM_THREADS"] = "1"
    environ |= dict(env or {})
    command = [str(CONSOLE_SCRIPT), "-p", str(directory), "serve", "--port", str(port)]
    log_path = directory / f"server-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, env=environ, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    server = LiveServer(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(server)
        yield server
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        assert code == 0, f"the server exited with {code} on SIGTERM:\n{server.log}"
    finally:
        if server.alive():  # the test failed: leave no process behind
            process.kill()
            process.wait(30)


def _wait_ready(server: LiveServer) -> None:
    deadline = time.monotonic() + START_DEADLINE
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.url}/readyz", timeout=5.0).status_code == 200:
                return
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = server.process.wait(0.1)  # the pause between polls; notices an early exit
            pytest.fail(f"the server exited with code {code} while starting:\n{server.log}")
    pytest.fail(f"the server was not ready after {START_DEADLINE:.0f} s:\n{server.log}")


def poll(condition: Callable[[], T | None], *, what: str, timeout: float = 60.0) -> T:
    """Call ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.1)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    features = frame.drop(columns="price")
    records: list[dict[str, Any]] = (
        features.astype(object).where(features.notna(), None).to_dict("records")
    )
    return records


@dataclass
class Traffic:
    """One client thread: predictions at about ``rate`` requests a second until stopped.

    The houses are 30% larger than in training (the seed's data drift), every tenth request is
    invalid (a negative size: 422), and each answered prediction gets its true price as a
    label, sent in batches to ``POST /v1/feedback``.
    """

    url: str
    rate: float = 40.0
    seed: int = 11
    sent: int = field(default=0, init=False)
    rejected: int = field(default=0, init=False)
    labeled: int = field(default=0, init=False)
    failures: list[str] = field(default_factory=list, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, name="dashboard-traffic", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        houses = house_prices(4000, seed=self.seed, size_shift=0.3)
        records = _records(houses)
        prices = houses["price"].tolist()
        pending: list[dict[str, Any]] = []
        index = 0
        with httpx.Client(base_url=self.url, headers=auth(), timeout=30.0) as client:
            while not self._stop.is_set():
                try:
                    if self.sent % 10 == 9:
                        bad = dict(records[index % len(records)], size_sqft=-5)
                        response = client.post(f"/v1/deployments/{DEPLOYMENT}/predict", json=bad)
                        self.rejected += response.status_code == 422
                    else:
                        count = 1 + self.sent % 3
                        rows = [(index + i) % len(records) for i in range(count)]
                        response = client.post(
                            f"/v1/deployments/{DEPLOYMENT}/predict",
                            json={"instances": [records[i] for i in rows]},
                        )
                        if response.status_code == 200:
                            for row, item in zip(rows, response.json()["predictions"], strict=True):
                                pending.append({"prediction_id": item["id"], "label": prices[row]})
                        index += count
                    self.sent += 1
                    if len(pending) >= 20:
                        answer = client.post("/v1/feedback", json={"items": pending})
                        self.labeled += int(answer.json().get("accepted", 0))
                        pending = []
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self._stop.wait(1.0 / self.rate)


@dataclass
class Dashboard:
    """The session's live server, the traffic it gets, and its project directory."""

    server: LiveServer
    traffic: Traffic
    directory: Path
