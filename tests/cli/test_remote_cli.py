"""Commands that talk to a server: one line (no traceback) when it is not there, and the
address `modelpilot serve` records so that `predict` finds it without --url."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from live_server import (
    CONSOLE_SCRIPT,
    PREDICT_TOKEN,
    free_port,
    recorded_server,
    server_environ,
)
from modelpilot import Client
from modelpilot.errors import ServerUnreachableError
from project_helpers import build_project, run_cli

pytestmark = pytest.mark.usefixtures("clean_environ")


def _closed_url() -> str:
    """A URL where nothing listens (a port that was free a moment ago)."""
    return f"http://127.0.0.1:{free_port()}"


def _unreachable(url: str) -> str:
    return f"error: cannot reach {url}: is `modelpilot serve` running? set --url or MODELPILOT_URL"


HTTP_COMMANDS = [
    ["predict", "houses", "--json", '{"size_sqft": 1}'],
    ["feedback", "0190abc", "412000"],
    ["status", "houses"],
    ["deploy", "houses", "--version", "2"],
    *([action, "houses"] for action in ("rollback", "promote", "pause", "resume", "abort")),
]


@pytest.mark.parametrize("command", HTTP_COMMANDS, ids=lambda c: c[0])
def test_no_server_is_one_line_and_exit_code_2(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = _closed_url()
    assert run_cli([*command, "--url", url]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == _unreachable(url)
    assert captured.out == ""


def test_modelpilot_url_is_read_by_every_http_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # outside any project
    url = _closed_url()
    for command in HTTP_COMMANDS:
        monkeypatch.setenv("MODELPILOT_URL", url)
        from modelpilot.cli import run

        assert run(command) == 2, command
        assert capsys.readouterr().err.strip() == _unreachable(url), command


def test_the_console_script_prints_no_traceback(tmp_path: Path) -> None:
    url = _closed_url()
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), "status", "houses"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=server_environ({"MODELPILOT_URL": url}),
    )
    assert result.returncode == 2
    assert result.stderr.strip() == _unreachable(url)


def test_client_raises_a_modelpilot_error_for_refused_unknown_host_and_timeout() -> None:
    url = _closed_url()
    with Client(url) as client, pytest.raises(ServerUnreachableError, match="cannot reach"):
        client.status("houses")
    with (
        Client("http://no-such-host.invalid") as client,
        pytest.raises(ServerUnreachableError, match=r"no-such-host\.invalid"),
    ):
        client.predict("houses", {"size_sqft": 1})
    # Listening but never answering: the connection is accepted by the kernel, then silence.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with (
            Client(f"http://127.0.0.1:{port}", timeout=0.2) as client,
            pytest.raises(ServerUnreachableError, match=r"did not answer within 0\.2 s"),
        ):
            client.alerts()


@pytest.fixture(scope="module")
def registered_project(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Path:
    """A project named houses whose model is registered as production. Its serving port is
    one where nothing listens (8000 may be taken on a shared machine)."""
    return build_project(
        tmp_path_factory.mktemp("remote"),
        house_data[1],
        house_model_file,
        settings={"serving": {"port": free_port()}},
    )


def test_serve_on_port_0_records_its_address_and_predict_finds_it(
    registered_project: Path,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    capsys: pytest.CaptureFixture[str],
) -> None:
    with recorded_server(registered_project, ["--port", "0"]) as server:
        address = json.loads((registered_project / ".modelpilot" / "server.json").read_text())
        assert address["pid"] == server.process.pid
        assert server.url.startswith("http://127.0.0.1:") and not server.url.endswith(":0")
        record = house_data[1].drop(columns="price").iloc[0].to_dict()
        capsys.readouterr()
        command = ["-p", str(registered_project), "predict", "houses", "--json"]
        assert run_cli([*command, json.dumps(record), "--token", PREDICT_TOKEN]) == 0
        [prediction] = json.loads(capsys.readouterr().out)
        assert prediction["version"] == 1
    # recorded_server checked the clean stop: exit code 0, server.json removed


def test_a_stale_address_of_a_killed_server_does_not_mislead(
    registered_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from modelpilot.cli._remote import address_file, write_address

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    file = address_file(registered_project)
    stale = _closed_url()
    write_address(file, stale, pid=dead.pid)
    try:
        # The process that wrote it is gone: the project's own host and port are used.
        assert run_cli(["-p", str(registered_project), "status", "houses"]) == 2
        port = yaml.safe_load((registered_project / "modelpilot.yaml").read_text())["serving"]
        assert capsys.readouterr().err.strip() == _unreachable(f"http://127.0.0.1:{port['port']}")
        # A live process that does not listen there (its pid reused): one line naming the URL.
        write_address(file, stale, pid=os.getpid())
        assert run_cli(["-p", str(registered_project), "status", "houses"]) == 2
        assert capsys.readouterr().err.strip() == _unreachable(stale)
    finally:
        file.unlink(missing_ok=True)
