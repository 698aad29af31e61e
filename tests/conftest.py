"""Shared fixtures: a small house-price project on disk with a trained, registered model."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sqlalchemy import create_engine, text

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
        render_project(
            project="houses", task="regression", target="price", features=HOUSE_FEATURES
        ),
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


def postgres_url() -> str:
    """The PostgreSQL test server's URL; skips without one, but fails on CI, which must not skip."""
    url = os.environ.get("MODELPILOT_TEST_POSTGRES_URL")
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(
            "MODELPILOT_TEST_POSTGRES_URL is not set, and CI must test the PostgreSQL backend; "
            ".ci/run starts a server and sets it",
            pytrace=False,
        )
    pytest.skip("set MODELPILOT_TEST_POSTGRES_URL=postgresql+psycopg://... to test PostgreSQL")


@pytest.fixture(params=["sqlite-file", "sqlite-memory", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty metadata database on each backend the store supports.

    On PostgreSQL every test gets a schema of its own (dropped afterwards), so reruns and
    parallel workers never see each other's rows.
    """
    if request.param == "sqlite-file":
        yield f"sqlite:///{tmp_path / 'metadata.db'}"
        return
    if request.param == "sqlite-memory":
        yield "sqlite://"
        return
    base = postgres_url()
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()
