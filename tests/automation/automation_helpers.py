"""Helpers of the automation tests: a project with a production model, labelled predictions,
a fake clock and the CLI in-process. The real server comes from :mod:`live_server`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from live_server import DEPLOYMENT
from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.project import Project
from modelpilot.spec import render_project
from modelpilot.store import FeedbackItem, PredictionRecord
from project_helpers import merge_settings, run_cli


def as_instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows of a feature frame as JSON-ready records (missing values as null)."""
    features = frame.drop(columns="price", errors="ignore")
    return features.astype(object).where(features.notna(), None).to_dict("records")


def write_project(directory: Path, settings: Mapping[str, Any] | None = None) -> Path:
    """The house-price project file, with ``settings`` merged in (e.g. ``{"retrain": ...}``)."""
    directory.mkdir(parents=True, exist_ok=True)
    text = render_project(
        project=DEPLOYMENT, task="regression", target="price", features=HOUSE_FEATURES
    )
    if settings:
        text = yaml.safe_dump(merge_settings(yaml.safe_load(text), settings), sort_keys=False)
    (directory / "modelpilot.yaml").write_text(text, encoding="utf-8")
    return directory


def build_project(
    directory: Path,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    model_file: Path,
    *,
    settings: Mapping[str, Any] | None = None,
) -> Path:
    """A project whose model is registered with --data, --eval and alias production."""
    write_project(directory, settings)
    train.to_csv(directory / "train.csv", index=False)
    holdout.to_parquet(directory / "holdout.parquet")
    args = ["-p", str(directory), "register", str(model_file)]
    args += ["--data", str(directory / "train.csv")]
    args += ["--eval", str(directory / "holdout.parquet"), "--alias", "production"]
    assert run_cli(args) == 0
    return directory


def open_project(directory: Path) -> Project:
    return Project.open(directory, environ={})


def add_labelled_predictions(
    project: Project, frame: pd.DataFrame, *, ts: float, prefix: str = "p"
) -> list[str]:
    """Log ``frame``'s rows as online predictions of production, each labelled with its price."""
    production = project.registry.resolve(f"{DEPLOYMENT}@production")
    ids = [f"{prefix}{i:05d}" for i in range(len(frame))]
    records = [
        PredictionRecord(
            pid,
            ts,
            production.name,
            production.version,
            row,
            {"prediction": float(price)},
        )
        for pid, row, price in zip(ids, as_instances(frame), frame["price"], strict=True)
    ]
    project.prediction_log.append(records)
    results = project.prediction_log.add_feedback(
        [FeedbackItem(pid, float(price)) for pid, price in zip(ids, frame["price"], strict=True)]
    )
    assert all(r.accepted for r in results)
    return ids
