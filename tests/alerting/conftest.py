"""Fixtures of the alerting tests: a fake clock, a webhook receiver, projects on disk."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from alerting_helpers import CANARY_RULES, HookServer, hook_server

from fake_clock import FakeClock
from modelpilot.project import Project
from project_helpers import register, write_project


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    with hook_server() as running:
        yield running


@pytest.fixture
def project(project_dir: Path, clean_environ: None) -> Iterator[Project]:
    """The house-price project (no model registered), its database opened."""
    opened = Project.open(project_dir, environ={})
    yield opened
    opened.engine.dispose()


@pytest.fixture(scope="session")
def versions_template(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Path:
    """A project with the house model registered twice: v1 in production, v2 a candidate.
    Tests copy it."""
    directory = write_project(
        tmp_path_factory.mktemp("alerting") / "project",
        settings={"alerts": CANARY_RULES},
        holdout=house_data[1],
    )
    register(directory, house_model_file, production=True)
    register(directory, house_model_file, production=False)
    return directory


@pytest.fixture
def versions_project(versions_template: Path, tmp_path: Path) -> Path:
    """A private copy of the two-version project (its database and artifacts included)."""
    return Path(shutil.copytree(versions_template, tmp_path / "project"))
