"""Shared fixtures: a small house-price project on disk with a trained, registered model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder

from modelpilot.datasets import HOUSE_FEATURES, house_prices
from modelpilot.spec import render_project


def train_house_model(frame: pd.DataFrame, *, seed: int = 0) -> Pipeline:
    """The demo's model: one-hot categories, gradient-boosted trees."""
    features = frame.drop(columns="price")
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
        remainder="passthrough",
    )
    model = make_pipeline(encode, HistGradientBoostingRegressor(max_iter=60, random_state=seed))
    return model.fit(features, frame["price"])


@pytest.fixture(scope="session")
def house_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, holdout) frames of the synthetic house-price data set."""
    frame = house_prices(3000, seed=7)
    return frame.iloc[:2400].reset_index(drop=True), frame.iloc[2400:].reset_index(drop=True)


@pytest.fixture(scope="session")
def house_model_file(
    tmp_path_factory: pytest.TempPathFactory, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> Path:
    """A trained house-price pipeline saved with skops (trained once per test session)."""
    path = tmp_path_factory.mktemp("model") / "house.skops"
    sio.dump(train_house_model(house_data[0]), path)
    return path


@pytest.fixture
def project_dir(tmp_path: Path, house_data: tuple[pd.DataFrame, pd.DataFrame]) -> Path:
    """A fresh project directory: modelpilot.yaml, train.csv, holdout.parquet; no models yet."""
    train, holdout = house_data
    (tmp_path / "modelpilot.yaml").write_text(
        render_project(project="houses", task="regression", target="price",
                       features=HOUSE_FEATURES),
        encoding="utf-8",
    )
    train.to_csv(tmp_path / "train.csv", index=False)
    holdout.to_parquet(tmp_path / "holdout.parquet")
    return tmp_path


@pytest.fixture
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No MODELPILOT_* variables from the developer's shell leak into a test."""
    for key in list(os.environ):
        if key.startswith("MODELPILOT_") and not key.startswith("MODELPILOT_TEST_"):
            monkeypatch.delenv(key, raising=False)
    yield
