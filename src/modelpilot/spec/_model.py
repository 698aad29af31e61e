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
    # Every this many seconds the server merges the log's small segments (one per commit)
    # older than that into segments of up to compact_rows rows (store/_compaction.py);
    # 0 turns it off.
    compact_interval_s: float = Field(default=300.0, ge=0)
    compact_rows: int = Field(default=10_000, ge=2, le=1_000_000)


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
    shadow_s: float = Field(default=600.0, gt=0)
    smoke_requests: int = Field(default=20, ge=1, le=10_000)

    def gate(self, metric: str) -> GateSpec | None:
        """The gate on ``metric``; None when the gates leave it out.

        Examples
        --------
        >>> RolloutSettings().gate("agreement")
        GateSpec(metric='agreement', threshold=0.8, min_samples=30, slack=0.0)
        >>> RolloutSettings(gates=[]).gate("agreement") is None
        True
        """
        return next((gate for gate in self.gates if gate.metric == metric), None)

    @property
    def agreement_min_samples(self) -> int:
        """The compared predictions a shadow's agreement needs before an alert rule sees it:
        the ``agreement`` gate's ``min_samples``, the default gate's when the gates leave
        agreement out.

        Examples
        --------
        >>> RolloutSettings(gates=[{"metric": "agreement", "threshold": 0.9, "min_samples": 80}]
        ...     ).agreement_min_samples, RolloutSettings(gates=[]).agreement_min_samples
        (80, 30)
        """
        gate = self.gate("agreement") or next(
            gate for gate in _default_gates() if gate.metric == "agreement"
        )
        return gate.min_samples

    @field_validator("steps")
    @classmethod
    def _check_steps(cls, steps: list[float]) -> list[float]:
        if any(not 0 < s <= 100 for s in steps) or steps != sorted(steps) or steps[-1] != 100:
            raise ValueError(
                f"steps must be increasing traffic percentages in (0, 100] ending at 100, "
                f"got {steps}"
            )
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
    """What the server measures and keeps over time (the dashboard's and alerts' source).

    ``enabled: false`` turns off the live metrics (``GET /metrics`` answers with an empty
    body) and the monitor (time series, drift checks): for benchmarks that measure their cost.
    """

    enabled: bool = True
    interval_s: float = Field(default=10.0, gt=0)
    retention_days: float = Field(default=30.0, gt=0)
    label_window: int = Field(default=500, ge=10)
    drift: DriftMonitorSettings = Field(default_factory=DriftMonitorSettings)


#: The time series the monitor records (``modelpilot.monitoring``): what an alert rule may watch.
ALERT_METRICS: tuple[str, ...] = (
    "request_rate",
    "error_rate",
    "client_error_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "instances_per_request",
    "missing_rate",
    "out_of_range_rate",
    "unseen_rate",
    "drift_score",
    "drift_detected",
    "drift_share",
    "prediction_drift",
    "drift_window_rows",
    "concept_drift",
    "key_metric",
    "label_coverage",
    "labels",
    "shadow_agreement",
    "memory_rss_bytes",
    "cpu_percent",
    "log_queue_depth",
    "log_lag_seconds",
)
AlertAction = Literal["rollback_canary", "lower_automation", "retrain"]
Severity = Literal["info", "warning", "critical"]
Aggregate = Literal["mean", "max", "min", "last"]


class AlertRuleSpec(_Strict):
    """One alert rule: a metric's aggregate over a window, compared with a threshold.

    The alert is *pending* while the condition holds and *fires* once it has held ``for_s``
    seconds. A firing alert *resolves* only when the value has been past ``clear_threshold``
    (default: ``threshold``) for ``clear_for_s`` seconds, so a metric that hovers around the
    threshold does not fire and resolve over and over. ``labels`` selects series (e.g.
    ``{feature: size}``); ``annotations`` are attached to every notification.

    Examples
    --------
    >>> rule = AlertRuleSpec(name="slow", metric="latency_p99_ms", threshold=250,
    ...                      for_s=300, clear_threshold=200)
    >>> rule.comparison, rule.aggregate, rule.clear_at
    ('>', 'mean', 200.0)
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    metric: str
    labels: dict[str, str] = Field(default_factory=dict)
    deployment: str | None = None
    comparison: Comparison = ">"
    threshold: float
    aggregate: Aggregate = "mean"
    window_s: float = Field(default=60.0, gt=0)
    for_s: float = Field(default=0.0, ge=0)
    severity: Severity = "warning"
    annotations: dict[str, str] = Field(default_factory=dict)
    actions: list[AlertAction] = Field(default_factory=list)
    clear_threshold: float | None = None
    clear_for_s: float = Field(default=0.0, ge=0)

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in ALERT_METRICS:
            raise ValueError(
                f"unknown metric {value!r}; alert rules watch the monitor's time series: "
                f"{', '.join(ALERT_METRICS)}"
            )
        return value

    @model_validator(mode="after")
    def _check_thresholds(self) -> AlertRuleSpec:
        for field_name in ("threshold", "clear_threshold"):
            value = getattr(self, field_name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{field_name} must be a finite number, got {value}")
        if self.clear_threshold is not None:
            above = self.comparison in (">", ">=")
            if (above and self.clear_threshold > self.threshold) or (
                not above and self.clear_threshold < self.threshold
            ):
                side = "at or below" if above else "at or above"
                raise ValueError(
                    f"rule {self.name!r}: clear_threshold must be {side} the threshold for "
                    f"comparison {self.comparison!r} (the value has to come back past it to "
                    f"resolve), got clear_threshold {self.clear_threshold:g} and threshold "
                    f"{self.threshold:g}"
                )
        if len(set(self.actions)) != len(self.actions):
            raise ValueError(f"rule {self.name!r} lists an action twice: {self.actions}")
        return self

    @property
    def clear_at(self) -> float:
        """The value a firing alert must come back past to resolve."""
        return self.threshold if self.clear_threshold is None else float(self.clear_threshold)


class NotifierSpec(_Strict):
    """Where alert notifications go: the server's log, an HTTP webhook or a command.

    ``command`` is run without a shell (a string is split like a shell would); it gets the
    alert as JSON on stdin and as ``MODELPILOT_ALERT_*`` environment variables. Failed
    deliveries are retried ``retries`` times, waiting ``backoff_s``, then twice as long, ...

    Examples
    --------
    >>> hook = NotifierSpec(kind="webhook", url="https://hooks.example.com/x", retries=5)
    >>> hook.timeout_s, hook.retries, hook.backoff_s
    (5.0, 5, 1.0)
    """

    kind: Literal["log", "webhook", "command"]
    url: str | None = None
    command: str | list[str] | None = None
    timeout_s: float = Field(default=5.0, gt=0, le=300)
    retries: int = Field(default=3, ge=0, le=20)
    backoff_s: float = Field(default=1.0, ge=0, le=300)

    @model_validator(mode="after")
    def _check_target(self) -> NotifierSpec:
        if self.kind == "webhook":
            if not self.url or not re.match(r"^https?://", self.url):
                raise ValueError(f"a webhook notifier needs url: http(s)://..., got {self.url!r}")
        elif self.url is not None:
            raise ValueError(f"url is only allowed on webhook notifiers, not {self.kind}")
        if self.kind == "command":
            if not self.command:
                raise ValueError(
                    "a command notifier needs command: (for example 'notify-send alert' "
                    "or [sh, -c, '...'])"
                )
        elif self.command is not None:
            raise ValueError(f"command is only allowed on command notifiers, not {self.kind}")
        return self


def _default_notifiers() -> list[NotifierSpec]:
    return [NotifierSpec(kind="log")]


class AlertSettings(_Strict):
    """Alert rules, where notifications go, and how often an action may repeat.

    With ``defaults: true`` rules are generated from the key metrics and the service
    objectives (``modelpilot.alerting.default_rules``); a rule of the same name replaces one.

    Examples
    --------
    >>> settings = AlertSettings()
    >>> settings.defaults, [n.kind for n in settings.notifiers], settings.action_cooldown_s
    (True, ['log'], 1800.0)
    """

    defaults: bool = True
    rules: list[AlertRuleSpec] = Field(default_factory=list)
    notifiers: list[NotifierSpec] = Field(default_factory=_default_notifiers)
    action_cooldown_s: float = Field(default=1800.0, ge=0)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[AlertRuleSpec]) -> list[AlertRuleSpec]:
        names = [r.name for r in rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"alert rule names must be unique; repeated: {', '.join(duplicates)}")
        return rules


_STEP_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_STEP_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(@[A-Za-z0-9_.-]+|:\d+)?$")


class StepSpec(_Strict):
    """One step of a deployment's pipeline, run before the deployment's own model.

    ``function: "module:callable"`` is a DataFrame -> DataFrame function of the project (its
    directory is on ``sys.path``); ``model: "NAME@ALIAS"`` (or ``NAME:VERSION``) is a registered
    model whose prediction becomes a column named after the step, for the steps after it.

    Examples
    --------
    >>> StepSpec(name="clean", function="features:clean").kind
    'function'
    >>> StepSpec(name="estimate", model="houses@production").kind
    'model'
    """

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    function: str | None = None
    model: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> StepSpec:
        if (self.function is None) == (self.model is None):
            raise ValueError(
                f"step {self.name!r} must have exactly one of function: 'module:callable' or "
                "model: 'NAME@ALIAS'"
            )
        if self.function is not None and not _STEP_FUNCTION.match(self.function):
            raise ValueError(
                f"step {self.name!r}: function must be 'module:callable' (for example "
                f"'features:clean'), got {self.function!r}"
            )
        if self.model is not None and not _STEP_MODEL.match(self.model):
            raise ValueError(
                f"step {self.name!r}: model must be NAME, NAME@ALIAS or NAME:VERSION (for "
                f"example 'houses@production'), got {self.model!r}"
            )
        if self.name == "model":
            raise ValueError(
                "'model' is the name of a pipeline's last step (the deployment's own model); "
                "name this step differently"
            )
        return self

    @property
    def kind(self) -> Literal["function", "model"]:
        return "function" if self.function is not None else "model"


class DeploymentSpec(_Strict):
    """A named endpoint bound to the version a model alias points to.

    ``steps`` make it a pipeline: they run in order inside each micro-batch, then the model;
    each step reports its own latency, errors and null outputs (``docs/monitoring.md``).
    """

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    model: str | None = None
    alias: str = "production"
    automation: Degree | None = None
    steps: list[StepSpec] = Field(default_factory=list)

    @field_validator("steps")
    @classmethod
    def _unique_steps(cls, steps: list[StepSpec]) -> list[StepSpec]:
        names = [s.name for s in steps]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"step names must be unique; repeated: {', '.join(duplicates)}")
        return steps


class BatchCheckSettings(_Strict):
    """Checks of an input file before ``modelpilot score`` reads it.

    A file last modified more than ``max_age_hours`` ago is stale (None: no age check). Its row
    count is compared with the median of the model's last ``history_runs`` successful scoring
    runs and must lie within ``volume_ratio`` times that (the check waits for
    ``min_history_runs`` runs). With ``blocking`` a failed check stops the command (exit code
    2, unless ``--skip-checks``); otherwise it is reported and scoring goes on.
    """

    max_age_hours: float | None = Field(default=24.0, gt=0)
    volume_ratio: tuple[float, float] = (0.5, 2.0)
    history_runs: int = Field(default=10, ge=1)
    min_history_runs: int = Field(default=3, ge=1)
    blocking: bool = True

    @field_validator("volume_ratio")
    @classmethod
    def _check_ratio(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not (0 <= low <= 1 <= high and math.isfinite(high)):
            raise ValueError(
                f"volume_ratio must be [low, high] with 0 <= low <= 1 <= high, got {list(value)}"
            )
        return value


Degree = Literal["human", "shadow", "assist", "partial", "full"]
DEGREES: tuple[Degree, ...] = ("human", "shadow", "assist", "partial", "full")


class LadderStep(_Strict):
    """Move a deployment from one degree of automation to the next when people agree enough."""

    from_degree: Degree = Field(alias="from")
    to: Degree
    min_agreement: float = Field(default=0.95, gt=0, le=1)
    min_cases: int = Field(default=500, ge=1)


def _default_ladder() -> list[LadderStep]:
    return [
        LadderStep.model_validate({"from": "shadow", "to": "assist"}),
        LadderStep.model_validate({"from": "assist", "to": "partial"}),
        LadderStep.model_validate({"from": "partial", "to": "full", "min_agreement": 0.97}),
    ]


class AutomationSettings(_Strict):
    """How much the model decides on its own (the seed's degrees of automation)."""

    degree: Degree = "full"
    threshold: float = Field(default=0.8, ge=0, le=1)
    regression_confidence: Literal["typicality", "ensemble"] = "typicality"
    agreement_tolerance: float = Field(default=0.1, ge=0)
    ladder: Literal["off", "propose", "auto"] = "propose"
    steps: list[LadderStep] = Field(default_factory=_default_ladder)
    lower_on_alerts: bool = True
    review_max_age_s: float = Field(default=86400.0, gt=0)


class RetrainSettings(_Strict):
    """The retraining loop: what trains a new version, when, and what happens to it."""

    command: str | None = None
    function: str | None = None
    window_s: float = Field(default=30 * 86400.0, gt=0)
    min_new_labels: int = Field(default=200, ge=0)
    cooldown_s: float = Field(default=6 * 3600.0, ge=0)
    max_concurrent: int = Field(default=1, ge=1)
    timeout_s: float = Field(default=3600.0, gt=0)
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    deploy: Literal["none", "shadow", "canary", "shadow-canary"] = "canary"
    auto: bool = False
    schedule_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_trainer(self) -> RetrainSettings:
        if self.command and self.function:
            raise ValueError("give either retrain.command or retrain.function, not both")
        return self


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
