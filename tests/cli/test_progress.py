"""Long commands show a progress bar to a person at a terminal, and only there."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from live_server import server_environ
from modelpilot.cli._root import shows_progress


@pytest.mark.parametrize(
    ("quiet", "terminal", "environ", "shown"),
    [
        (False, True, {}, True),
        (True, True, {}, False),  # --json
        (False, False, {}, False),  # stdout is a pipe or a file
        (False, True, {"CI": "true"}, False),
    ],
)
def test_when_a_progress_bar_is_shown(
    quiet: bool, terminal: bool, environ: dict[str, str], shown: bool
) -> None:
    assert shows_progress(quiet=quiet, terminal=terminal, environ=environ) is shown


def test_data_check_at_a_terminal_draws_a_bar(project_dir: Path) -> None:
    # A real pseudo-terminal: what a person sees, not what a pipe gets.
    leader, follower = pty.openpty()
    environ = {k: v for k, v in server_environ().items() if k != "CI"}
    command = [
        str(Path(sys.executable).with_name("modelpilot")), "-p", str(project_dir), "data",
        "check", str(project_dir / "train.csv"),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=follower, stderr=follower, env={**environ, "COLUMNS": "80"}
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(120) == 0
    screen = b"".join(chunks).decode(errors="replace")
    assert "checking train.csv" in screen
    assert "passed" in screen
