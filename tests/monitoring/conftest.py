"""Fixtures of the monitoring tests: one monitored project with a plain deployment and two
pipelines, and one real server for it, shared by the package's end-to-end modules."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import skops.io as sio
from monitoring_helpers import CHAINED, CLEANED
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline, make_pipeline

from live_server import DEPLOYMENT, LiveServer, auth, live_server
from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.project import Project
from modelpilot.registry import register_model
from modelpilot.runtime import load_runtime
from modelpilot.spec import FeatureSpec
from project_helpers import register, write_project

STEPS_MODULE = "listing_steps"
STEPS_SOURCE = '''
"""Preprocessing of the listings, with the bug the monitoring tests look for."""

import pandas as pd

# The bug: "excellent" is missing from the table, so those houses lose their condition.
CONDITIONS = {"poor": "poor", "fair": "fair", "good": "good"}


def clean(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["condition"] = out["condition"].map(CONDITIONS)
    if (out["bedrooms"] > out["size_sqft"] / 50).any():
        raise ValueError("more bedrooms than the floor area allows")
    return out
'''
MONITORED_SETTINGS = {
    "monitoring": {"interval_s": 2, "drift": {"interval_s": 4, "min_rows": 50}},
    "deployments": [
        {"name": DEPLOYMENT},
        {
            "name": CLEANED,
            "model": "houses-clean",
            "steps": [{"name": "clean", "function": f"{STEPS_MODULE}:clean"}],
        },
        {
            "name": CHAINED,
            "model": "houses-chain",
            "steps": [{"name": "estimate", "model": "houses@production"}],
        },
    ],
}


def train_chain_model(train: pd.DataFrame, house_model_file: Path) -> Pipeline:
    """A model of the price from the house model's estimate (the second of two in sequence)."""
    features = train.drop(columns="price")
    estimate = load_runtime(house_model_file).predict(features)
    model = make_pipeline(
        make_column_transformer(("passthrough", ["estimate"])), LinearRegression()
    )
    return model.fit(features.assign(estimate=estimate), train["price"])


@pytest.fixture(scope="package")
def monitored_project(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Path:
    """The house-price project with three deployments: ``houses`` (the model alone),
    ``cleaned`` (a preprocessing function, then the model) and ``chained`` (the house model,
    then a second model on its estimate)."""
    train, holdout = house_data
    directory = write_project(tmp_path_factory.mktemp("monitored"), settings=MONITORED_SETTINGS)
    train.to_parquet(directory / "train.parquet")
    holdout.to_parquet(directory / "holdout.parquet")
    (directory / f"{STEPS_MODULE}.py").write_text(textwrap.dedent(STEPS_SOURCE), "utf-8")
    register(directory, house_model_file, production=True, data=directory / "train.parquet")
    register(directory, house_model_file, name="houses-clean", production=True)
    chain_file = directory / "chain.skops"
    sio.dump(train_chain_model(train, house_model_file), chain_file)
    project = Project.open(directory, environ={})
    # Registered without --eval (the holdout has no estimate column), so without targets.
    unscored = Project(directory, project.spec.model_copy(update={"key_metrics": []}), {})
    estimate = FeatureSpec(name="estimate", type="numeric")
    version = register_model(
        unscored, chain_file, name="houses-chain", features=[*HOUSE_FEATURES, estimate]
    )
    project.registry.set_alias("houses-chain", "production", version.version, actor="tests")
    project.engine.dispose()
    return directory


@pytest.fixture(scope="package")
def monitored_server(monitored_project: Path) -> Iterator[LiveServer]:
    with live_server(monitored_project) as running:
        yield running


@pytest.fixture
def http(monitored_server: LiveServer) -> Iterator[httpx.Client]:
    """A client of the monitored server with a predict token."""
    with httpx.Client(base_url=monitored_server.url, headers=auth(), timeout=60.0) as client:
        yield client
