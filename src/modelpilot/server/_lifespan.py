"""A server's start and stop: what is built once the models are loaded, and the drain.

Start-up loads every deployment in a worker thread (``/readyz`` answers 503 meanwhile), then
builds what a request may touch: the rollout controller (routing from the database), the
review queue and degrees of automation, the retraining loop, the monitor, the alert engine with
the closed loop's actions. Only then is the server ready. At SIGTERM the drain comes first
(``_drain.py``). At a graceful stop (uvicorn has finished the in-flight requests), the control
loop's last tick ends, the model threads stop, the log writer commits what they logged, the
last traffic counts are written, queued notifications go out, the leases are released and the
replica leaves the fleet's list of workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from modelpilot.alerting import Alert, AlertEngine
from modelpilot.automation import Ladder, RetrainLoop, ReviewQueue
from modelpilot.errors import ModelpilotError
from modelpilot.monitoring import Monitor, MonitorLeader
from modelpilot.rollout import RolloutController
from modelpilot.server._control import ControlLoop, release_leases
from modelpilot.server._drain import drain_on_sigterm
from modelpilot.server._errors import log_unexpected
from modelpilot.server._metrics_port import serve_metrics
from modelpilot.server._state import ServerState

__all__ = ["lifespan", "start_components"]

logger = logging.getLogger("modelpilot.server")


_starting = threading.Lock()
_REPORT_EVERY_S = 60.0


def start_components(state: ServerState, *, raise_errors: bool = False) -> None:
    """Load the deployments and build what runs beside them; mark the server ready.

    A failure leaves the server up, not ready, saying why (``/readyz``; raised too with
    ``raise_errors``): a reload once the cause is fixed (an artifact restored) runs this
    again, without a restart."""
    with _starting:
        _start_components(state, raise_errors=raise_errors)


def _start_components(state: ServerState, *, raise_errors: bool) -> None:
    if state.ready:
        return
    try:
        state.manager.load_all(ready=False)
        controller = RolloutController(state.project, state.manager, clock=state.clock)
        controller.attach()
        state.controller = controller
        _start_automation(state, controller)
        if state.metrics is not None:
            monitor = Monitor(
                state.project,
                state.metrics,
                state.manager,
                clock=state.clock,
                replica=controller.worker_id,
            )
            monitor.reviews = state.reviews
            # Alert rules on every new batch of the monitor's points.
            alerting = AlertEngine.from_project(
                state.project, controller=controller, metrics=state.metrics, clock=state.clock
            )
            monitor.listeners.append(alerting.on_points)
            monitor.series_ended.append(alerting.resolve_absent)
            _register_automation_actions(state, alerting)
            state.monitor = monitor
            state.alerts = alerting
            # One worker process records the time series and evaluates the alerts.
            state.monitor_leader = MonitorLeader(
                monitor, controller.store, controller.worker_id, alerts=alerting
            )
        state.load_error = None
        state.manager.ready = True
        for name, why in state.manager.load_errors.items():
            logger.error("deployment %s could not be loaded: %s", name, why)
    except Exception as exc:  # readyz reports it; the process stays up to say so
        state.load_error = str(exc)
        state.manager.ready = False
        logger.error("loading the deployments failed: %s", exc)
        if raise_errors:
            raise
    if state.tune_gc:
        _tune_gc()


def _start_automation(state: ServerState, controller: RolloutController) -> None:
    """Review queue, degrees of automation and the retraining loop of a starting server."""
    project = state.project
    settings = project.spec.automation
    reviews = ReviewQueue(
        project.engine,
        project.prediction_log,
        clock=state.clock,
        tolerance=settings.agreement_tolerance,
    )
    ladder = Ladder(
        project.engine, reviews, settings, audit=project.registry.audit, clock=state.clock
    )
    for deployment in state.manager.all():
        state.degrees[deployment.name] = ladder.state(
            deployment.name, default=deployment.spec.automation
        ).degree

    def deploy(version: int, reason: str, expected: dict[str, Any]) -> dict[str, Any]:
        name = project.spec.deployment_specs[0].name
        return controller.deploy(
            name,
            version,
            project.spec.retrain.deploy,
            actor="retrain",
            reason=reason,
            expected=expected,
        )

    state.reviews = reviews
    state.ladder = ladder
    state.retrain = RetrainLoop(project, clock=state.clock, deploy=deploy)


def _register_automation_actions(state: ServerState, alerting: AlertEngine) -> None:
    """The alert actions of the closed loop: lower the automation degree, retrain."""
    ladder, retrain = state.ladder, state.retrain
    if ladder is None or retrain is None:
        return

    def lower(alert: Alert) -> str:
        if not state.project.spec.automation.lower_on_alerts:
            return "automation.lower_on_alerts is false; the degree stays"
        before = ladder.state(alert.deployment).degree
        after = ladder.lower(
            alert.deployment,
            actor="alerts",
            reason=f"alert {alert.rule} firing (value {alert.value})",
        )
        state.degrees[alert.deployment] = after.degree
        if after.degree == before:
            return f"{alert.deployment} is already at {before}; nothing lower"
        return f"lowered {alert.deployment} from {before} to {after.degree}"

    def start_retraining(alert: Alert) -> str:
        try:
            run = retrain.trigger(reason=f"alert {alert.rule}", actor="alerts")
        except ModelpilotError as exc:  # cooldown, too few labels, no trainer: say so
            return f"retraining not started: {exc.message}"
        return f"retraining run {run.id} started"

    alerting.register_action("lower_automation", lower)
    alerting.register_action("retrain", start_retraining)


def _tune_gc() -> None:
    """Keep the garbage collector and the GIL's hand-overs off the request path.

    What is loaded by now (the models, scikit-learn, pandas, the routes) lives as long as the
    process: ``gc.freeze`` takes it out of the collector's sight, so the collections that
    remain scan only what requests created. Before, every full collection walked the whole
    heap: 7-14% of the server's CPU at 64 connections (``benchmarks/serving.py``, perf). The
    thresholds stay at their defaults: a larger first threshold makes collections rarer but
    each one longer (a 50,000 threshold showed as 5-10 ms pauses at the 99th percentile)
    without saving work, since young collections cost what is alive when they run.
    """
    gc.collect()
    gc.freeze()
    # The model and log-writer threads hold the GIL while they run Python code; the event
    # loop waits up to the switch interval (5 ms by default) to get it back. 1 ms bounds
    # that wait at a small cost in switches.
    sys.setswitchinterval(0.001)


def lifespan(state: ServerState) -> Any:
    """The Starlette lifespan of a server on ``state`` (see the module's docstring)."""

    @contextlib.asynccontextmanager
    async def run(_: Starlette) -> AsyncIterator[None]:
        state.writer.start()
        loop = asyncio.get_running_loop()
        control = ControlLoop(state)
        stopping = asyncio.Event()

        async def control_loop() -> None:
            reported: dict[str, float] = {}
            while not stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), timeout=state.tick_seconds)
                    return
                try:
                    await loop.run_in_executor(None, control.tick)
                except Exception as exc:
                    # Once a minute per kind of failure: a database that is away fails every
                    # tick, and a traceback a second would fill the disk it is missing.
                    kind, now = type(exc).__name__, time.monotonic()
                    if now - reported.get(kind, -_REPORT_EVERY_S) >= _REPORT_EVERY_S:
                        reported[kind] = now
                        log_unexpected(exc, "the control loop (retried every tick)")

        settings = state.project.spec.serving
        drain_on_sigterm(state, loop, settings.drain_s)
        metrics_server = None
        if settings.metrics_port is not None and state.metrics is not None:
            metrics_server = serve_metrics(state.metrics, settings.host, settings.metrics_port)
        loading = loop.run_in_executor(None, start_components, state)
        controlling = loop.create_task(control_loop())
        if state.accept_when_loaded:  # uvicorn serves the socket once the lifespan started
            await asyncio.shield(loading)
        try:
            yield
        finally:
            # The tick under way ends first: it must not take a lease back after the release.
            stopping.set()
            await controlling
            await asyncio.wait_for(asyncio.shield(loading), timeout=None)
            # uvicorn has finished the in-flight requests: commit what they logged and
            # counted, deliver queued notifications, leave the fleet.
            state.manager.close()
            drain = state.project.spec.logging.drain_timeout_s
            await loop.run_in_executor(None, state.writer.stop, drain)
            await loop.run_in_executor(None, _last_report, state)
            if state.alerts is not None:  # deliver queued notifications
                await loop.run_in_executor(None, state.alerts.close, 5.0)
            if state.controller is not None:  # another worker (or the next start) takes over
                await loop.run_in_executor(None, release_leases, state.controller)
            if metrics_server is not None:
                metrics_server[0].shutdown()

    return run


def _last_report(state: ServerState) -> None:
    """The traffic counted since the last interval's report, written now: a replica that
    stops loses none of its counts (``monitoring/_traffic.py``)."""
    if state.monitor is None:
        return
    try:
        state.monitor.traffic.flush(force=True)
    except Exception as exc:  # the database is gone: those counts are lost, the log is not
        logger.warning("the last traffic counts were not written: %s", exc)
