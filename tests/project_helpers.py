"""Helpers every test folder uses to write projects and run the CLI in-process."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from modelpilot.cli import run

__all__ = [
    "merge_settings",
    "registered_houses_project",
    "run_cli",
    "without_modelpilot_environ",
]


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


def registered_houses_project(
    directory: Path,
    holdout: pd.DataFrame,
    model_file: Path,
    *,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """A project named houses (the house-price schema, ``settings`` merged into its file) whose
    model is registered, evaluated on ``holdout``, as ``production``."""
    import yaml

    from modelpilot.datasets import HOUSE_FEATURES
    from modelpilot.spec import render_project

    text = render_project(
        project="houses", task="regression", target="price", features=HOUSE_FEATURES
    )
    if settings:
        text = yaml.safe_dump(merge_settings(yaml.safe_load(text), settings), sort_keys=False)
    (directory / "modelpilot.yaml").write_text(text, encoding="utf-8")
    holdout.to_parquet(directory / "holdout.parquet")
    args = ["-p", str(directory), "register", str(model_file)]
    assert (
        run_cli([*args, "--eval", str(directory / "holdout.parquet"), "--alias", "production"]) == 0
    )
    return directory
