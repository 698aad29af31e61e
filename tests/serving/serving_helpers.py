"""Helpers of the serving tests: build a project with a registered model.

The real server comes from :mod:`live_server`.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from live_server import DEPLOYMENT, importable
from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.project import Project
from modelpilot.runtime import ModelRuntime, load_runtime
from modelpilot.spec import FeatureSpec, render_project
from modelpilot.store import PredictionLog
from project_helpers import merge_settings, run_cli

HERE = Path(__file__).parent


def as_instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a feature frame as JSON-ready records (missing values as null)."""
    features = frame.drop(columns="price", errors="ignore")
    return features.astype(object).where(features.notna(), None).to_dict("records")


def model_predictions(model_file: Path, frame: pd.DataFrame) -> list[float]:
    """What the model itself predicts on these rows, without any server in between."""
    features = frame.drop(columns="price", errors="ignore")
    return [float(v) for v in _runtime(model_file).predict(features)]


@functools.cache
def _runtime(model_file: Path) -> ModelRuntime:
    return load_runtime(model_file)


@contextlib.contextmanager
def open_prediction_log(directory: Path) -> Iterator[PredictionLog]:
    """The project's prediction log, read from the test process (the server may be gone)."""
    project = Project.open(directory, environ={})
    try:
        yield project.prediction_log
    finally:
        project.engine.dispose()


def build_project(
    directory: Path,
    holdout: pd.DataFrame,
    model_file: Path,
    *,
    settings: Mapping[str, Any] | None = None,
    features: Sequence[FeatureSpec] = HOUSE_FEATURES,
    key_metrics: Sequence[str] | None = None,
) -> Path:
    """A project directory whose model (``model_file``) is registered as ``production``.

    ``settings`` are merged into the rendered project file, e.g. ``{"logging": {"durable":
    True}}`` (the file already has ``logging`` and ``serving`` sections, so they are merged,
    not appended).
    """
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
    holdout.to_parquet(directory / "holdout.parquet")
    register(directory, model_file)
    return directory


def register(
    directory: Path, model_file: Path, *, name: str | None = None, trust: bool = False
) -> None:
    """``modelpilot register MODEL --eval holdout.parquet --alias production``."""
    holdout = str(directory / "holdout.parquet")
    args = ["-p", str(directory), "register", str(model_file), "--eval", holdout]
    args += ["--alias", "production", *(["--name", name] if name else [])]
    assert run_cli([*args, "--trust"] if trust else args) == 0


def importable_tests_env() -> dict[str, str]:
    """Environment for a server that must unpickle classes of this directory (flaky_model)."""
    return importable(HERE)
