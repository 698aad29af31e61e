"""Helpers of the end-to-end rollout tests: a project with misbehaving candidates, the real
server in a subprocess, and client threads that keep it busy."""

from __future__ import annotations

import contextlib
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import joblib
import pandas as pd
import skops.io as sio
from candidates import FlakyCandidate, ShiftedCandidate, SlowCandidate, fails_on
from rollout_helpers import DEPLOYMENT, constant_model

import live_server as shared
from live_server import ONE_OPENMP_THREAD, LiveServer, auth, importable
from project_helpers import as_instances, merge_settings, register, write_project

T = TypeVar("T")

HERE = Path(__file__).parent
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
        holdout=holdout,
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
            production=False,
            trust=True,
        ),
        slow=register(directory, models / "slow.joblib", production=False, trust=True),
        shifted=register(directory, models / "shifted.joblib", production=False, trust=True),
        equal=register(directory, house_model_file, production=False),
        rejected=register(
            directory, constant_model(train, models / "constant.skops"), production=False
        ),
    )
    return LiveProject(directory, versions, as_instances(holdout))


# ---- the real server --------------------------------------------------------------------------
def candidates_env() -> dict[str, str]:
    """This directory on PYTHONPATH (so pickled candidates unpickle in the server) and one
    OpenMP thread."""
    return {**importable(HERE), **ONE_OPENMP_THREAD}


def server_environ(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of :func:`live_server`'s server, for other subprocesses."""
    return shared.server_environ({**candidates_env(), **(extra or {})})


@contextlib.contextmanager
def live_server(directory: Path, *, workers: int = 1, trust: bool = True) -> Iterator[LiveServer]:
    """:func:`live_server.live_server` for the candidates: ``--trust``, :func:`candidates_env`;
    after SIGTERM the process must end by itself, with any exit code."""
    with shared.live_server(
        directory, trust=trust, workers=workers, env=candidates_env(), exit_code=None
    ) as server:
        yield server


def poll(
    condition: Callable[[], T | None], *, what: str, timeout: float = 60.0, every: float = 0.25
) -> T:
    """:func:`live_server.poll`, looking less often: a status call costs the server a little."""
    return shared.poll(condition, what=what, timeout=timeout, every=every)


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
