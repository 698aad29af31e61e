"""What a running server holds: the project, its deployments, the log, the tokens, and the
components that start once the deployments are loaded (rollouts, automation, monitoring)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from modelpilot.alerting import AlertEngine
from modelpilot.automation import Ladder, RetrainLoop, ReviewQueue
from modelpilot.inference import (
    DeploymentManager,
    LogWriter,
    PipelineBuilder,
    PredictionRecorder,
)
from modelpilot.monitoring import Monitor, MonitorLeader, ServingMetrics
from modelpilot.project import Project
from modelpilot.rollout import RolloutController
from modelpilot.server._auth import TokenStore
from modelpilot.store import PiiScrubber, load_pii_key
from modelpilot.types import Clock

__all__ = ["Counters", "ServerState", "build_state"]

logger = logging.getLogger("modelpilot.server")


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
    """A server's parts. Those after ``tokens`` exist once start-up has loaded the models
    (``ready``); the request path checks ``ready`` before it uses them."""

    project: Project
    manager: DeploymentManager
    writer: LogWriter
    recorder: PredictionRecorder
    tokens: TokenStore
    clock: Clock = time.time
    metrics: ServingMetrics | None = None
    started_at: float = field(default_factory=time.time)
    counters: Counters = field(default_factory=Counters)
    load_error: str | None = None
    tick_seconds: float = 1.0
    #: A server process of its own (``modelpilot serve``): tune the collector once loaded.
    tune_gc: bool = False
    #: One of several workers on one shared socket (``serve --workers N``): accept connections
    #: only once the deployments are loaded, so a client is never answered "loading" by one
    #: worker while the others serve. A single process accepts at once and says "loading" on
    #: ``/readyz``, which is what a load balancer or Kubernetes probe wants.
    accept_when_loaded: bool = False
    controller: RolloutController | None = None
    monitor: Monitor | None = None
    monitor_leader: MonitorLeader | None = None
    alerts: AlertEngine | None = None
    reviews: ReviewQueue | None = None
    ladder: Ladder | None = None
    retrain: RetrainLoop | None = None
    #: Each deployment's degree of automation, as the request path reads it.
    degrees: dict[str, str] = field(default_factory=dict)
    #: Set at SIGTERM: ``/readyz`` answers 503 while requests are still answered (the drain).
    draining: bool = False

    def degree_of(self, deployment: str) -> str:
        return self.degrees.get(deployment, "full")

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
    clock: Clock = time.time,
    metrics: ServingMetrics | None = None,
) -> ServerState:
    """Everything a server process holds, built from the project.

    ``metrics`` are the live metrics to record into; by default new ones, or none when the
    project file says ``monitoring.enabled: false``.
    """
    spec = project.spec
    if metrics is None and spec.monitoring.enabled:
        metrics = ServingMetrics()
    live = metrics

    def on_batch(model: str, version: int, rows: int) -> None:
        try:
            if live is not None:
                live.observe_batch(model, str(version), rows)
        except Exception:  # a metric must never fail a prediction, nor stop the batcher
            logger.exception("recording the batch size failed")

    key = load_pii_key(project.directory, project.environ)
    scrubbers: dict[str, PiiScrubber] = {}
    if any(f.pii for f in spec.features):
        for deployment in spec.deployment_specs:
            scrubbers[deployment.model or spec.model_name] = PiiScrubber(
                spec.features, mode=spec.logging.pii, key=key
            )
    writer = LogWriter(
        project.prediction_log,
        flush_interval=spec.logging.flush_interval_ms / 1000,
        max_queue=spec.logging.max_queue,
        scrubbers=scrubbers,
        dead_letter_path=project.directory / ".modelpilot" / "dead-letter" / "predictions.jsonl",
        dead_letter_reserve=spec.logging.dead_letter_reserve_bytes,
        durable_timeout=spec.logging.durable_timeout_s,
    )
    recorder = PredictionRecorder(
        writer, clock=clock, durable=spec.logging.durable, observer=metrics
    )
    manager = DeploymentManager(
        project.registry,
        spec.deployment_specs,
        settings=spec.serving,
        trust=trust,
        force=force,
        on_batch=on_batch if metrics is not None else None,
        pipelines=PipelineBuilder.for_project(project, observer=metrics, trust=trust, force=force),
        recorder=recorder,
    )
    tokens = TokenStore(
        path=project.resolve(spec.serving.tokens_file),
        environ=project.environ,
        open_predict=spec.serving.open_predict,
    )
    if metrics is not None and metrics.writer is None:
        metrics.writer = writer
    return ServerState(project, manager, writer, recorder, tokens, clock=clock, metrics=metrics)
