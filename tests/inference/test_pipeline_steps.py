"""Pipelines in isolation: the steps' metrics with a fake clock, their failures, their spec."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelpilot.errors import ConfigError
from modelpilot.inference import FunctionStep, ModelStep, Pipeline, StepFailed, load_function
from modelpilot.monitoring import ServingMetrics
from modelpilot.spec import FeatureSpec, ProjectSpec

FEATURES = [
    FeatureSpec(name="size", type="numeric"),
    FeatureSpec(name="city", type="categorical"),
]


class TickingClock:
    """perf_counter's stand-in: every reading is ``step`` seconds after the one before."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


class SizeModel:
    """A model runtime that predicts ``10 * size`` (null where size is null)."""

    flavor, classes = "test", None

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["size"].to_numpy(dtype=float) * 10

    def predict_proba(self, frame: pd.DataFrame) -> None:
        return None


class Version:
    """The little of a ModelVersion a model step reads."""

    def __init__(self, name: str, features: list[FeatureSpec]) -> None:
        self.name, self.version, self.task, self.features = name, 1, "regression", features


def _frame() -> pd.DataFrame:
    return pd.DataFrame({"size": [1.0, 2.0, 3.0, None], "city": ["a", "b", "a", "b"]})


def _sample(metrics: ServingMetrics, name: str, step: str) -> float:
    value = metrics.registry.get_sample_value(name, {"deployment": "demo", "step": step})
    return 0.0 if value is None else value


def _pipeline(steps: list[Any], metrics: ServingMetrics, clock: TickingClock) -> Pipeline:
    return Pipeline("demo", steps, features=FEATURES, observer=metrics, clock=clock)


def test_each_step_reports_its_time_and_the_nulls_it_made() -> None:
    metrics = ServingMetrics(process=False)
    lookup = {"a": 1.0}  # the bug: no entry for "b"
    steps = [FunctionStep("encode", lambda f: f.assign(city_code=f["city"].map(lookup)))]
    output = _pipeline(steps, metrics, TickingClock(0.25)).run(
        _frame(), SizeModel(), FEATURES, task="regression"
    )

    assert output.predictions.tolist()[:3] == [10.0, 20.0, 30.0]
    # Two "b" rows lost their code: that is the step's doing. The null size came in null,
    # so the model's null prediction for it is the model step's one output null.
    assert _sample(metrics, "modelpilot_step_output_null_total", "encode") == 2
    assert _sample(metrics, "modelpilot_step_output_null_total", "model") == 1
    for step in ("encode", "model"):
        assert _sample(metrics, "modelpilot_step_duration_seconds_count", step) == 1
        assert _sample(metrics, "modelpilot_step_duration_seconds_sum", step) == 0.25
        assert _sample(metrics, "modelpilot_step_errors_total", step) == 0


def test_a_failing_step_is_named_and_counted_as_its_own_error() -> None:
    metrics = ServingMetrics(process=False)

    def broken(frame: pd.DataFrame) -> pd.DataFrame:
        raise ZeroDivisionError("division by zero")

    pipeline = _pipeline([FunctionStep("ratio", broken)], metrics, TickingClock(0.1))
    with pytest.raises(
        StepFailed,
        match=r"step 'ratio' of deployment 'demo' failed "
        r"\(ZeroDivisionError: division by zero\)",
    ) as caught:
        pipeline.run(_frame(), SizeModel(), FEATURES, task="regression")
    assert caught.value.step == "ratio" and isinstance(caught.value.cause, ZeroDivisionError)
    assert _sample(metrics, "modelpilot_step_errors_total", "ratio") == 1
    assert _sample(metrics, "modelpilot_step_duration_seconds_count", "ratio") == 1
    assert _sample(metrics, "modelpilot_step_errors_total", "model") == 0
    assert _sample(metrics, "modelpilot_step_duration_seconds_count", "model") == 0  # never ran


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (lambda f: f["size"], r"must return a DataFrame .* \(4\); got Series"),
        (lambda f: f.iloc[:2], r"must return a DataFrame .* \(4\); got 2 rows"),
        (lambda f: f.drop(columns="size"), r"model of deployment 'demo' needs column\(s\) size"),
    ],
    ids=["not-a-frame", "rows-lost", "column-lost"],
)
def test_a_step_that_breaks_the_batch_says_how(function: Any, message: str) -> None:
    pipeline = _pipeline(
        [FunctionStep("bad", function)], ServingMetrics(process=False), TickingClock(0.1)
    )
    with pytest.raises(StepFailed, match=message):
        pipeline.run(_frame(), SizeModel(), FEATURES, task="regression")


def test_a_model_step_adds_its_prediction_as_a_column_for_the_next() -> None:
    metrics = ServingMetrics(process=False)
    first = ModelStep("estimate", Version("sizer", FEATURES[:1]), SizeModel())
    seen: list[pd.DataFrame] = []

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        seen.append(frame)
        return frame

    steps = [first, FunctionStep("look", keep)]
    _pipeline(steps, metrics, TickingClock(0.1)).run(_frame(), SizeModel(), FEATURES, task=None)
    assert seen[0]["estimate"].tolist()[:3] == [10.0, 20.0, 30.0]
    assert _sample(metrics, "modelpilot_step_output_null_total", "estimate") == 1


def test_a_failing_observer_never_fails_the_batch(caplog: pytest.LogCaptureFixture) -> None:
    class Down:
        def observe_step(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("metrics are down")

    pipeline = Pipeline(
        "demo", [FunctionStep("same", lambda f: f)], features=FEATURES, observer=Down()
    )
    output = pipeline.run(_frame(), SizeModel(), FEATURES, task="regression")
    assert len(output.predictions) == 4
    assert "recording the metrics of step same failed" in caplog.text


# ---- step functions from the project ---------------------------------------------------------
@pytest.fixture
def project_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project directory holding ``pipeline_unit_steps.py``; sys.path is restored after."""
    (tmp_path / "pipeline_unit_steps.py").write_text(
        textwrap.dedent(
            """
            def double(frame):
                return frame.assign(size=frame["size"] * 2)

            NOT_CALLABLE = 3
            """
        ),
        "utf-8",
    )
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield tmp_path
    sys.modules.pop("pipeline_unit_steps", None)


def test_step_functions_are_imported_from_the_project_directory(project_module: Path) -> None:
    double = load_function("pipeline_unit_steps:double", project_module)
    assert double(_frame())["size"].tolist()[:3] == [2.0, 4.0, 6.0]
    assert sys.path[0] == str(project_module)
    with pytest.raises(ConfigError, match="'NOT_CALLABLE' is a int, not a function"):
        load_function("pipeline_unit_steps:NOT_CALLABLE", project_module)
    with pytest.raises(ConfigError, match=r"cannot be imported \(ModuleNotFoundError"):
        load_function("no_such_module_here:f", project_module)


# ---- the project file -------------------------------------------------------------------------
def _spec(deployments: list[dict[str, Any]]) -> ProjectSpec:
    return ProjectSpec.model_validate(
        {"project": "p", "task": "regression", "target": "y", "deployments": deployments}
    )


def test_steps_are_declared_on_a_deployment() -> None:
    spec = _spec(
        [
            {
                "name": "cleaned",
                "model": "m2",
                "steps": [
                    {"name": "clean", "function": "features:clean"},
                    {"name": "estimate", "model": "m1@production"},
                ],
            },
            {"name": "plain", "model": "m1"},
        ]
    )
    steps = spec.deployment_specs[0].steps
    assert [(s.name, s.kind) for s in steps] == [("clean", "function"), ("estimate", "model")]


@pytest.mark.parametrize(
    ("deployments", "message"),
    [
        ([{"name": "d", "steps": [{"name": "s"}]}], "must have exactly one of function"),
        (
            [{"name": "d", "steps": [{"name": "s", "function": "f:g", "model": "m"}]}],
            "must have exactly one of function",
        ),
        (
            [{"name": "d", "steps": [{"name": "s", "function": "clean"}]}],
            r"function must be 'module:callable' .* got 'clean'",
        ),
        (
            [{"name": "d", "steps": [{"name": "s", "model": "m@@x"}]}],
            "model must be NAME, NAME@ALIAS or NAME:VERSION",
        ),
        (
            [{"name": "d", "steps": [{"name": "model", "function": "f:g"}]}],
            "'model' is the name of a pipeline's last step",
        ),
        (
            [
                {
                    "name": "d",
                    "steps": [{"name": "s", "function": "f:g"}, {"name": "s", "model": "m"}],
                }
            ],
            "step names must be unique; repeated: s",
        ),
        (
            [
                {"name": "a", "model": "m", "steps": [{"name": "s", "function": "f:g"}]},
                {"name": "b", "model": "m"},
            ],
            "deployment 'a' runs model 'm' behind steps, and 'b' serve",
        ),
    ],
    ids=["no-kind", "two-kinds", "bad-function", "bad-model", "reserved", "repeated", "shared"],
)
def test_a_wrong_step_is_refused_with_what_to_write(
    deployments: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _spec(deployments)
