"""Shared fixtures: a small house-price project on disk with a trained, registered model."""

from __future__ import annotations

import os

# One OpenMP thread in the test processes and in every process they start (servers, trainers,
# CLI runs inherit the environment): the suite runs on 2 xdist workers on 2 cores, and the
# model calls are small, so a second OpenMP thread per process only spin-waits for a CPU it
# does not get. Registering a model (its permutation importance: ~30 predictions of 600 rows)
# cost ~9 s of CPU that way on a busy machine instead of well under one. Set before NumPy and
# scikit-learn load their OpenMP runtime; ``pytest_configure`` limits one already loaded.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
from modelpilot.store import PredictionStore
from modelpilot.types import Clock


def train_house_model(frame: pd.DataFrame, *, seed: int = 0) -> Pipeline:
    """The demo's model: one-hot categories, gradient-boosted trees."""
    features = frame.drop(columns="price")
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
        remainder="passthrough",
    )
    model = make_pipeline(encode, HistGradientBoostingRegressor(max_iter=60, random_state=seed))
    return model.fit(features, frame["price"])


def pytest_configure(config: pytest.Config) -> None:
    """One OpenMP thread, even where a plugin loaded the OpenMP runtime before this module;
    Arrow's threads as they are by default."""
    import pyarrow
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    threads = os.environ["OMP_NUM_THREADS"]
    if threads.isdigit():  # not a list of nested levels ("4,2"), which OpenMP takes as is
        threadpool_limits(limits=int(threads), user_api="openmp")
    # Arrow sizes its own thread pool by OMP_NUM_THREADS too; give it its default back, as a
    # user's process has it (a CSV read on one thread words its errors differently).
    pyarrow.set_cpu_count(os.cpu_count() or 1)


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


DATABASES = ["sqlite-file", "sqlite-memory", "postgresql"]


@contextmanager
def _database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite-file":
        yield f"sqlite:///{tmp_path / 'metadata.db'}"
        return
    if kind == "sqlite-memory":
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


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty metadata database on each backend the store supports.

    On PostgreSQL every test gets a schema of its own (dropped afterwards), so reruns and
    parallel workers never see each other's rows.
    """
    with _database(request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3 stand-in (moto's server, real HTTP on 127.0.0.1) with a bucket ``logs``;
    credentials are the fake ones of :func:`s3_options`."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=url, **S3_CLIENT).create_bucket(Bucket="logs")
    yield url
    server.stop()


S3_CLIENT = {
    "aws_access_key_id": "test",
    "aws_secret_access_key": "test",
    "region_name": "us-east-1",
}
#: The ``AWS_*`` variables a Delta log on the moto server is opened with.
S3_ENVIRON = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture
def s3_environ(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The moto server's ``AWS_*`` variables (``AWS_ENDPOINT_URL`` too) set in ``os.environ``,
    for code that reads them there (Dask workers); returns a boto3 S3 client of the server."""
    import boto3

    for key, value in {**S3_ENVIRON, "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(key, value)
    return boto3.client("s3", endpoint_url=s3_endpoint, **S3_CLIENT)


LOG_BACKENDS = [*DATABASES, "delta", "delta-s3"]


@pytest.fixture(params=LOG_BACKENDS)
def log_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[Clock], PredictionStore]]:
    """Opens an empty prediction log on each backend (``log_backend(clock)``): the metadata
    database's (SQLite file and in-memory, PostgreSQL), Delta tables in a local directory and
    on the moto S3 server."""
    from modelpilot.store import DeltaPredictionLog, PredictionLog, create_database
    from modelpilot.store._delta_rows import storage_options

    kind = request.param
    if kind.startswith("delta"):
        uri = str(tmp_path / "log")
        if kind == "delta-s3":
            uri = f"s3://logs/{uuid.uuid4().hex}"
        options = storage_options(
            uri,
            endpoint_url=request.getfixturevalue("s3_endpoint") if kind == "delta-s3" else None,
            environ=S3_ENVIRON,
        )
        yield lambda clock: DeltaPredictionLog(uri, storage_options=options, clock=clock)
        return
    with _database(kind, tmp_path) as url:
        engine = create_database(url)
        yield lambda clock: PredictionLog(engine, clock=clock)
        engine.dispose()
