"""What a running server holds: the project, its deployments, the log writer, the tokens."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelpilot.project import Project
from modelpilot.serving._auth import TokenStore
from modelpilot.serving._deployments import DeploymentManager
from modelpilot.serving._logwriter import LogWriter
from modelpilot.serving._pipeline import PipelineBuilder
from modelpilot.serving._scoring import ScoringSink
from modelpilot.store import PiiScrubber, load_pii_key

if TYPE_CHECKING:
    from modelpilot.monitoring import ServingMetrics

__all__ = ["ServerState", "build_state"]

logger = logging.getLogger("modelpilot.serving")


@dataclass
class Counters:
    requests: int = 0
    predictions: int = 0
    errors_4xx: int = 0
    errors_5xx: int = 0
    model_errors: int = 0
    feedback: int = 0


@dataclass
class ServerState:
    project: Project
    manager: DeploymentManager
    writer: LogWriter
    tokens: TokenStore
    clock: Callable[[], float] = time.time
    started_at: float = field(default_factory=time.time)
    counters: Counters = field(default_factory=Counters)
    load_error: str | None = None
    metrics: Any = None  # ServingMetrics
    monitor: Any = None  # the Monitor: time series, drift, alerts
    controller: Any = None  # a RolloutController once the deployments are loaded
    tick_seconds: float = 1.0
    reviews: Any = None  # ReviewQueue
    ladder: Any = None  # Ladder (degrees of automation)
    retrain: Any = None  # RetrainLoop
    degrees: dict[str, str] = field(default_factory=dict)

    def degree_of(self, deployment: str) -> str:
        return self.degrees.get(deployment, "full")

    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def durable(self) -> bool:
        return self.project.spec.logging.durable

    @property
    def ready(self) -> bool:
        return self.manager.ready


def build_state(
    project: Project,
    *,
    trust: bool = False,
    force: bool = False,
    clock: Callable[[], float] = time.time,
    metrics: ServingMetrics | None = None,
) -> ServerState:
    """Everything a server process holds, built from the project.

    ``metrics`` are the live metrics to record into; by default new ones, or none when the
    project file says ``monitoring.enabled: false``.
    """
    spec = project.spec
    settings = spec.serving
    specs = spec.deployment_specs
    from modelpilot.monitoring import ServingMetrics

    if metrics is None and spec.monitoring.enabled:
        metrics = ServingMetrics()
    live = metrics

    def on_batch(model: str, version: int, rows: int) -> None:
        try:
            if live is not None:
                live.observe_batch(model, str(version), rows)
        except Exception:  # a metric must never fail a prediction, nor stop the batcher
            logger.exception("recording the batch size failed")

    pipelines = PipelineBuilder.for_project(project, observer=metrics, trust=trust, force=force)
    key = load_pii_key(project.directory, project.environ)
    scrubbers: dict[str, PiiScrubber] = {}
    if any(f.pii for f in spec.features):
        for deployment in specs:
            scrubbers[deployment.model or spec.model_name] = PiiScrubber(
                spec.features, mode=spec.logging.pii, key=key
            )
    writer = LogWriter(
        project.prediction_log,
        flush_interval=spec.logging.flush_interval_ms / 1000,
        max_queue=spec.logging.max_queue,
        scrubbers=scrubbers,
        dead_letter_path=project.directory / ".modelpilot" / "dead-letter" / "predictions.jsonl",
    )
    manager = DeploymentManager(
        project.registry,
        specs,
        settings=settings,
        trust=trust,
        force=force,
        on_batch=on_batch if metrics is not None else None,
        pipelines=pipelines,
        sink=ScoringSink(writer, clock=clock, durable=spec.logging.durable, metrics=metrics),
    )
    tokens = TokenStore(
        path=project.resolve(settings.tokens_file),
        environ=project.environ,
        open_predict=settings.open_predict,
    )
    if metrics is not None and metrics.writer is None:
        metrics.writer = writer
    state = ServerState(project, manager, writer, tokens, clock=clock)
    state.metrics = metrics
    return state
