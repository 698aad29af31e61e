"""Helpers of the rollout tests: projects with several versions, a fake clock, the prediction log
fed by hand, the real server, and client threads that keep it busy.
"""

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
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import yaml
from candidates import FlakyCandidate, ShiftedCandidate, SlowCandidate, fails_on
from sklearn.compose import make_column_transformer
from sklearn.dummy import DummyRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from modelpilot.cli._app import main
from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.project import Project
from modelpilot.rollout import RolloutController
from modelpilot.serving import DeploymentManager
from modelpilot.spec import render_project
from modelpilot.store import PredictionBatch, new_ids

T = TypeVar("T")

DEPLOYMENT = "houses"  # the project's name: its model's and its deployment's
PREDICT_TOKEN = "rollout-predict-token"
ADMIN_TOKEN = "rollout-admin-token"
CONSOLE_SCRIPT = Path(sys.executable).with_name("modelpilot")
HERE = Path(__file__).parent
# A cold start imports pandas, scikit-learn and skops; on a busy 2-core machine that is slow.
START_DEADLINE = 120.0
# A whole canary takes seconds here (2 s steps); the deadline is for a machine shared with
# other test runs, where the server gets a fraction of a core.
ROLLOUT_DEADLINE = 150.0


# ---- projects ---------------------------------------------------------------------------------
def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def write_project(
    directory: Path, holdout: pd.DataFrame, *, settings: Mapping[str, Any] | None = None
) -> Path:
    """The house-price project file (``settings`` merged in) and ``holdout.parquet``."""
    directory.mkdir(parents=True, exist_ok=True)
    text = render_project(
        project=DEPLOYMENT, task="regression", target="price", features=HOUSE_FEATURES
    )
    if settings:
        text = yaml.safe_dump(_merge(yaml.safe_load(text), settings), sort_keys=False)
    (directory / "modelpilot.yaml").write_text(text, encoding="utf-8")
    holdout.to_parquet(directory / "holdout.parquet")
    return directory


@contextlib.contextmanager
def _without_modelpilot_environ() -> Iterator[None]:
    """No MODELPILOT_* variable of the developer's shell leaks into an in-process command."""
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key.startswith("MODELPILOT_") and not key.startswith("MODELPILOT_TEST_"):
                patch.delenv(key)
        yield


def run_cli(args: Sequence[str]) -> int:
    """``modelpilot ARGS`` in this process; returns the exit code."""
    with _without_modelpilot_environ():
        return main(list(args))


def register(
    directory: Path,
    model_file: Path,
    *,
    eval_file: Path | None = None,
    production: bool = False,
    trust: bool = False,
) -> int:
    """``modelpilot register MODEL --eval HOLDOUT [--alias production]``; returns the version."""
    holdout = eval_file or directory / "holdout.parquet"
    args = ["-p", str(directory), "register", str(model_file), "--eval", str(holdout)]
    args += ["--alias", "production"] if production else []
    args += ["--trust"] if trust else []
    assert run_cli(args) == 0, f"registering {model_file} failed"
    project = Project.open(directory, environ={})
    try:
        return project.registry.latest_version(DEPLOYMENT)
    finally:
        project.engine.dispose()


def as_instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a feature frame as JSON-ready records (missing values as null)."""
    features = frame.drop(columns="price", errors="ignore")
    return features.astype(object).where(features.notna(), None).to_dict("records")


# ---- the controller with a fake clock ---------------------------------------------------------
class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class ControllerHarness:
    """One "server process": a project, its loaded deployments and a rollout controller."""

    project: Project
    manager: DeploymentManager
    controller: RolloutController
    clock: FakeClock
    executor: ThreadPoolExecutor

    def close(self) -> None:
        self.executor.shutdown(wait=True)
        self.project.engine.dispose()

    @property
    def state(self) -> Any:
        return self.controller.store.state(DEPLOYMENT)

    def routing(self) -> dict[str, Any]:
        """What this process's router does now (``kind``, ``traffic`` by version)."""
        described: dict[str, Any] = self.manager.get(DEPLOYMENT).router.describe()
        return described

    def production(self) -> int:
        return self.project.registry.alias_version(DEPLOYMENT, "production")

    def audit(self, action: str) -> list[dict[str, Any]]:
        """Audit entries of one action on the deployment, newest first."""
        return [
            e
            for e in self.project.registry.audit_entries(limit=500)
            if e["action"] == action and e["target"] == DEPLOYMENT
        ]


def open_controller(
    directory: Path,
    clock: FakeClock,
    *,
    worker_id: str | None = None,
    project: Project | None = None,
) -> ControllerHarness:
    """What ``modelpilot serve`` does at start, without the HTTP part: load every deployment,
    build a controller on ``clock`` and attach it (routers rebuilt from the database)."""
    project = project or Project.open(directory, environ={})
    settings = project.spec.serving
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rollout-test")
    manager = DeploymentManager(
        project.registry, project.spec.deployment_specs, settings=settings, executor=executor
    )
    manager.load_all(clock=clock)
    controller = RolloutController(project, manager, clock=clock, worker_id=worker_id)
    controller.attach()
    return ControllerHarness(project, manager, controller, clock, executor)


@dataclass
class Traffic:
    """What one stretch of traffic looks like in the prediction log."""

    candidate_rows: int = 60
    primary_rows: int = 60
    error_share: float = 0.0  # of the candidate's rows
    offset: float = 0.0  # added to the candidate's predictions
    candidate_ms: float = 3.0
    primary_ms: float = 3.0
    mirrored: bool = True  # the primary also scored the candidate's requests


def feed(
    project: Project,
    at: float,
    *,
    candidate: int,
    primary: int,
    traffic: Traffic | None = None,
    seed: int = 0,
) -> list[str]:
    """Write the rows a server would have logged at time ``at``: the candidate's answers, the
    primary's own answers, and the primary's mirrored answers to the candidate's requests
    (``source="shadow"``, the same ids). Returns the candidate's prediction ids."""
    t = traffic or Traffic()
    rng = np.random.default_rng(seed)
    n_c, n_p = t.candidate_rows, t.primary_rows
    prices = rng.normal(350_000, 120_000, n_c + n_p).clip(30_000)
    inputs = pd.DataFrame({"size_sqft": rng.uniform(500, 4000, n_c + n_p).round()})
    ids = new_ids(n_c)
    n_errors = round(n_c * t.error_share)
    candidate_out: list[dict[str, Any]] = [
        {"prediction": None, "error": "ValueError"}
        if i < n_errors
        else {"prediction": float(prices[i] + t.offset)}
        for i in range(n_c)
    ]
    batches = [
        PredictionBatch(
            DEPLOYMENT,
            candidate,
            ids,
            np.full(n_c, at),
            inputs.iloc[:n_c],
            candidate_out,
            latency_ms=rng.uniform(0.8, 1.2, n_c) * t.candidate_ms,
        )
    ]
    if t.mirrored:
        batches.append(
            PredictionBatch(
                DEPLOYMENT,
                primary,
                ids,
                np.full(n_c, at),
                inputs.iloc[:n_c],
                [{"prediction": float(p)} for p in prices[:n_c]],
                source="shadow",
                latency_ms=rng.uniform(0.8, 1.2, n_c) * t.primary_ms,
            )
        )
    if n_p:
        batches.append(
            PredictionBatch(
                DEPLOYMENT,
                primary,
                new_ids(n_p),
                np.full(n_p, at),
                inputs.iloc[n_c:],
                [{"prediction": float(p)} for p in prices[n_c:]],
                latency_ms=rng.uniform(0.8, 1.2, n_p) * t.primary_ms,
            )
        )
    project.prediction_log.append(batches)
    return ids


def feed_shadow(
    project: Project,
    at: float,
    *,
    primary: int,
    candidate: int,
    rows: int = 60,
    offset: float = 0.0,
    error_share: float = 0.0,
    seed: int = 0,
) -> list[str]:
    """Shadow traffic: the primary answered ``rows`` requests, the candidate scored copies of
    them (``source="shadow"``, the same ids), ``offset`` higher. Returns the ids."""
    rng = np.random.default_rng(seed)
    prices = rng.normal(350_000, 120_000, rows).clip(30_000)
    inputs = pd.DataFrame({"size_sqft": rng.uniform(500, 4000, rows).round()})
    ids = new_ids(rows)
    n_errors = round(rows * error_share)
    shadow_out: list[dict[str, Any]] = [
        {"prediction": None, "error": "ValueError"}
        if i < n_errors
        else {"prediction": float(prices[i] + offset)}
        for i in range(rows)
    ]
    project.prediction_log.append(
        [
            PredictionBatch(
                DEPLOYMENT,
                primary,
                ids,
                np.full(rows, at),
                inputs,
                [{"prediction": float(p)} for p in prices],
                latency_ms=np.full(rows, 3.0),
            ),
            PredictionBatch(
                DEPLOYMENT,
                candidate,
                ids,
                np.full(rows, at),
                inputs,
                shadow_out,
                source="shadow",
                latency_ms=np.full(rows, 4.0),
            ),
        ]
    )
    return ids


# ---- the projects of the tests ---------------------------------------------------------------
def _load_house_model(path: Path) -> Any:
    return sio.load(path, trusted=sio.get_untrusted_types(file=path))


def constant_model(train: pd.DataFrame, path: Path) -> Path:
    """A model that predicts the mean price whatever the house: it misses ``mae <= 25000``."""
    sio.dump(DummyRegressor().fit(train.drop(columns="price"), train["price"]), path)
    return path


def linear_model(train: pd.DataFrame, path: Path) -> Path:
    """A ridge regression on the house features (mae about 13,000: it passes the targets)."""
    features = train.drop(columns="price")
    numeric = [c for c in features.columns if c not in ("location", "condition")]
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
        (SimpleImputer(), numeric),
    )
    sio.dump(make_pipeline(encode, Ridge()).fit(features, train["price"]), path)
    return path


#: The controller tests' settings (the project file's defaults, written out so that the tests
#: say what they test): four steps of 10 minutes, an analysis every 10 s, two failures.
CONTROLLER_ROLLOUT = {
    "steps": [5, 25, 50, 100],
    "step_interval_s": 600,
    "analysis_interval_s": 10,
    "failure_limit": 2,
    "gates": [
        {"metric": "error_rate", "threshold": 0.02, "min_samples": 50},
        {"metric": "latency_p99", "threshold": 2.0, "min_samples": 50, "slack": 10},
        {"metric": "prediction_shift", "threshold": 0.2, "min_samples": 50},
        {"metric": "agreement", "threshold": 0.8, "min_samples": 30},
        {"metric": "key_metric", "threshold": 0.05, "min_samples": 30},
    ],
    "blue_green_window_s": 600,
}


@dataclass(frozen=True)
class ControllerVersions:
    primary: int
    candidate: int
    other: int
    rejected: int


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
        settings=_merge({"rollout": LIVE_ROLLOUT}, settings or {}),
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


def poll(condition: Callable[[], T | None], *, what: str, timeout: float = 60.0) -> T:
    """Call ``condition`` until it returns something truthy; fail after ``timeout`` seconds.

    For watching a live server change state, never for waiting a fixed time.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.25)  # the pause between looks (a status call costs the server a little)


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
