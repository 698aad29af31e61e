"""Helpers of the automation tests: a project with a production model, labelled predictions,
a fake clock, the CLI in-process and the real server as a subprocess.

Copied in spirit from ``tests/serving/serving_helpers.py`` (test folders do not import each
other), trimmed to what these tests need.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pandas as pd
import pytest
import yaml

from modelpilot.cli._app import main
from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.project import Project
from modelpilot.spec import render_project
from modelpilot.store import FeedbackItem, PredictionRecord

T = TypeVar("T")

PREDICT_TOKEN = "predict-token-for-tests"
ADMIN_TOKEN = "admin-token-for-tests"
DEPLOYMENT = "houses"  # the project's name: the name of its model and of its deployment
CONSOLE_SCRIPT = Path(sys.executable).with_name("modelpilot")
START_DEADLINE = 120.0  # a cold start imports pandas, scikit-learn and skops


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def auth(token: str = PREDICT_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def as_instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a feature frame as JSON-ready records (missing values as null)."""
    features = frame.drop(columns="price", errors="ignore")
    return features.astype(object).where(features.notna(), None).to_dict("records")


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@contextlib.contextmanager
def _without_modelpilot_environ() -> Iterator[None]:
    """No MODELPILOT_* variable of the developer's shell leaks into an in-process command."""
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key.startswith("MODELPILOT_") and not key.startswith("MODELPILOT_TEST_"):
                patch.delenv(key)
        yield


def run_cli(args: Sequence[str]) -> int:
    """``modelpilot ARGS`` in-process; returns the exit code."""
    with _without_modelpilot_environ():
        return main(list(args))


def write_project(directory: Path, settings: Mapping[str, Any] | None = None) -> Path:
    """The house-price project file, with ``settings`` merged in (e.g. ``{"retrain": ...}``)."""
    directory.mkdir(parents=True, exist_ok=True)
    text = render_project(
        project=DEPLOYMENT, task="regression", target="price", features=HOUSE_FEATURES
    )
    if settings:
        text = yaml.safe_dump(_merge(yaml.safe_load(text), settings), sort_keys=False)
    (directory / "modelpilot.yaml").write_text(text, encoding="utf-8")
    return directory


def build_project(
    directory: Path,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    model_file: Path,
    *,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """A project whose model is registered with --data, --eval and alias production."""
    write_project(directory, settings)
    train.to_csv(directory / "train.csv", index=False)
    holdout.to_parquet(directory / "holdout.parquet")
    args = ["-p", str(directory), "register", str(model_file)]
    args += ["--data", str(directory / "train.csv")]
    args += ["--eval", str(directory / "holdout.parquet"), "--alias", "production"]
    assert run_cli(args) == 0
    return directory


def open_project(directory: Path) -> Project:
    return Project.open(directory, environ={})


def add_labelled_predictions(
    project: Project, frame: pd.DataFrame, *, ts: float, prefix: str = "p"
) -> list[str]:
    """Log ``frame``'s rows as online predictions of production, each labelled with its price."""
    production = project.registry.resolve(f"{DEPLOYMENT}@production")
    ids = [f"{prefix}{i:05d}" for i in range(len(frame))]
    records = [
        PredictionRecord(
            pid,
            ts,
            production.name,
            production.version,
            row,
            {"prediction": float(price)},
        )
        for pid, row, price in zip(ids, as_instances(frame), frame["price"], strict=True)
    ]
    project.prediction_log.append(records)
    results = project.prediction_log.add_feedback(
        [FeedbackItem(pid, float(price)) for pid, price in zip(ids, frame["price"], strict=True)]
    )
    assert all(r.accepted for r in results)
    return ids


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


@contextlib.contextmanager
def live_server(directory: Path) -> Iterator[LiveServer]:
    """``modelpilot -p DIRECTORY serve --port PORT`` until the block ends; exit 0 on SIGTERM."""
    port = free_port()
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MODELPILOT_") or k.startswith("MODELPILOT_TEST_")
    }
    environ.update(
        {"MODELPILOT_PREDICT_TOKEN": PREDICT_TOKEN, "MODELPILOT_ADMIN_TOKEN": ADMIN_TOKEN}
    )
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
        process.terminate()
        code = process.wait(60)
        assert code == 0, f"the server exited with {code} on SIGTERM:\n{server.log}"
    finally:
        if process.poll() is None:  # the test failed: leave no process behind
            process.kill()
            process.wait(30)


def _wait_ready(server: LiveServer) -> None:
    deadline = time.monotonic() + START_DEADLINE
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            try:
                if client.get("/readyz").status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = server.process.wait(0.1)  # the pause between polls; sees an early exit
                pytest.fail(f"the server exited with code {code} while starting:\n{server.log}")
    pytest.fail(f"the server was not ready after {START_DEADLINE:.0f} s:\n{server.log}")


def poll(condition: Callable[[], T | None], *, what: str, timeout: float = 30.0) -> T:
    """Call ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.05)
