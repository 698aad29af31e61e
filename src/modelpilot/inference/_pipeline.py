"""Pipelines: a deployment's steps before its model, each one measured on its own.

A deployment may declare ``steps`` (``modelpilot.yaml``): preprocessing functions of the
project (DataFrame -> DataFrame) and registered models whose prediction becomes a column for
the steps after them. They run in order inside each micro-batch, then the deployment's own
model (the step named ``model``). Each step reports its latency, whether it raised, and the
nulls it produced, so a problem upstream of the model shows where it starts: a preprocessing
bug that turns values into nulls counts against that step, not against the model.
"""

from __future__ import annotations

import importlib
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from modelpilot.errors import ConfigError, ModelpilotError
from modelpilot.inference._outputs import ModelOutput, run_model
from modelpilot.project import Project
from modelpilot.registry import ModelRegistry, ModelVersion
from modelpilot.runtime import ModelRuntime
from modelpilot.spec import DeploymentSpec, FeatureSpec
from modelpilot.types import Clock

__all__ = [
    "FunctionStep",
    "ModelStep",
    "Pipeline",
    "PipelineBuilder",
    "StepFailed",
    "StepObserver",
    "load_function",
    "steps_deployment",
]

logger = logging.getLogger("modelpilot.inference")
T = TypeVar("T")

#: The name of a pipeline's last step, the deployment's own model.
MODEL_STEP = "model"


class StepObserver(Protocol):
    """Receives each step's measurements (``ServingMetrics`` is one)."""

    def observe_step(
        self, deployment: str, step: str, seconds: float, *, failed: bool, nulls: int
    ) -> None: ...


class StepFailed(ModelpilotError):
    """A pipeline step raised on a micro-batch; names the step, keeps the original error.

    Examples
    --------
    >>> print(StepFailed("houses", "clean", KeyError("condition")))
    step 'clean' of deployment 'houses' failed (KeyError: 'condition')
    """

    http_status = 500
    kind = "step_error"

    def __init__(self, deployment: str, step: str, cause: BaseException) -> None:
        self.deployment = deployment
        self.step = step
        self.cause = cause
        super().__init__(
            f"step {step!r} of deployment {deployment!r} failed ({type(cause).__name__}: {cause})"
        )


def _null_mask(values: Any) -> np.ndarray:
    mask: np.ndarray = np.array(pd.isna(values), dtype=bool)  # a copy: callers modify it
    return mask


@dataclass
class FunctionStep:
    """A DataFrame -> DataFrame function; its nulls are the values it turned into nulls.

    Examples
    --------
    >>> step = FunctionStep("code", lambda f: f.assign(city=f["city"].map({"a": 1})))
    >>> frame, nulls = step.run(pd.DataFrame({"city": ["a", "b", None]}))
    >>> frame["city"].tolist(), nulls  # "b" became null here; None came in null
    ([1.0, nan, nan], 1)
    """

    name: str
    function: Callable[[pd.DataFrame], Any]

    def run(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
        before = {column: _null_mask(frame[column]) for column in frame.columns}
        out = self.function(frame)
        if not isinstance(out, pd.DataFrame) or len(out) != len(frame):
            got = f"{len(out)} rows" if isinstance(out, pd.DataFrame) else type(out).__name__
            raise TypeError(
                f"a step function must return a DataFrame with one row per input row "
                f"({len(frame)}); got {got}"
            )
        nulls = 0
        for column in out.columns:
            mask = _null_mask(out[column])
            if column in before:
                mask &= ~before[column]  # nulls that came in are not this step's doing
            nulls += int(mask.sum())
        return out.reset_index(drop=True), nulls


@dataclass
class ModelStep:
    """A registered model; its prediction becomes a column named after the step."""

    name: str
    version: ModelVersion
    runtime: ModelRuntime

    def run(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
        inputs = _model_inputs(
            frame, self.version.features, f"{self.version.name}:{self.version.version}"
        )
        output = run_model(self.runtime, inputs, task=self.version.task)
        out = frame.copy()
        out[self.name] = output.predictions
        return out, int(_null_mask(output.predictions).sum())


def _model_inputs(frame: pd.DataFrame, features: Sequence[FeatureSpec], label: str) -> pd.DataFrame:
    names = [f.name for f in features]
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ValueError(
            f"model {label} needs column(s) {', '.join(missing)}, which the steps before it "
            f"did not produce (the batch has {', '.join(map(str, frame.columns))})"
        )
    return frame[names]


class Pipeline:
    """A deployment's steps, then its model, on one micro-batch.

    ``features`` are the request's schema (what clients send), which may differ from the
    model's: each model step gets its own registered features from the batch. Measurements
    go to ``observer``; a failing observer is logged and never fails the batch.

    Examples
    --------
    >>> import pandas as pd
    >>> from modelpilot.spec import FeatureSpec
    >>> class Doubler:  # a stand-in for a loaded model
    ...     flavor, classes = "demo", None
    ...     def predict(self, frame):
    ...         return frame["x"].to_numpy() * 2
    ...     def predict_proba(self, frame):
    ...         return None
    >>> features = [FeatureSpec(name="x", type="numeric")]
    >>> plus_one = FunctionStep("plus_one", lambda f: f.assign(x=f["x"] + 1))
    >>> pipeline = Pipeline("demo", [plus_one], features=features)
    >>> frame = pd.DataFrame({"x": [1.0, 2.0]})
    >>> output = pipeline.run(frame, Doubler(), features, task="regression")
    >>> output.predictions.tolist()
    [4.0, 6.0]
    """

    def __init__(
        self,
        deployment: str,
        steps: Sequence[FunctionStep | ModelStep],
        *,
        features: Sequence[FeatureSpec],
        observer: StepObserver | None = None,
        clock: Clock = time.perf_counter,
    ) -> None:
        self.deployment = deployment
        self.steps = list(steps)
        self.features = list(features)
        self.observer = observer
        self.clock = clock

    @property
    def step_names(self) -> list[str]:
        return [s.name for s in self.steps] + [MODEL_STEP]

    def run(
        self,
        frame: pd.DataFrame,
        runtime: ModelRuntime,
        features: Sequence[FeatureSpec],
        *,
        task: str | None,
        observe: bool = True,
    ) -> ModelOutput:
        """Run every step, then ``runtime`` (the model with ``features``) on the result."""
        for step in self.steps:
            frame = self._timed(step.name, step.run, frame, observe)

        def model(batch: pd.DataFrame) -> tuple[ModelOutput, int]:
            inputs = _model_inputs(batch, features, f"of deployment {self.deployment!r}")
            output = run_model(runtime, inputs, task=task)
            return output, int(_null_mask(output.predictions).sum())

        return self._timed(MODEL_STEP, model, frame, observe)

    def _timed(
        self,
        name: str,
        call: Callable[[pd.DataFrame], tuple[T, int]],
        frame: pd.DataFrame,
        observe: bool,
    ) -> T:
        started = self.clock()
        try:
            result, nulls = call(frame)
        except Exception as exc:
            if observe:
                self._observe(name, self.clock() - started, failed=True, nulls=0)
            raise StepFailed(self.deployment, name, exc) from exc
        if observe:
            self._observe(name, self.clock() - started, failed=False, nulls=nulls)
        return result

    def _observe(self, step: str, seconds: float, *, failed: bool, nulls: int) -> None:
        if self.observer is None:
            return
        try:
            self.observer.observe_step(self.deployment, step, seconds, failed=failed, nulls=nulls)
        except Exception:  # a metric must never fail a prediction
            logger.exception("recording the metrics of step %s failed", step)


def steps_deployment(specs: Sequence[DeploymentSpec], model: str) -> DeploymentSpec | None:
    """The deployment that runs ``model`` behind steps, if one does.

    A model behind steps belongs to one deployment (the project file checks that), so every
    version of it is scored through that deployment's steps: online, in batch, in smoke tests.

    Examples
    --------
    >>> from modelpilot.spec import DeploymentSpec
    >>> specs = [
    ...     DeploymentSpec(name="houses", model="houses"),
    ...     DeploymentSpec(
    ...         name="cleaned", model="houses-clean", steps=[{"name": "clean", "function": "m:f"}]
    ...     ),
    ... ]
    >>> steps_deployment(specs, "houses-clean").name
    'cleaned'
    >>> steps_deployment(specs, "houses") is None
    True
    """
    return next((s for s in specs if s.model == model and s.steps), None)


def load_function(ref: str, directory: Path | None = None) -> Callable[[pd.DataFrame], Any]:
    """Import ``"module:callable"``, with ``directory`` (the project's) on ``sys.path``.

    Examples
    --------
    >>> load_function("os.path:basename")("a/b.csv")
    'b.csv'
    >>> load_function("os.path:no_such_function")
    Traceback (most recent call last):
    ...
    modelpilot.errors.ConfigError: step function 'os.path:no_such_function' has 1 problem: ...
    """
    module_name, _, attribute = ref.partition(":")
    if directory is not None and str(directory) not in sys.path:
        # Like `python script.py`: the project's own modules come first.
        sys.path.insert(0, str(directory))
    where = f"the project directory {directory}" if directory is not None else "sys.path"
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except Exception as exc:
        raise ConfigError(
            f"step function {ref!r}",
            [
                f"it cannot be imported ({type(exc).__name__}: {exc}); the module must be in "
                f"{where} or installed, and define {attribute!r}"
            ],
        ) from None
    if not callable(target):
        raise ConfigError(
            f"step function {ref!r}",
            [f"{attribute!r} is a {type(target).__name__}, not a function"],
        )
    function: Callable[[pd.DataFrame], Any] = target
    return function


class PipelineBuilder:
    """Builds the :class:`Pipeline` of a deployment that declares steps.

    Step functions are imported with ``directory`` on ``sys.path``; step models are resolved
    when the pipeline is built (a deployment reload re-resolves them) and kept loaded.
    ``features`` is the request schema of every pipeline (the project file's features);
    None: the deployment model's own.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        directory: Path | None = None,
        features: Sequence[FeatureSpec] | None = None,
        observer: StepObserver | None = None,
        trust: bool = False,
        force: bool = False,
    ) -> None:
        self.registry = registry
        self.directory = directory
        self.features = list(features) if features else None
        self.observer = observer
        self.trust = trust
        self.force = force
        self._runtimes: dict[tuple[str, int], ModelRuntime] = {}

    @classmethod
    def for_project(
        cls,
        project: Project,
        *,
        observer: StepObserver | None = None,
        trust: bool = False,
        force: bool = False,
    ) -> PipelineBuilder:
        """The builder of ``project``'s pipelines, as the server, batch scoring and the smoke
        tests all need it: step functions from the project directory, requests following the
        project's features."""
        return cls(
            project.registry,
            directory=project.directory,
            features=project.spec.features or None,
            observer=observer,
            trust=trust,
            force=force,
        )

    def build(self, spec: DeploymentSpec, model: ModelVersion) -> Pipeline:
        steps: list[FunctionStep | ModelStep] = []
        for step in spec.steps:
            if step.function is not None:
                steps.append(FunctionStep(step.name, load_function(step.function, self.directory)))
                continue
            version = self.registry.resolve(str(step.model))
            key = (version.name, version.version)
            if key not in self._runtimes:
                self._runtimes[key] = self.registry.load(
                    version, trust=self.trust, force=self.force
                )
            steps.append(ModelStep(step.name, version, self._runtimes[key]))
        return Pipeline(
            spec.name, steps, features=self.features or model.features, observer=self.observer
        )
