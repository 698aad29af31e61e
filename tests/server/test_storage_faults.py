"""Storage faults under a real server: the database unwritable, the disk full.

The promise (docs/reliability.md): an answered prediction is in the prediction log or in the
dead-letter file, never silently gone; a stop that had to put records aside logs an error with
their count and exits 1; durable mode never answers what it could not log; and the process
does not crash.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import httpx
import orjson
import pandas as pd
import pytest

from live_server import DEPLOYMENT, LiveServer, auth, live_server, poll
from project_helpers import as_instances, build_project, open_prediction_log

PREDICT = f"/v1/deployments/{DEPLOYMENT}/predict"
DEAD_LETTERS = Path(".modelpilot") / "dead-letter" / "predictions.jsonl"
#: A stopping server retries for a second, a durable request waits a second for its commit.
FAST_FAILURE = {"logging": {"drain_timeout_s": 1, "durable_timeout_s": 1}}


def _predict(http: httpx.Client, instances: list[dict[str, Any]], n: int) -> list[httpx.Response]:
    return [http.post(PREDICT, json={"instances": instances[i * 2 : i * 2 + 2]}) for i in range(n)]


def _answered_ids(responses: list[httpx.Response]) -> list[str]:
    ids = []
    for response in responses:
        assert response.status_code == 200, response.text
        ids += [p["id"] for p in response.json()["predictions"]]
    return ids


def _dead_lettered(directory: Path) -> list[dict[str, Any]]:
    path = directory / DEAD_LETTERS
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _server_errors(server: LiveServer) -> list[str]:
    return [line for line in server.log.splitlines() if "Traceback" in line or "SIGBUS" in line]


def _cannot(reason: str) -> NoReturn:
    """Skip where the machine cannot stage the fault; CI (root) must, so there it fails."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the storage-fault tests, but {reason}", pytrace=False)
    pytest.skip(reason)


@contextlib.contextmanager
def _immutable(paths: list[Path]) -> Iterator[None]:
    """The files cannot be written, renamed or removed, even by root (``chattr +i``)."""
    if shutil.which("chattr") is None:
        _cannot("chattr (e2fsprogs) is not installed")
    done: list[Path] = []
    try:
        for path in paths:
            result = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
            if result.returncode != 0:
                _cannot(f"cannot make files immutable here: {result.stderr.strip()}")
            done.append(path)
        yield
    finally:
        for path in done:
            subprocess.run(["chattr", "-i", str(path)], check=True)


@contextlib.contextmanager
def _small_disk(directory: Path, size_mb: int) -> Iterator[Path]:
    """``directory`` on a tmpfs of ``size_mb`` MiB, its content copied over; unmounted after."""
    if os.geteuid() != 0:
        _cannot("mounting a tmpfs needs root (CI runs as root)")
    saved = directory.with_name(directory.name + ".saved")
    shutil.copytree(directory, saved)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(saved)
        _cannot(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        shutil.copytree(saved, directory, dirs_exist_ok=True)
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)
        shutil.rmtree(directory)
        saved.rename(directory)


@contextlib.contextmanager
def _on_a_small_disk(directory: Path) -> Iterator[tuple[LiveServer, httpx.Client, Path]]:
    """The project's server with its state directory on a 48 MiB tmpfs; the tmpfs too."""
    with (
        _small_disk(directory / ".modelpilot", 48) as state,
        live_server(directory, exit_code=None) as server,
        httpx.Client(base_url=server.url, headers=auth(), timeout=30.0) as http,
    ):
        yield server, http, state


def _fill(directory: Path) -> Path:
    """Fill the disk under ``directory`` to the last byte."""
    filler = directory / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):  # megabytes, then pages, then bytes
            block = b"\0" * size
            with contextlib.suppress(OSError):
                while True:
                    os.write(descriptor, block)
    finally:
        os.close(descriptor)
    return filler


def _logged(directory: Path, ids: list[str]) -> bool:
    with open_prediction_log(directory) as log:
        return log.exists(ids) == set(ids)


def _first_answers_logged(
    http: httpx.Client, directory: Path, rows: list[dict[str, Any]]
) -> list[str]:
    """Predictions answered and committed before the fault: the database worked."""
    answered = _answered_ids(_predict(http, rows, 5))
    poll(lambda: _logged(directory, answered), what="the first answers to be logged")
    return answered


def _wait_for_failing_commits(server: LiveServer) -> None:
    poll(
        lambda: "prediction log cannot be written" in server.log,
        what="the writer to report failing commits",
    )


@pytest.fixture(scope="module")
def holdout(house_data: tuple[pd.DataFrame, pd.DataFrame]) -> list[dict[str, Any]]:
    return as_instances(house_data[1].iloc[:200])


def test_database_unwritable_then_stop_dead_letters_every_answered_prediction(
    tmp_path: Path,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
    holdout: list[dict[str, Any]],
) -> None:
    directory = build_project(tmp_path, house_data[1], house_model_file, settings=FAST_FAILURE)
    database = directory / ".modelpilot" / "modelpilot.db"
    with (
        live_server(directory, exit_code=None) as server,
        httpx.Client(base_url=server.url, headers=auth(), timeout=30.0) as http,
    ):
        before = _first_answers_logged(http, directory, holdout)
        files = [p for p in database.parent.glob("modelpilot.db*") if p.is_file()]
        with _immutable(files):
            during = _answered_ids(_predict(http, holdout[20:], 20))
            _wait_for_failing_commits(server)
            code = server.stop(signal.SIGTERM)
    assert code == 1, server.describe()
    assert server.log.count("prediction log cannot be written") <= 2  # rate-limited
    dead = {r["id"] for r in _dead_lettered(directory)}
    with open_prediction_log(directory) as log:
        logged = log.exists(before + during)
    assert set(before) <= logged
    assert set(during) <= logged | dead, "answered predictions missing from log and dead letters"
    assert f"{len(dead)} records go to the dead-letter file" in server.log
    assert "dead-letter file" in server.log.splitlines()[-1]  # serve's own last word
    assert _server_errors(server) == [], server.log


def test_disk_full_keeps_serving_and_dead_letters_into_the_reserve(
    tmp_path: Path,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
    holdout: list[dict[str, Any]],
) -> None:
    directory = build_project(tmp_path, house_data[1], house_model_file, settings=FAST_FAILURE)
    with _on_a_small_disk(directory) as (server, http, state):
        before = _first_answers_logged(http, directory, holdout)
        filler = _fill(state)
        during = _answered_ids(_predict(http, holdout[10:], 40))
        _wait_for_failing_commits(server)
        assert server.alive(), server.describe()
        code = server.stop(signal.SIGTERM)
        dead = {r["id"] for r in _dead_lettered(directory)}
        filler.unlink()
        with open_prediction_log(directory) as log:
            logged = log.exists(before + during)
    assert code == 1, server.describe()
    assert set(during) <= logged | dead, server.describe()
    assert "LOST" not in server.log
    assert _server_errors(server) == [], server.log


def test_durable_mode_answers_503_not_200_when_the_disk_is_full(
    tmp_path: Path,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
    holdout: list[dict[str, Any]],
) -> None:
    settings = {"logging": {**FAST_FAILURE["logging"], "durable": True}}
    directory = build_project(tmp_path, house_data[1], house_model_file, settings=settings)
    with _on_a_small_disk(directory) as (server, http, state):
        _first_answers_logged(http, directory, holdout)
        filler = _fill(state)
        refused = _predict(http, holdout[10:], 3)
        statuses = [r.status_code for r in refused]
        filler.unlink()
        after = _answered_ids(_predict(http, holdout[20:], 3))  # the disk has room again
        assert server.alive(), server.describe()
        code = server.stop(signal.SIGTERM)
        with open_prediction_log(directory) as log:
            assert log.exists(after) == set(after)
    assert statuses == [503, 503, 503], [r.text for r in refused]
    assert refused[0].json()["error"] == "log_unavailable"
    assert code == 0, server.describe()
    assert _server_errors(server) == [], server.log
