"""The project file's data model: what a `modelpilot.yaml` may say, validated by pydantic."""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Task = Literal["regression", "binary", "multiclass"]
FeatureType = Literal["numeric", "categorical", "boolean", "text"]
Comparison = Literal["<=", ">=", "<", ">"]
CheckName = Literal[
    "missing_values",
    "constant_columns",
    "duplicate_rows",
    "label_consistency",
    "class_balance",
    "out_of_range",
    "unseen_categories",
    "schema",
]

#: Metrics modelpilot can compute offline and online, with the direction that is better.
METRICS: dict[str, Literal["lower", "higher"]] = {
    "mae": "lower",
    "rmse": "lower",
    "mse": "lower",
    "mape": "lower",
    "r2": "higher",
    "accuracy": "higher",
    "balanced_accuracy": "higher",
    "f1": "higher",
    "f1_macro": "higher",
    "precision": "higher",
    "recall": "higher",
    "roc_auc": "higher",
    "log_loss": "lower",
}
REGRESSION_METRICS = frozenset({"mae", "rmse", "mse", "mape", "r2"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FeatureSpec(_Strict):
    """One input column: its type, what values it may take, and how to treat it."""

    name: str = Field(min_length=1)
    type: FeatureType
    range: tuple[float, float] | None = None
    categories: list[str] | None = None
    nullable: bool = False
    pii: bool = False
    description: str = ""

    @model_validator(mode="after")
    def _check_consistent(self) -> FeatureSpec:
        if self.range is not None:
            if self.type != "numeric":
                raise ValueError(f"range is only allowed on numeric features, not {self.type}")
            low, high = self.range
            if not (math.isfinite(low) and math.isfinite(high)) or low > high:
                raise ValueError(
                    f"range must be [low, high] with low <= high, got {list(self.range)}"
                )
        if self.categories is not None and self.type != "categorical":
            raise ValueError(
                f"categories are only allowed on categorical features, not {self.type}"
            )
        return self


# The target must not start with an operator character, or 'mae <= ' would parse as 'mae < ='.
_SHORTHAND = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=|<|>)\s*([^\s<>=]\S*)\s*$")


class KeyMetric(_Strict):
    """A key metric and the target a version must reach, e.g. ``mae <= 25000``."""

    name: str
    op: Comparison
    target: float

    @model_validator(mode="before")
    @classmethod
    def _parse_shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            match = _SHORTHAND.match(data)
            if match is None:
                raise ValueError(
                    f"expected 'metric <= target' (for example 'mae <= 25000'), got {data!r}"
                )
            name, op, target = match.groups()
            return {"name": name, "op": op, "target": target}
        return data

    @field_validator("name")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"unknown metric {value!r}; known metrics: {', '.join(METRICS)}")
        return value

    def passes(self, value: float) -> bool:
        """Whether ``value`` meets this target."""
        if value is None or not math.isfinite(value):
            return False
        return {
            "<=": value <= self.target,
            ">=": value >= self.target,
            "<": value < self.target,
            ">": value > self.target,
        }[self.op]

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.target:g}"


class ServiceObjectives(_Strict):
    """Software service-level objectives of the online service."""

    latency_p99_ms: float = Field(default=100.0, gt=0)
    error_rate: float = Field(default=0.01, ge=0, le=1)
    throughput_rps: float = Field(default=100.0, gt=0)


class DataChecks(_Strict):
    """Thresholds of the data checks; a failed check in ``blocking`` makes the command fail."""

    max_missing_rate: float = Field(default=0.05, ge=0, le=1)
    max_duplicate_rate: float = Field(default=0.05, ge=0, le=1)
    max_label_conflict_rate: float = Field(default=0.0, ge=0, le=1)
    regression_label_tolerance: float = Field(default=0.1, ge=0)
    min_minority_share: float = Field(default=0.05, ge=0, le=0.5)
    max_out_of_range_rate: float = Field(default=0.0, ge=0, le=1)
    max_unseen_category_rate: float = Field(default=0.0, ge=0, le=1)
    blocking: list[CheckName] = Field(
        default_factory=lambda: list[CheckName](["label_consistency", "schema", "missing_values"])
    )


class StoreSettings(_Strict):
    """Where metadata and artifacts live. Relative paths are relative to the project directory."""

    database_url: str = "sqlite:///.modelpilot/modelpilot.db"
    artifacts: str = ".modelpilot/artifacts"


class LoggingSettings(_Strict):
    """How predictions are written to the prediction log."""

    durable: bool = False
    pii: Literal["hash", "drop"] = "hash"
    flush_interval_ms: float = Field(default=50.0, gt=0, le=1000)
    max_queue: int = Field(default=100_000, ge=100)


class ServingSettings(_Strict):
    """The online server.

    Micro-batching is adaptive: a request goes to the model at once when the model is idle;
    while it is busy, requests gather into the next batch (up to ``max_batch_size`` rows).
    ``max_wait_ms`` > 0 additionally holds a batch that long for more requests.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_batch_size: int = Field(default=64, ge=1)
    max_wait_ms: float = Field(default=0.0, ge=0, le=1000)
    model_threads: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_instances: int = Field(default=10_000, ge=1)
    open_predict: bool = False
    tokens_file: str = ".modelpilot/tokens.json"


GateMetric = Literal["error_rate", "latency_p99", "prediction_shift", "agreement", "key_metric"]


class GateSpec(_Strict):
    """One check of a rollout step's analysis, candidate against primary.

    ``threshold`` by metric: ``error_rate`` — the largest allowed increase of the candidate's
    error rate over the primary's (absolute, e.g. 0.02); ``latency_p99`` — the largest allowed
    ratio of p99 latencies (e.g. 2.0); ``prediction_shift`` — the largest allowed distance
    between the two prediction distributions (Kolmogorov-Smirnov statistic for regression,
    total variation of class shares for classification); ``agreement`` — the smallest share of
    mirrored requests on which both answer alike (same class; regression: within 10%);
    ``key_metric`` — the sequential test's significance level for "the candidate is worse".
    ``slack`` (``latency_p99`` only) is an absolute difference in milliseconds below which the
    ratio is not held against the candidate: a p99 of 4 ms against 1.5 ms is noise, not a
    regression.
    """

    metric: GateMetric
    threshold: float = Field(gt=0)
    min_samples: int = Field(default=50, ge=1)
    slack: float = Field(default=0.0, ge=0)


def _default_gates() -> list[GateSpec]:
    return [
        GateSpec(metric="error_rate", threshold=0.02, min_samples=50),
        GateSpec(metric="latency_p99", threshold=2.0, min_samples=50, slack=10.0),
        GateSpec(metric="prediction_shift", threshold=0.2, min_samples=50),
        GateSpec(metric="agreement", threshold=0.8, min_samples=30),
        GateSpec(metric="key_metric", threshold=0.05, min_samples=30),
    ]


class RolloutSettings(_Strict):
    """How canary, shadow, blue-green and rolling deployments proceed and are judged."""

    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0], min_length=1)
    step_interval_s: float = Field(default=600.0, gt=0)
    analysis_interval_s: float = Field(default=10.0, gt=0)
    failure_limit: int = Field(default=2, ge=1)
    gates: list[GateSpec] = Field(default_factory=_default_gates)
    mirror_fraction: float = Field(default=1.0, ge=0, le=1)
    blue_green_window_s: float = Field(default=600.0, ge=0)
    smoke_requests: int = Field(default=20, ge=1, le=10_000)

    @field_validator("steps")
    @classmethod
    def _check_steps(cls, steps: list[float]) -> list[float]:
        if any(not 0 < s <= 100 for s in steps) or steps != sorted(steps) or steps[-1] != 100:
            raise ValueError(
                f"steps must be increasing traffic percentages in (0, 100] ending at 100, "
                f"got {steps}")
        return steps


class DriftMonitorSettings(_Strict):
    """Drift checks of the live service on the prediction log."""

    interval_s: float = Field(default=60.0, gt=0)
    every_n_predictions: int = Field(default=1000, ge=1)
    window_s: float = Field(default=3600.0, gt=0)
    min_rows: int = Field(default=200, ge=10)
    correction: Literal["bh", "bonferroni", "none"] = "bh"
    dataset_threshold: float = Field(default=0.5, gt=0, le=1)


class MonitoringSettings(_Strict):
    """What the server measures and keeps over time (the dashboard's and alerts' source)."""

    interval_s: float = Field(default=10.0, gt=0)
    retention_days: float = Field(default=30.0, gt=0)
    label_window: int = Field(default=500, ge=10)
    drift: DriftMonitorSettings = Field(default_factory=DriftMonitorSettings)


class DeploymentSpec(_Strict):
    """A named endpoint bound to the version a model alias points to."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    model: str | None = None
    alias: str = "production"


class ProjectSpec(_Strict):
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
        return [DeploymentSpec(name=self.model_name, model=self.model_name)]

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]
