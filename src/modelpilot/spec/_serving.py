"""Where the service keeps things and how it serves: the store, the prediction log,
the server, deployments with their steps, batch checks."""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from modelpilot.spec._automation import Degree
from modelpilot.spec._base import StrictModel


class StoreSettings(StrictModel):
    """Where metadata and artifacts live. Relative paths are relative to the project directory."""

    database_url: str = "sqlite:///.modelpilot/modelpilot.db"
    artifacts: str = ".modelpilot/artifacts"


class DeltaLogSettings(StrictModel):
    """``logging.backend: delta``: the prediction log as Delta Lake tables (docs/delta-log.md).

    ``uri`` is a directory (relative to the project directory) or ``s3://bucket/prefix``
    (credentials and region from the usual ``AWS_*`` environment variables; ``endpoint_url``
    for an S3-compatible store). Each server process spools its appends to ``spool`` (a local
    directory) and commits them every ``commit_interval_s``; the leader compacts and vacuums
    (files older than ``vacuum_retention_hours`` that no version reads are deleted).
    """

    uri: str = ".modelpilot/log"
    endpoint_url: str | None = None
    spool: str = ".modelpilot/log-spool"
    commit_interval_s: float = Field(default=10.0, gt=0, le=3600)
    vacuum_retention_hours: float = Field(default=168.0, ge=0)


class LoggingSettings(StrictModel):
    """How predictions are written to the prediction log."""

    # Where the log lives: ``sql`` in the metadata database (Arrow segments), ``delta`` as
    # Delta Lake tables on a disk or object storage (settings under ``delta``).
    backend: Literal["sql", "delta"] = "sql"
    delta: DeltaLogSettings = Field(default_factory=DeltaLogSettings)
    durable: bool = False
    pii: Literal["hash", "drop"] = "hash"
    flush_interval_ms: float = Field(default=50.0, gt=0, le=1000)
    max_queue: int = Field(default=100_000, ge=100)
    # Every this many seconds the server merges the log's small segments (one per commit)
    # older than that into segments of up to compact_rows rows (store/_compaction.py);
    # 0 turns it off.
    compact_interval_s: float = Field(default=300.0, ge=0)
    compact_rows: int = Field(default=10_000, ge=2, le=1_000_000)
    # When the database fails (docs/reliability.md): a durable request waits this long for
    # its commit, then gets 503; a stopping server retries this long, then puts what it still
    # holds in the dead-letter file, for which this much disk space is kept in reserve.
    durable_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    drain_timeout_s: float = Field(default=30.0, ge=0, le=3600)
    dead_letter_reserve_bytes: int = Field(default=16 * 1024 * 1024, ge=0)


class ServingSettings(StrictModel):
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
    # Request bodies past these answer 413 at once (docs/reliability.md): the prediction
    # routes and devices' log uploads, POST /v1/feedback, and every other route (admin
    # actions, review decisions).
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_feedback_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_other_body_bytes: int = Field(default=65_536, ge=1024)
    max_instances: int = Field(default=10_000, ge=1)
    # Connections (server/_connections.py): at most max_connections open (None: the process's
    # file-descriptor limit less a reserve), each sending its request's headers within
    # header_timeout_s; an idle keep-alive connection is closed after keep_alive_s.
    max_connections: int | None = Field(default=None, ge=1)
    header_timeout_s: float = Field(default=10.0, gt=0, le=600)
    keep_alive_s: float = Field(default=5.0, gt=0, le=600)
    open_predict: bool = False
    tokens_file: str = ".modelpilot/tokens.json"
    # At SIGTERM /readyz answers 503 at once and requests are still answered for drain_s
    # seconds: the time a load balancer or Kubernetes takes to stop sending new ones. Then the
    # server stops accepting, finishes what is in flight and flushes the log
    # (docs/scale-out.md). 0: stop at once (one server, nothing routes around it).
    drain_s: float = Field(default=0.0, ge=0, le=600)
    # With workers > 1: each worker process also serves its own /metrics on the first free
    # port from metrics_port on (N workers: metrics_port .. metrics_port + N - 1), so that
    # Prometheus can scrape every one of them (docs/scale-out.md).
    metrics_port: int | None = Field(default=None, ge=1, le=65535)


_STEP_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_STEP_MODEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(@[A-Za-z0-9_.-]+|:\d+)?$")


class StepSpec(StrictModel):
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


class DeploymentSpec(StrictModel):
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


class BatchCheckSettings(StrictModel):
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
