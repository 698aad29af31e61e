"""Helpers every test folder uses to write projects, register models and run the CLI
in-process: the house-price project of the demo, as a user builds it with the CLI."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from live_server import DEPLOYMENT
from modelpilot.cli import run
from modelpilot.cluster import merge_settings
from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.project import Project
from modelpilot.spec import FeatureSpec, render_project
from modelpilot.store import PredictionStore

__all__ = [
    "DEPLOYMENT",
    "as_instances",
    "build_project",
    "merge_settings",
    "open_prediction_log",
    "register",
    "run_cli",
    "without_modelpilot_environ",
    "write_project",
]


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


def as_instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a feature frame as JSON-ready records (missing values as null)."""
    features = frame.drop(columns="price", errors="ignore")
    records: list[dict[str, Any]] = (
        features.astype(object).where(features.notna(), None).to_dict("records")
    )
    return records


def write_project(
    directory: Path,
    *,
    settings: Mapping[str, Any] | None = None,
    features: Sequence[FeatureSpec] = HOUSE_FEATURES,
    key_metrics: Sequence[str] | None = None,
    holdout: pd.DataFrame | None = None,
) -> Path:
    """``modelpilot.yaml`` of the house-price project, ``settings`` merged into its sections
    (nested mappings too); ``holdout.parquet`` beside it when a ``holdout`` is given."""
    directory.mkdir(parents=True, exist_ok=True)
    text = render_project(
        project=DEPLOYMENT,
        task="regression",
        target="price",
        features=features,
        key_metrics=key_metrics,
    )
    if settings:
        text = yaml.safe_dump(merge_settings(yaml.safe_load(text), settings), sort_keys=False)
    (directory / "modelpilot.yaml").write_text(text, encoding="utf-8")
    if holdout is not None:
        holdout.to_parquet(directory / "holdout.parquet")
    return directory


def register(
    directory: Path,
    model_file: Path,
    *,
    production: bool,
    name: str | None = None,
    data: Path | None = None,
    eval_file: Path | None = None,
    trust: bool = False,
) -> int:
    """``modelpilot register MODEL --eval holdout.parquet`` (``--alias production``,
    ``--name``, ``--data``, ``--trust`` as asked); returns the new version's
    number."""
    holdout = eval_file or directory / "holdout.parquet"
    args = ["-p", str(directory), "register", str(model_file), "--eval", str(holdout)]
    args += ["--alias", "production"] if production else []
    args += ["--name", name] if name else []
    args += ["--data", str(data)] if data is not None else []
    args += ["--trust"] if trust else []
    assert run_cli(args) == 0, f"registering {model_file} failed"
    project = Project.open(directory, environ={})
    try:
        return project.registry.latest_version(name or DEPLOYMENT)
    finally:
        project.engine.dispose()


def build_project(
    directory: Path,
    holdout: pd.DataFrame,
    model_file: Path,
    *,
    train: pd.DataFrame | None = None,
    settings: Mapping[str, Any] | None = None,
    features: Sequence[FeatureSpec] = HOUSE_FEATURES,
    key_metrics: Sequence[str] | None = None,
) -> Path:
    """A project whose model (``model_file``) is registered as ``production``, evaluated on
    ``holdout``; with ``train``, its reference profile is built from ``train.csv``."""
    write_project(
        directory, settings=settings, features=features, key_metrics=key_metrics, holdout=holdout
    )
    data = None
    if train is not None:
        data = directory / "train.csv"
        train.to_csv(data, index=False)
    register(directory, model_file, production=True, data=data)
    return directory


@contextlib.contextmanager
def open_prediction_log(directory: Path) -> Iterator[PredictionStore]:
    """The project's prediction log, read from the test process (the server may be gone)."""
    project = Project.open(directory, environ={})
    try:
        yield project.prediction_log
    finally:
        project.engine.dispose()
