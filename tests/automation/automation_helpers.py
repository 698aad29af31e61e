"""Helpers of the automation tests: a project with a production model, labelled predictions,
a fake clock and the CLI in-process. The real server comes from :mod:`live_server`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from live_server import DEPLOYMENT
from modelpilot.project import Project
from modelpilot.store import FeedbackItem, PredictionRecord
from project_helpers import as_instances


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
