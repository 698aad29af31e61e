"""The `modelpilot` command line (Typer + rich)."""

from __future__ import annotations

import sys

from modelpilot.cli._app import app
from modelpilot.cli._app import main as run

__all__ = ["app", "main", "run"]


def main() -> None:
    """Console-script entry point."""
    sys.exit(run(sys.argv[1:]))
