"""Helpers of the serving tests: build a project with a registered model, run the real server.

:func:`live_server` starts ``modelpilot serve`` as a subprocess on a free port of 127.0.0.1,
exactly as a user would, waits for ``/readyz`` and stops it with SIGTERM, expecting exit code 0.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
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

from modelpilot.cli import run
from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.project import Project
from modelpilot.runtime import ModelRuntime, load_runtime
from modelpilot.spec import FeatureSpec, render_project
from modelpilot.store import PredictionLog

T = TypeVar("T")

PREDICT_TOKEN = "predict-token-for-tests"
ADMIN_TOKEN = "admin-token-for-tests"
DEPLOYMENT = "houses"  # the project's name, so the name of its model and of its deployment
CONSOLE_SCRIPT = Path(sys.executable).with_name("modelpilot")
HERE = Path(__file__).parent
# A cold start imports pandas, scikit-learn and skops; on a busy 2-core machine that is slow.
START_DEADLINE = 120.0


def auth(token: str = PREDICT_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def as_instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a feature frame as JSON-ready records (missing values as null)."""
    features = frame.drop(columns="price", errors="ignore")
    return features.astype(object).where(features.notna(), None).to_dict("records")


def model_predictions(model_file: Path, frame: pd.DataFrame) -> list[float]:
    """What the model itself predicts on these rows, without any server in between."""
    features = frame.drop(columns="price", errors="ignore")
    return [float(v) for v in _runtime(model_file).predict(features)]


@functools.cache
def _runtime(model_file: Path) -> ModelRuntime:
    return load_runtime(model_file)


@contextlib.contextmanager
def open_prediction_log(directory: Path) -> Iterator[PredictionLog]:
    """The project's prediction log, read from the test process (the server may be gone)."""
    project = Project.open(directory, environ={})
    try:
        yield project.prediction_log
    finally:
        project.engine.dispose()


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
    with _without_modelpilot_environ():
        return run(list(args))


def build_project(
    directory: Path,
    holdout: pd.DataFrame,
    model_file: Path,
    *,
    settings: Mapping[str, Any] | None = None,
    features: Sequence[FeatureSpec] = HOUSE_FEATURES,
    key_metrics: Sequence[str] | None = None,
) -> Path:
    """A project directory whose model (``model_file``) is registered as ``production``.

    ``settings`` are merged into the rendered project file, e.g. ``{"logging": {"durable":
    True}}`` (the file already has ``logging`` and ``serving`` sections, so they are merged,
    not appended).
    """
    directory.mkdir(parents=True, exist_ok=True)
    text = render_project(
        project=DEPLOYMENT,
        task="regression",
        target="price",
        features=features,
        key_metrics=key_metrics,
    )
    if settings:
        text = yaml.safe_dump(_merge(yaml.safe_load(text), settings), sort_keys=False)
    (directory / "modelpilot.yaml").write_text(text, encoding="utf-8")
    holdout.to_parquet(directory / "holdout.parquet")
    register(directory, model_file)
    return directory


def register(
    directory: Path, model_file: Path, *, name: str | None = None, trust: bool = False
) -> None:
    """``modelpilot register MODEL --eval holdout.parquet --alias production``."""
    holdout = str(directory / "holdout.parquet")
    args = ["-p", str(directory), "register", str(model_file), "--eval", holdout]
    args += ["--alias", "production", *(["--name", name] if name else [])]
    assert run_cli([*args, "--trust"] if trust else args) == 0


def importable_tests_env() -> dict[str, str]:
    """Environment for a server that must unpickle classes of this directory (flaky_model)."""
    paths = [str(HERE), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """A running ``modelpilot serve`` process."""

    url: str
    directory: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def log(self) -> str:
        """What the server wrote to stdout and stderr so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: signal.Signals = signal.SIGTERM, *, timeout: float = 60.0) -> int:
        """Send ``sig`` and return the exit code once the process has ended."""
        if self.alive():
            self.process.send_signal(sig)
        return self.process.wait(timeout)


def _wait_until(server: LiveServer, *, ready: bool) -> None:
    """Poll the server until it answers ``/readyz`` (with 200 if ``ready``)."""
    deadline = time.monotonic() + START_DEADLINE
    # One client for all polls: a new one per poll costs more CPU than the server's start.
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get("/readyz")
                if response.status_code == 200 or not ready:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = server.process.wait(0.1)  # the pause between polls; sees an early exit
                pytest.fail(f"the server exited with code {code} while starting:\n{server.log}")
    pytest.fail(
        f"the server was not {'ready' if ready else 'up'} after {START_DEADLINE:.0f} "
        f"s:\n{server.log}"
    )


@contextlib.contextmanager
def live_server(
    directory: Path,
    *,
    trust: bool = False,
    env: Mapping[str, str] | None = None,
    env_tokens: bool = True,
    wait_ready: bool = True,
) -> Iterator[LiveServer]:
    """Run ``modelpilot -p DIRECTORY serve --port PORT`` until the block ends.

    The environment holds ``PREDICT_TOKEN`` and ``ADMIN_TOKEN`` unless ``env_tokens`` is
    false. Unless the test stopped it itself, the server gets SIGTERM at the end and must exit
    with 0.
    """
    port = free_port()
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MODELPILOT_") or k.startswith("MODELPILOT_TEST_")
    }
    if env_tokens:
        environ.update(
            {"MODELPILOT_PREDICT_TOKEN": PREDICT_TOKEN, "MODELPILOT_ADMIN_TOKEN": ADMIN_TOKEN}
        )
    environ.update(env or {})
    command = [str(CONSOLE_SCRIPT), "-p", str(directory), "serve", "--port", str(port)]
    if trust:
        command.append("--trust")
    log_path = directory / f"server-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, env=environ, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    server = LiveServer(f"http://127.0.0.1:{port}", directory, process, log_path)
    try:
        _wait_until(server, ready=wait_ready)
        yield server
        if server.alive():
            code = server.stop()
            assert code == 0, f"the server exited with {code} on SIGTERM:\n{server.log}"
    finally:
        if server.alive():  # the test failed: do not leave the process behind
            server.process.kill()
            server.process.wait(30)


def poll(condition: Callable[[], T | None], *, what: str, timeout: float = 60.0) -> T:
    """Call ``condition`` until it returns something truthy; fail after ``timeout`` seconds.

    For watching a live server (a log line, a state change), never for waiting a fixed time.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.05)
