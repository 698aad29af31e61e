"""A flood of idle connections: legitimate requests are still answered.

The server runs with a file-descriptor limit of 1,024 (set in the child before it starts), and
the test opens 2,000 connections that each send an incomplete header block, as a slow-loris
client does. Before the connection guard, the server ran out of descriptors and every further
request failed; now the oldest idle connections make room, the ones that never finish their
headers are closed after the header timeout, and predictions keep being answered.
"""

from __future__ import annotations

import contextlib
import resource
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from live_server import DEPLOYMENT, LiveServer, auth, live_server
from project_helpers import as_instances, build_project

PREDICT = f"/v1/deployments/{DEPLOYMENT}/predict"
FD_LIMIT = 1024
FLOOD = 2000
SETTINGS = {"serving": {"header_timeout_s": 2}}


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


@pytest.fixture(scope="module")
def flooded_server(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Iterator[LiveServer]:
    directory = build_project(
        tmp_path_factory.mktemp("flood"), house_data[1], house_model_file, settings=SETTINGS
    )
    with live_server(directory, preexec_fn=_low_fd_limit) as server:
        yield server


@contextlib.contextmanager
def _idle_connections(url: str, n: int) -> Iterator[list[socket.socket]]:
    host, port = url.removeprefix("http://").split(":")
    sockets: list[socket.socket] = []
    try:
        for _ in range(n):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.settimeout(5.0)
            try:
                sock.connect((host, int(port)))
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
            except OSError:
                sock.close()
                continue
            sockets.append(sock)
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def test_thousands_of_idle_connections_do_not_keep_predictions_out(
    flooded_server: LiveServer, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    instances = as_instances(house_data[1].iloc[:2])
    with _idle_connections(flooded_server.url, FLOOD) as flood:
        assert len(flood) > FD_LIMIT  # more than the server could hold
        statuses = []
        for _ in range(20):  # each on a new connection, as independent clients come
            with httpx.Client(base_url=flooded_server.url, timeout=10.0) as http:
                response = http.post(PREDICT, json={"instances": instances}, headers=auth())
                statuses.append(response.status_code)
        assert statuses == [200] * 20, flooded_server.describe()
        assert flooded_server.alive()
    assert "Too many open files" not in flooded_server.log


def test_a_connection_that_never_finishes_its_headers_is_closed(
    flooded_server: LiveServer,
) -> None:
    with _idle_connections(flooded_server.url, 1) as [sock]:
        started = time.monotonic()
        sock.settimeout(30.0)
        answer = sock.recv(4096)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert waited < 20  # 2 s of header timeout, on a busy machine
