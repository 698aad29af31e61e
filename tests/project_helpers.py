"""Helpers every test folder uses to write projects and run the CLI in-process."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from modelpilot.cli import run

__all__ = ["merge_settings", "run_cli", "without_modelpilot_environ"]


def merge_settings(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` (a project file's sections) with ``extra`` merged in, nested mappings too."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge_settings(out[key], value)
        else:
            out[key] = value
    return out


@contextlib.contextmanager
def without_modelpilot_environ() -> Iterator[None]:
    """No MODELPILOT_* variable of the developer's shell leaks into an in-process command."""
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key.startswith("MODELPILOT_") and not key.startswith("MODELPILOT_TEST_"):
                patch.delenv(key)
        yield


def run_cli(args: Sequence[str]) -> int:
    """``modelpilot ARGS`` in this process; returns the exit code."""
    with without_modelpilot_environ():
        return run(list(args))
