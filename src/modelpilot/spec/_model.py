"""The whole project file: :class:`ProjectSpec`, validated by pydantic."""

from __future__ import annotations

from pydantic import Field, model_validator

from modelpilot.spec._automation import AutomationSettings, RetrainSettings
from modelpilot.spec._base import REGRESSION_METRICS, StrictModel, Task
from modelpilot.spec._monitoring import AlertSettings, MonitoringSettings
from modelpilot.spec._rollout import RolloutSettings
from modelpilot.spec._schema import DataChecks, FeatureSpec, KeyMetric, ServiceObjectives
from modelpilot.spec._serving import (
    BatchCheckSettings,
    DeploymentSpec,
    LoggingSettings,
    ServingSettings,
    StoreSettings,
)


def _check_pipelines(deployments: list[DeploymentSpec]) -> None:
    # A model's micro-batches mix the requests of every deployment that serves it, so a model
    # behind steps must belong to one deployment: its steps and their metrics are that one's.
    serving: dict[str, list[str]] = {}
    for deployment in deployments:
        serving.setdefault(deployment.model or "", []).append(deployment.name)
    for deployment in deployments:
        others = [n for n in serving[deployment.model or ""] if n != deployment.name]
        if deployment.steps and others:
            raise ValueError(
                f"deployment {deployment.name!r} runs model {deployment.model!r} behind steps, "
                f"and {', '.join(repr(n) for n in others)} serve(s) it too; a pipeline's model "
                "must belong to one deployment (register it a second time under another name "
                "with `modelpilot register --name` to serve it twice)"
            )


class ProjectSpec(StrictModel):
    """A whole project file.

    Examples
    --------
    >>> spec = ProjectSpec.model_validate({
    ...     "project": "demo", "task": "regression", "target": "price",
    ...     "features": [{"name": "size", "type": "numeric", "range": [10, 500]}],
    ...     "key_metrics": ["mae <= 25000"],
    ... })
    >>> str(spec.key_metrics[0]), spec.feature("size").range
    ('mae <= 25000', (10.0, 500.0))
    """

    project: str = Field(min_length=1)
    task: Task
    target: str = Field(min_length=1)
    model: str | None = None
    features: list[FeatureSpec] = Field(default_factory=list)
    key_metrics: list[KeyMetric] = Field(default_factory=list)
    service_objectives: ServiceObjectives = Field(default_factory=ServiceObjectives)
    data_checks: DataChecks = Field(default_factory=DataChecks)
    store: StoreSettings = Field(default_factory=StoreSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)
    deployments: list[DeploymentSpec] = Field(default_factory=list)
    rollout: RolloutSettings = Field(default_factory=RolloutSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    automation: AutomationSettings = Field(default_factory=AutomationSettings)
    retrain: RetrainSettings = Field(default_factory=RetrainSettings)
    batch_checks: BatchCheckSettings = Field(default_factory=BatchCheckSettings)

    @model_validator(mode="after")
    def _check_project(self) -> ProjectSpec:
        names = [f.name for f in self.features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"feature names must be unique; repeated: {', '.join(duplicates)}")
        if self.target in names:
            raise ValueError(f"the target {self.target!r} must not also be a feature")
        for metric in self.key_metrics:
            is_regression = metric.name in REGRESSION_METRICS
            if is_regression != (self.task == "regression"):
                fitting = (
                    "mae, rmse, mape or r2"
                    if self.task == "regression"
                    else "accuracy, f1, roc_auc, ..."
                )
                raise ValueError(
                    f"metric {metric.name!r} does not fit task {self.task!r}; use {fitting}"
                )
        _check_pipelines(self.deployment_specs)
        return self

    @property
    def model_name(self) -> str:
        """The registered model this project serves (defaults to the project name)."""
        return self.model or self.project

    def feature(self, name: str) -> FeatureSpec:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)

    @property
    def deployment_specs(self) -> list[DeploymentSpec]:
        """The declared deployments, or one named after the model bound to @production."""
        if self.deployments:
            return [
                d if d.model else d.model_copy(update={"model": self.model_name})
                for d in self.deployments
            ]
        # Not validated: the project's name is free text; a model name the registry cannot
        # store is refused with a clear message when the model is registered.
        return [
            DeploymentSpec.model_construct(
                name=self.model_name, model=self.model_name, alias="production", automation=None
            )
        ]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]
