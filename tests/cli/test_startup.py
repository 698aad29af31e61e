"""The command line's start: light commands import no model library; --version; completion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelpilot import __version__
from modelpilot.cli._app import main

pytestmark = pytest.mark.usefixtures("clean_environ")

# Runs one command in a fresh interpreter, then prints which heavy libraries it imported.
_PROBE = """
import json, sys
from modelpilot.cli import run
code = run(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sklearn", "scipy", "pandas", "alembic"})
print("\\n" + json.dumps({"code": code, "heavy": heavy}))
"""


def _probe(*args: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    found: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


@pytest.mark.parametrize(
    "command", [["models", "list"], ["alerts"], ["alias", "history", "houses"], ["--help"]]
)
def test_commands_that_read_the_database_import_no_model_library(
    project_dir: Path, command: list[str]
) -> None:
    # Importing scikit-learn and SciPy made `models list` take 2.3-4.3 s; the database is
    # already at the newest migration after the first command, so Alembic is not needed either.
    assert main(["-p", str(project_dir), "models", "list"]) == 0
    found = _probe("-p", str(project_dir), *command)
    assert found["heavy"] == [], f"`modelpilot {' '.join(command)}` imported {found['heavy']}"


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"modelpilot {__version__}"


def test_shell_completion_is_offered(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--install-completion" in out and "--show-completion" in out
    # What the installed completion script asks: the completions of `modelpilot mod<TAB>`.
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("modelpilot"))],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "_MODELPILOT_COMPLETE": "complete_bash",
            "COMP_WORDS": "modelpilot mod",
            "COMP_CWORD": "1",
        },
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["models"]
