"""Fixtures of the edge tests: a house-price project with two registered versions, a profile
and a signing key pair, built once per module."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from project_helpers import build_project, register, run_cli

#: Gates small enough for a test's traffic, and a canary judged as soon as it has it.
EDGE_SETTINGS = {
    "rollout": {
        "gates": [
            {"metric": "error_rate", "threshold": 0.05, "min_samples": 20},
            {"metric": "prediction_shift", "threshold": 0.9, "min_samples": 20},
        ],
        "step_interval_s": 0.5,
        "analysis_interval_s": 0.05,
        "failure_limit": 1,
    },
    "monitoring": {"drift": {"interval_s": 0.1, "min_rows": 20}},
}


@pytest.fixture(scope="session")
def second_model_file(
    tmp_path_factory: pytest.TempPathFactory, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> Path:
    """Another house model (fewer, other trees): the candidate of the fleet's rollouts."""
    train = house_data[0]
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
        remainder="passthrough",
    )
    model = make_pipeline(encode, HistGradientBoostingRegressor(max_iter=30, random_state=1))
    path = tmp_path_factory.mktemp("second") / "house2.skops"
    sio.dump(model.fit(train.drop(columns="price"), train["price"]), path)
    return path


@pytest.fixture(scope="module")
def edge_project(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
    second_model_file: Path,
) -> Path:
    """v1 (production) and v2 of the house model, a profile, and the project's key pair."""
    train, holdout = house_data
    directory = build_project(
        tmp_path_factory.mktemp("edge"),
        holdout,
        house_model_file,
        train=train,
        settings=EDGE_SETTINGS,
    )
    register(directory, second_model_file, production=False, data=directory / "train.csv")
    assert run_cli(["-p", str(directory), "keys", "create"]) == 0
    return directory


@pytest.fixture(scope="module")
def public_key(edge_project: Path) -> str:
    return (edge_project / ".modelpilot" / "keys" / "edge-signing.pub").read_text().strip()
