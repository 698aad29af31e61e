"""Fixtures of the rollout tests: projects with a production version and candidates, a fake
clock and a controller on it, and one real server shared by the end-to-end modules."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from rollout_helpers import (
    CONTROLLER_ROLLOUT,
    ControllerHarness,
    ControllerVersions,
    constant_model,
    linear_model,
    open_controller,
)
from rollout_live import LiveProject, build_live_project, live_server
from threadpoolctl import threadpool_limits

from fake_clock import FakeClock
from live_server import LiveServer
from project_helpers import register, write_project


@pytest.fixture(scope="module", autouse=True)
def one_openmp_thread() -> Iterator[None]:
    """One OpenMP thread for the models in this process (the servers get OMP_NUM_THREADS=1).

    On a shared, busy machine the gradient-boosted trees' OpenMP threads spin-wait for CPUs
    they do not get: a one-row prediction took 0.34 s instead of 0.02 s here, and training
    the house model 12.5 s instead of 0.5 s.
    """
    with threadpool_limits(limits=1, user_api="openmp"):
        yield


@pytest.fixture(scope="session")
def house_model(request: pytest.FixtureRequest) -> Path:
    """The session's house model file, trained with one OpenMP thread if it is not yet."""
    with threadpool_limits(limits=1, user_api="openmp"):
        path: Path = request.getfixturevalue("house_model_file")
    return path


# ---- the controller with a fake clock ---------------------------------------------------------
@pytest.fixture(scope="session")
def controller_template(
    tmp_path_factory: pytest.TempPathFactory, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> tuple[Path, ControllerVersions]:
    """A project with the default rollout settings (4 steps of 10 minutes): v1 in production,
    two more copies of it, and a rejected constant model. Tests copy it.

    The model is a linear one: the controller never looks at what a model predicts, and it
    loads in milliseconds where the gradient-boosted trees take half a second.
    """
    train, holdout = house_data
    directory = write_project(
        tmp_path_factory.mktemp("controller") / "project",
        holdout=holdout,
        settings={"rollout": CONTROLLER_ROLLOUT},
    )
    model_file = linear_model(train, directory.parent / "linear.skops")
    versions = ControllerVersions(
        primary=register(directory, model_file, production=True),
        candidate=register(directory, model_file, production=False),
        other=register(directory, model_file, production=False),
        rejected=register(
            directory, constant_model(train, directory.parent / "constant.skops"), production=False
        ),
    )
    return directory, versions


@pytest.fixture
def versions(controller_template: tuple[Path, ControllerVersions]) -> ControllerVersions:
    return controller_template[1]


@pytest.fixture
def project_copy(controller_template: tuple[Path, ControllerVersions], tmp_path: Path) -> Path:
    """A private copy of the template project (its database and artifacts included)."""
    return Path(shutil.copytree(controller_template[0], tmp_path / "project"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def harness(project_copy: Path, clock: FakeClock) -> Iterator[ControllerHarness]:
    """A "server process" on the project copy: deployments loaded, controller attached."""
    running = open_controller(project_copy, clock)
    yield running
    running.close()


# ---- the real server --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def live_project(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model: Path,
) -> LiveProject:
    with threadpool_limits(limits=1, user_api="openmp"):  # registering evaluates the models
        return build_live_project(
            tmp_path_factory.mktemp("live") / "project", house_data, house_model
        )


@pytest.fixture(scope="session")
def server(live_project: LiveProject) -> Iterator[LiveServer]:
    """One real server for the end-to-end modules (each test leaves no rollout running)."""
    with live_server(live_project.directory) as running:
        yield running


@pytest.fixture
def idle_server(server: LiveServer) -> LiveServer:
    """The shared server with no rollout in progress (an earlier failed test may have left
    one)."""
    if server.status()["rollout"] is not None:
        assert server.admin("abort", reason="test cleanup").status_code == 200
    return server
