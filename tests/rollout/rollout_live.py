"""Helpers of the end-to-end rollout tests: a project with misbehaving candidates, the real
server in a subprocess, and client threads that keep it busy."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import joblib
import pandas as pd
import pytest
import skops.io as sio
from candidates import FlakyCandidate, ShiftedCandidate, SlowCandidate, fails_on
from rollout_helpers import (
    DEPLOYMENT,
    as_instances,
    constant_model,
    merge_settings,
    register,
    write_project,
)

T = TypeVar("T")

PREDICT_TOKEN = "rollout-predict-token"
ADMIN_TOKEN = "rollout-admin-token"
CONSOLE_SCRIPT = Path(sys.executable).with_name("modelpilot")
HERE = Path(__file__).parent
# A cold start imports pandas, scikit-learn and skops; on a busy 2-core machine that is slow.
START_DEADLINE = 120.0
# A whole canary takes seconds here (2 s steps); the deadline is for a machine shared with
# other test runs, where the server gets a fraction of a core.
ROLLOUT_DEADLINE = 150.0


# ---- the project ------------------------------------------------------------------------------
def _load_house_model(path: Path) -> Any:
    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


#: Short settings so that a whole canary takes seconds in real time.
LIVE_ROLLOUT = {
    "steps": [20, 50, 100],
    "step_interval_s": 2,
    "analysis_interval_s": 0.5,
    "failure_limit": 2,
    "gates": [
        {"metric": "error_rate", "threshold": 0.05, "min_samples": 25},
        {"metric": "latency_p99", "threshold": 3.0, "min_samples": 25, "slack": 25},
        {"metric": "prediction_shift", "threshold": 0.3, "min_samples": 25},
        {"metric": "agreement", "threshold": 0.8, "min_samples": 25},
    ],
    "blue_green_window_s": 2,
    "smoke_requests": 5,
}


@dataclass(frozen=True)
class LiveVersions:
    primary: int  # the house model
    flaky: int  # raises on ~30% of houses
    slow: int  # ten times slower than the house model
    shifted: int  # +200,000 on every price; rejected offline, so it needs force
    equal: int  # the house model again
    rejected: int  # a constant: misses mae <= 25000


@dataclass(frozen=True)
class LiveProject:
    directory: Path
    versions: LiveVersions
    instances: list[dict[str, Any]]


def build_live_project(
    directory: Path,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
    *,
    settings: dict[str, Any] | None = None,
) -> LiveProject:
    train, holdout = house_data
    write_project(
        directory,
        holdout,
        settings=merge_settings({"rollout": LIVE_ROLLOUT}, settings or {}),
    )
    house = _load_house_model(house_model_file)
    models = directory.parent / "models"
    models.mkdir(exist_ok=True)
    for name, model in {
        "flaky": FlakyCandidate(house),
        "slow": SlowCandidate(house, min_delay_s=0.05),
        "shifted": ShiftedCandidate(house, offset=200_000.0),
    }.items():
        joblib.dump(model, models / f"{name}.joblib")
    # The flaky candidate passed its offline evaluation: on houses it happens not to fail on.
    kept = holdout[~holdout["size_sqft"].map(fails_on)]
    kept.to_parquet(models / "holdout-without-failures.parquet")
    versions = LiveVersions(
        primary=register(directory, house_model_file, production=True),
        flaky=register(
            directory,
            models / "flaky.joblib",
            eval_file=models / "holdout-without-failures.parquet",
            trust=True,
        ),
        slow=register(directory, models / "slow.joblib", trust=True),
        shifted=register(directory, models / "shifted.joblib", trust=True),
        equal=register(directory, house_model_file),
        rejected=register(directory, constant_model(train, models / "constant.skops")),
    )
    return LiveProject(directory, versions, as_instances(holdout))


# ---- the real server --------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def auth(token: str = PREDICT_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class LiveServer:
    """A running ``modelpilot serve`` process."""

    url: str
    directory: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def admin(self, action: str, **body: Any) -> httpx.Response:
        """``POST /v1/deployments/houses/{action}`` with the admin token."""
        return httpx.post(
            f"{self.url}/v1/deployments/{DEPLOYMENT}/{action}",
            json=body,
            headers=auth(ADMIN_TOKEN),
            timeout=60.0,
        )

    def status(self) -> dict[str, Any]:
        response = httpx.get(
            f"{self.url}/v1/deployments/{DEPLOYMENT}/status", headers=auth(), timeout=30.0
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


def server_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without MODELPILOT_* settings, with the two tokens and this
    directory on PYTHONPATH (so pickled candidates unpickle in the server)."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MODELPILOT_") or k.startswith("MODELPILOT_TEST_")
    }
    environ["MODELPILOT_PREDICT_TOKEN"] = PREDICT_TOKEN
    environ["MODELPILOT_ADMIN_TOKEN"] = ADMIN_TOKEN
    paths = [str(HERE), os.environ.get("PYTHONPATH", "")]
    environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    # The model calls are small: OpenMP threads only spin-wait for CPUs on a shared machine.
    environ["OMP_NUM_THREADS"] = "1"
    environ.update(extra or {})
    return environ


@contextlib.contextmanager
def live_server(directory: Path, *, workers: int = 1, trust: bool = True) -> Iterator[LiveServer]:
    """Run ``modelpilot -p DIRECTORY serve --port PORT [--workers N] --trust`` until the block
    ends; then SIGTERM, and the process must end by itself."""
    port = free_port()
    command = [str(CONSOLE_SCRIPT), "-p", str(directory), "serve", "--port", str(port)]
    command += ["--workers", str(workers)] if workers > 1 else []
    command += ["--trust"] if trust else []
    log_path = directory / f"server-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            env=server_environ(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", directory, process, log_path)
    try:
        _wait_ready(server)
        yield server
        process.send_signal(signal.SIGTERM)
        process.wait(60)
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


def poll(
    condition: Callable[[], T | None], *, what: str, timeout: float = 60.0, every: float = 0.25
) -> T:
    """Call ``condition`` until it returns something truthy; fail after ``timeout`` seconds.

    For watching a live server change state, never for waiting a fixed time. ``every`` is the
    pause between looks (a status call costs the server a little).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(every)


def finished(
    server: LiveServer, rollout_id: int, *, timeout: float = ROLLOUT_DEADLINE
) -> dict[str, Any]:
    """Poll the status until the rollout ``rollout_id`` has ended; returns its record."""

    def ended() -> dict[str, Any] | None:
        for record in server.status()["recent"]:
            if record["id"] == rollout_id and record["status"] not in (
                "running",
                "paused",
                "switched",
            ):
                return dict(record)
        return None

    return poll(ended, what=f"rollout {rollout_id} to end", timeout=timeout)


# ---- load ------------------------------------------------------------------------------------
@dataclass
class LoadGenerator:
    """Client threads that send one-row predictions with a sticky key until stopped.

    Every request is counted: its status (or the transport error's type), and which version
    answered each key. ``rate`` is per thread, so the server is busy but not saturated.
    """

    url: str
    instances: list[dict[str, Any]]
    n_threads: int = 4
    rate: float = 40.0
    n_keys: int = 200
    statuses: Counter[int | str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    versions_by_key: dict[str, set[int]] = field(default_factory=dict)
    answered: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True)
            for i in range(self.n_threads)
        ]

    def __enter__(self) -> LoadGenerator:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def reset(self) -> None:
        with self._lock:
            self.statuses.clear()
            self.failures.clear()
            self.versions_by_key.clear()
            self.answered = 0

    def wait_answered(self, n: int, *, timeout: float = 60.0) -> None:
        poll(lambda: self.answered >= n, what=f"{n} answered requests", timeout=timeout)

    def _client(self, index: int) -> None:
        rng = random.Random(index)
        path = f"/v1/deployments/{DEPLOYMENT}/predict"
        with httpx.Client(base_url=self.url, headers=auth(), timeout=60.0) as client:
            while not self._stop.wait(1.0 / self.rate):  # pacing, and the stop signal
                key = f"user-{rng.randrange(self.n_keys)}"
                body = {"instances": [rng.choice(self.instances)], "key": key}
                try:
                    response = client.post(path, json=body)
                except httpx.TransportError as exc:
                    with self._lock:
                        self.statuses[type(exc).__name__] += 1
                        self.failures.append(f"{type(exc).__name__}: {exc}")
                    continue
                with self._lock:
                    self.statuses[response.status_code] += 1
                    if response.status_code == 200:
                        self.answered += 1
                        version = int(response.json()["version"])
                        self.versions_by_key.setdefault(key, set()).add(version)
                    else:
                        self.failures.append(f"{response.status_code}: {response.text[:200]}")
