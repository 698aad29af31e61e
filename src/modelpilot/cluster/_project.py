"""The project a local cluster serves: the house-price example with a small linear model,
its metadata in the cluster's PostgreSQL, settings for several replicas behind a balancer."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["CLUSTER_SETTINGS", "DEPLOYMENT", "build_project", "merge_settings"]

DEPLOYMENT = "houses"
#: What differs from a one-process project: a drain longer than the balancer's health check
#: takes to notice (500 ms), answers only once their log rows are committed (so a replica
#: killed with -9 loses no answered prediction), traffic summed every 2 s.
CLUSTER_SETTINGS: dict[str, Any] = {
    "serving": {"drain_s": 2.0, "open_predict": True},
    "logging": {"durable": True},
    "monitoring": {"interval_s": 2},
}


def merge_settings(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` (a project file's sections) with ``extra`` merged in, nested mappings too.

    Examples
    --------
    >>> merge_settings({"serving": {"port": 8000, "workers": 1}}, {"serving": {"workers": 2}})
    {'serving': {'port': 8000, 'workers': 2}}
    """
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge_settings(out[key], value)
        else:
            out[key] = value
    return out


def build_project(
    directory: Path,
    database_url: str,
    *,
    settings: Mapping[str, Any] | None = None,
    rows: int = 2000,
) -> Path:
    """Write ``modelpilot.yaml``, train and register v1 of a linear house-price model (in
    production) on the database at ``database_url``; the project's directory."""
    import pandas as pd
    import skops.io as sio
    from sklearn.compose import make_column_transformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from modelpilot.datasets import HOUSE_FEATURES, house_prices
    from modelpilot.project import Project
    from modelpilot.registry import register_model
    from modelpilot.spec import render_project

    directory.mkdir(parents=True, exist_ok=True)
    text = render_project(
        project=DEPLOYMENT, task="regression", target="price", features=HOUSE_FEATURES
    )
    merged = merge_settings(merge_settings(yaml.safe_load(text), CLUSTER_SETTINGS), settings or {})
    (directory / "modelpilot.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    frame = house_prices(rows, seed=7)
    train, holdout = frame.iloc[: rows * 4 // 5], frame.iloc[rows * 4 // 5 :]
    holdout.to_parquet(directory / "holdout.parquet")
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
        remainder=SimpleImputer(),
    )
    model = make_pipeline(encode, LinearRegression())
    model.fit(train.drop(columns="price"), train["price"])
    artifact = directory / "houses.skops"
    sio.dump(model, artifact)
    pd.DataFrame(train).to_parquet(directory / "train.parquet")
    project = Project.open(directory, environ={"MODELPILOT_DATABASE_URL": database_url})
    try:
        version = register_model(
            project, artifact, name=DEPLOYMENT, eval_file=directory / "holdout.parquet"
        )
        project.registry.set_alias(
            DEPLOYMENT, "production", version.version, actor="cluster", reason="first version"
        )
    finally:
        project.engine.dispose()
    return directory
