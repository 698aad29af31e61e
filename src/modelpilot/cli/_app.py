"""The top of the command line: registers every command, then runs one.

The command modules import the app from ``cli._root``; this module imports them (through
``cli._commands``), so the imports go one way only.
"""

from __future__ import annotations

from modelpilot.cli import _commands  # noqa: F401 - registers the commands
from modelpilot.cli._root import app, console, err_console, run_app

__all__ = ["app", "console", "err_console", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 a check failed, 2 bad input or usage)."""
    return run_app(argv)
