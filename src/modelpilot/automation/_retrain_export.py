"""What a retraining run trains on: the production version's training data plus the logged
inputs that have labels, and the newest labels as the holdout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from modelpilot.data import read_table
from modelpilot.errors import ModelpilotError
from modelpilot.project import Project

__all__ = ["export_data"]


def export_data(
    project: Project, model: str, directory: Path, *, now: float
) -> tuple[Path, Path, dict[str, Any]]:
    """Write ``train.parquet`` and ``holdout.parquet`` into ``directory``; returns their
    paths and the counts of reference, logged and holdout rows."""
    spec = project.spec
    registry = project.registry
    production = registry.resolve(f"{model}@production")
    names = [f.name for f in production.features]
    frames = []
    reference_path = production.lineage.get("data_path")
    reference = pd.DataFrame()
    if reference_path and Path(reference_path).is_file():
        reference = read_table(reference_path, types={f.name: f.type for f in production.features})
        reference = reference[[c for c in [*names, spec.target] if c in reference]]
        frames.append(reference.assign(_source="reference"))
    labeled = project.prediction_log.labeled(model=model, start=now - project.spec.retrain.window_s)
    labeled = labeled[labeled["source"] == "online"] if not labeled.empty else labeled
    recent = pd.DataFrame()
    if not labeled.empty:
        labeled = labeled.sort_values("label_ts", kind="stable")
        recent = labeled[[c for c in names if c in labeled]].copy()
        recent[spec.target] = labeled["label"].to_numpy()
        recent = recent.drop_duplicates()
    if len(recent) >= 10:
        # The holdout is the newest labels: a retrained model is judged on the world as it
        # is now, which is why it was retrained.
        cut = len(recent) - max(1, int(len(recent) * project.spec.retrain.holdout_fraction))
        holdout, fresh = recent.iloc[cut:], recent.iloc[:cut]
    else:
        holdout, fresh = pd.DataFrame(), recent
    if holdout.empty:
        holdout_path = production.lineage.get("eval_path")
        if not holdout_path or not Path(holdout_path).is_file():
            raise ModelpilotError(
                "no labelled recent data and no holdout file to evaluate a retrained model on"
            )
        holdout = read_table(holdout_path)
    frames.append(fresh.assign(_source="logged"))
    train = pd.concat(frames, ignore_index=True)
    directory.mkdir(parents=True, exist_ok=True)
    train_path, holdout_path_out = directory / "train.parquet", directory / "holdout.parquet"
    # `_source` ("reference" or "logged") lets a trainer weigh the new rows; drop it or use it.
    train.to_parquet(train_path)
    holdout.to_parquet(holdout_path_out)
    counts = {
        "reference_rows": len(reference),
        "logged_rows": len(fresh),
        "holdout_rows": len(holdout),
    }
    return train_path, holdout_path_out, counts
