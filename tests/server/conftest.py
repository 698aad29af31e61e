"""Fixtures of the serving tests: projects with registered models, and the real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import joblib
import pandas as pd
import pytest
from flaky_model import FlakyRegressor

from live_server import LiveServer, live_server
from project_helpers import build_project


@pytest.fixture(scope="session")
def flaky_model_file(
    tmp_path_factory: pytest.TempPathFactory, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> Path:
    """A joblib file of :class:`FlakyRegressor`: loads only with --trust, raises on one size."""
    train = house_data[0]
    path = tmp_path_factory.mktemp("flaky") / "flaky.joblib"
    joblib.dump(FlakyRegressor().fit(train.drop(columns="price"), train["price"]), path)
    return path


@pytest.fixture(scope="module")
def served_project(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Path:
    """The house-price project with its model registered; modules override it as they need."""
    return build_project(tmp_path_factory.mktemp("served"), house_data[1], house_model_file)


@pytest.fixture(scope="module")
def server(served_project: Path) -> Iterator[LiveServer]:
    """One live server per test module, with a predict and an admin token in its environment."""
    with live_server(served_project) as running:
        yield running


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    """An HTTP client for the module's server, without credentials."""
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client
