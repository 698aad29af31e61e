"""Fixtures of the batch scoring tests: the house-price project with a model that raises on
marked rows (:mod:`marked_model`) registered beside its own."""

from __future__ import annotations

from pathlib import Path

import joblib
import pandas as pd
import pytest
from marked_model import MARKED, marked_house_model

from project_helpers import build_project, register


@pytest.fixture(scope="module")
def marked_model_file(
    tmp_path_factory: pytest.TempPathFactory, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> Path:
    path = tmp_path_factory.mktemp("marked") / "marked.joblib"
    joblib.dump(marked_house_model(house_data[0]), path)
    return path


@pytest.fixture(scope="module")
def batch_project(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
    marked_model_file: Path,
) -> Path:
    """The house-price project, with the marked model registered (production) beside its own."""
    directory = tmp_path_factory.mktemp("batch")
    build_project(directory, house_data[1], house_model_file, key_metrics=[])
    register(directory, marked_model_file, name=MARKED, production=True, trust=True)
    return directory
