"""The real server for end-to-end tests, shared by every test folder.

:func:`live_server` starts ``modelpilot serve`` as a subprocess on a free port of 127.0.0.1,
exactly as a user would, waits for ``/readyz``, and at the end stops it with SIGTERM, expecting
exit code 0. Its environment holds no MODELPILOT_* variable of the developer's shell, only the
two tokens below. :func:`poll` watches a live server change state.

Folder helpers (``serving_helpers``, ``rollout_live``, ...) build their projects and their
load on top of this module; ``pythonpath`` in pyproject.toml makes it importable from each.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

T = TypeVar("T")

PREDICT_TOKEN = "predict-token-for-tests"
ADMIN_TOKEN = "admin-token-for-tests"
REVIEW_TOKEN = "review-token-for-tests"  # a server gets it from MODELPILOT_REVIEW_TOKEN
DEPLOYMENT = "houses"  # the tests' project's name: its model's and its deployment's
CONSOLE_SCRIPT = Path(sys.executable).with_name("modelpilot")
# A cold start imports pandas, scikit-learn and skops; on a busy 2-core machine that is slow.
START_DEADLINE = 120.0
#: The model calls are small: OpenMP threads only spin-wait for CPUs on a shared machine.
ONE_OPENMP_THREAD = {"OMP_NUM_THREADS": "1"}


def auth(token: str = PREDICT_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def importable(directory: Path) -> dict[str, str]:
    """Environment for a process that must import modules of ``directory`` (pickled models)."""
    paths = [str(directory), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def server_environ(
    extra: Mapping[str, str] | None = None,
    *,
    predict_token: str | None = PREDICT_TOKEN,
    admin_token: str | None = ADMIN_TOKEN,
) -> dict[str, str]:
    """This process's environment without the shell's MODELPILOT_* settings (MODELPILOT_TEST_*
    stay), with the tokens that are not None, then ``extra``."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MODELPILOT_") or k.startswith("MODELPILOT_TEST_")
    }
    if predict_token is not None:
        environ["MODELPILOT_PREDICT_TOKEN"] = predict_token
    if admin_token is not None:
        environ["MODELPILOT_ADMIN_TOKEN"] = admin_token
    environ.update(extra or {})
    return environ


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

    def describe(self) -> str:
        """Whether the process still runs, and its output: for failure messages."""
        code = self.process.poll()
        state = "still running" if code is None else f"exited with code {code}"
        return f"the server at {self.url} {state}; its output:\n{self.log}"

    def stop(self, sig: signal.Signals = signal.SIGTERM, *, timeout: float = 60.0) -> int:
        """Send ``sig`` and return the exit code once the process has ended."""
        if self.alive():
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def get(self, path: str, **params: Any) -> Any:
        """``GET path`` with the predict token; the JSON body of a 200."""
        response = httpx.get(f"{self.url}{path}", params=params, headers=auth(), timeout=30.0)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def status(self) -> dict[str, Any]:
        """``GET /v1/deployments/houses/status``."""
        result: dict[str, Any] = self.get(f"/v1/deployments/{DEPLOYMENT}/status")
        return result

    def admin(self, action: str, **body: Any) -> httpx.Response:
        """``POST /v1/deployments/houses/{action}`` with the admin token."""
        return httpx.post(
            f"{self.url}/v1/deployments/{DEPLOYMENT}/{action}",
            json=body,
            headers=auth(ADMIN_TOKEN),
            timeout=60.0,
        )


def wait_for_readyz(
    url: str,
    *,
    alive: Callable[[], bool],
    describe: Callable[[], str],
    ready: bool = True,
    timeout: float = START_DEADLINE,
) -> None:
    """Poll ``url/readyz`` until it answers 200 (anything, unless ``ready``); fail if the
    server ends first or takes longer than ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    # One client for all polls: a new one per poll costs more CPU than the server's start.
    with httpx.Client(base_url=url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get("/readyz")
                if response.status_code == 200 or not ready:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            if not alive():
                pytest.fail(f"the server ended while starting: {describe()}")
            time.sleep(0.1)  # the pause between polls, not a wait for time to pass
    pytest.fail(
        f"the server was not {'ready' if ready else 'up'} after {timeout:.0f} s: {describe()}"
    )


@contextlib.contextmanager
def live_server(
    directory: Path,
    *,
    trust: bool = False,
    workers: int = 1,
    env: Mapping[str, str] | None = None,
    predict_token: str | None = PREDICT_TOKEN,
    admin_token: str | None = ADMIN_TOKEN,
    wait_ready: bool = True,
    exit_code: int | None = 0,
    preexec_fn: Callable[[], Any] | None = None,
) -> Iterator[LiveServer]:
    """Run ``modelpilot -p DIRECTORY serve --port PORT [--workers N] [--trust]`` until the
    block ends.

    The environment is :func:`server_environ` with ``env`` on top. Unless ``wait_ready`` is
    false, the block starts once ``/readyz`` answers 200. Unless the test stopped it itself,
    the server gets SIGTERM at the end and must exit with ``exit_code`` (None: with any).
    ``preexec_fn`` runs in the child before ``modelpilot serve`` (to lower a resource limit).
    """
    port = free_port()
    environ = server_environ(env, predict_token=predict_token, admin_token=admin_token)
    command = [str(CONSOLE_SCRIPT), "-p", str(directory), "serve", "--port", str(port)]
    command += ["--workers", str(workers)] if workers > 1 else []
    command += ["--trust"] if trust else []
    log_path = directory / f"server-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=preexec_fn,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", directory, process, log_path)
    try:
        wait_for_readyz(server.url, alive=server.alive, describe=server.describe, ready=wait_ready)
        yield server
        if server.alive():
            code = server.stop()
            if exit_code is not None:
                assert code == exit_code, f"SIGTERM: {server.describe()}"
    finally:
        if server.alive():  # the test failed: leave no process behind
            server.process.kill()
            server.process.wait(30)


def poll(
    condition: Callable[[], T | None], *, what: str, timeout: float = 60.0, every: float = 0.05
) -> T:
    """Call ``condition`` until it returns something truthy; fail after ``timeout`` seconds.

    For watching a live server (a log line, a state change), never for waiting a fixed time.
    ``every`` is the pause between looks.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(every)


@contextlib.contextmanager
def recorded_server(
    directory: Path, args: list[str], *, env: Mapping[str, str] | None = None
) -> Iterator[LiveServer]:
    """Run ``modelpilot -p DIRECTORY serve ARGS`` as a user types it (``--port 0`` included):
    its URL is the one it records in ``.modelpilot/server.json`` once bound. At the end it gets
    SIGTERM, must exit with 0 and must have removed that file."""
    recorded = directory / ".modelpilot" / "server.json"
    log_path = directory / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(CONSOLE_SCRIPT), "-p", str(directory), "serve", *args],
            env=dict(env) if env is not None else server_environ(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = LiveServer("", directory, process, log_path)
    try:
        poll(
            lambda: recorded.is_file() or not server.alive(),
            what="the server's recorded address",
            timeout=START_DEADLINE,
        )
        if not recorded.is_file():
            pytest.fail(f"the server recorded no address: {server.describe()}")
        import json

        server.url = json.loads(recorded.read_text(encoding="utf-8"))["url"]
        wait_for_readyz(server.url, alive=server.alive, describe=server.describe)
        yield server
        code = server.stop()
        assert code == 0, f"SIGTERM: {server.describe()}"
        assert not recorded.exists(), "a cleanly stopped server removes its recorded address"
    finally:
        if server.alive():
            server.process.kill()
            server.process.wait(30)
