"""Blue-green smoke tests of pipeline deployments run the deployment's steps before the model.

A copy of the monitored project (``conftest.py``) gets a second version of each pipeline's
model; the controller loads the deployments as the server does (``PipelineBuilder.for_project``)
and switches them blue-green, smoke-testing the candidate first.
"""

from __future__ import annotations

import contextlib
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from monitoring_helpers import CHAINED, CLEANED

from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.inference import DeploymentManager, PipelineBuilder
from modelpilot.project import Project
from modelpilot.registry import register_model
from modelpilot.rollout import RolloutController, SmokeFailed
from modelpilot.spec import FeatureSpec
from project_helpers import run_cli

BROKEN_STEPS = """
import pandas as pd


def clean(frame: pd.DataFrame) -> pd.DataFrame:
    raise KeyError("condition_code")
"""


def _second_versions(directory: Path, house_model_file: Path) -> None:
    """houses-clean v2 and houses-chain v2: the same artifacts, not yet in production."""
    project = Project.open(directory, environ={})
    try:
        unscored = Project(directory, project.spec.model_copy(update={"key_metrics": []}), {})
        estimate = FeatureSpec(name="estimate", type="numeric")
        chain = directory / "chain.skops"
        register_model(unscored, chain, name="houses-chain", features=[*HOUSE_FEATURES, estimate])
    finally:
        project.engine.dispose()
    args = ["-p", str(directory), "register", str(house_model_file), "--name", "houses-clean"]
    assert run_cli([*args, "--eval", str(directory / "holdout.parquet")]) == 0


@pytest.fixture
def project_copy(monitored_project: Path, house_model_file: Path, tmp_path: Path) -> Path:
    directory = Path(shutil.copytree(monitored_project, tmp_path / "project"))
    _second_versions(directory, house_model_file)
    return directory


@contextlib.contextmanager
def _controller(directory: Path) -> Iterator[RolloutController]:
    project = Project.open(directory, environ={})
    manager = DeploymentManager(
        project.registry,
        project.spec.deployment_specs,
        settings=project.spec.serving,
        pipelines=PipelineBuilder.for_project(project),
    )
    manager.load_all()
    controller = RolloutController(project, manager)
    controller.attach()
    try:
        yield controller
    finally:
        manager.close()
        project.engine.dispose()


def test_blue_green_of_a_pipelines_model_smoke_tests_it_behind_the_steps(
    project_copy: Path,
) -> None:
    """The chain model needs the ``estimate`` its step makes: alone, every smoke row fails."""
    with _controller(project_copy) as controller:
        controller.deploy(CHAINED, 2, "blue-green", actor="tests")
        primary = controller.manager.get(CHAINED).primary
        assert (primary.version.name, primary.version.version) == ("houses-chain", 2)


def test_a_step_that_breaks_the_candidate_fails_its_smoke_test(project_copy: Path) -> None:
    (project_copy / "broken_steps.py").write_text(textwrap.dedent(BROKEN_STEPS), "utf-8")
    settings = yaml.safe_load((project_copy / "modelpilot.yaml").read_text("utf-8"))
    for deployment in settings["deployments"]:
        if deployment["name"] == CLEANED:
            deployment["steps"] = [{"name": "clean", "function": "broken_steps:clean"}]
    (project_copy / "modelpilot.yaml").write_text(yaml.safe_dump(settings), "utf-8")
    with _controller(project_copy) as controller:
        with pytest.raises(
            SmokeFailed,
            match=r"houses-clean:2 failed its smoke requests \(StepFailed: step 'clean' of "
            r"deployment 'cleaned' failed \(KeyError: 'condition_code'\)\)",
        ):
            controller.deploy(CLEANED, 2, "blue-green", actor="tests")
        assert controller.manager.get(CLEANED).primary.version.version == 1  # no switch
