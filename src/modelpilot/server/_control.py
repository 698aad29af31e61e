"""The server's control loop: what runs beside the request path, once a tick, on a thread.

One worker process (the holder of the ``rollout-controller`` lease) advances the rollouts,
runs the automation ladder and the retraining schedule, and compacts the prediction log; every
worker follows the routing and the degrees of automation the database holds, and the holder of
the ``monitor`` lease records the time series and evaluates the alert rules.
"""

from __future__ import annotations

import logging
import threading

from modelpilot.errors import ModelpilotError
from modelpilot.rollout import RolloutController
from modelpilot.server._state import ServerState

__all__ = ["CONTROLLER_LEASE", "MONITOR_LEASE", "ControlLoop", "release_leases"]

logger = logging.getLogger("modelpilot.server")

CONTROLLER_LEASE = "rollout-controller"
MONITOR_LEASE = "monitor"
#: How often the leader runs the automation ladder and expires old reviews.
LADDER_INTERVAL_S = 10.0


class ControlLoop:
    """The timers of one server process (see the module's docstring); :meth:`tick` runs them."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._last_ladder = 0.0
        self._last_schedule = state.clock()
        self._next_compaction: float | None = None
        self._compactor: threading.Thread | None = None

    def tick(self) -> None:
        state = self.state
        ctl = state.controller
        if ctl is None:
            return
        ctl.heartbeat()
        leading = ctl.store.acquire_lease(CONTROLLER_LEASE, ctl.worker_id, ttl=5.0)
        if leading:
            ctl.tick()
        else:
            ctl.reconcile()
        if state.monitor_leader is not None:
            state.monitor_leader.tick()
        self._automation(leading=leading)
        if leading:
            self._compact_log()

    def _automation(self, *, leading: bool) -> None:
        """Follow degree changes made elsewhere; the leading worker also runs the ladder and
        the retraining schedule (once for all workers)."""
        state = self.state
        ladder, reviews = state.ladder, state.reviews
        if ladder is None or reviews is None:
            return
        now = state.clock()
        for deployment in state.manager.all():
            state.degrees[deployment.name] = ladder.state(deployment.name).degree
        if not leading:
            return
        if now - self._last_ladder >= LADDER_INTERVAL_S:
            self._last_ladder = now
            for deployment in state.manager.all():
                ladder.evaluate(deployment.name)
            reviews.expire(state.project.spec.automation.review_max_age_s)
        schedule = state.project.spec.retrain.schedule_s
        if schedule and state.retrain is not None and now - self._last_schedule >= schedule:
            self._last_schedule = now
            try:
                state.retrain.trigger(reason="schedule", actor="schedule")
            except ModelpilotError as exc:
                logger.info("scheduled retraining not started: %s", exc.message)

    def _compact_log(self) -> None:
        """Every ``logging.compact_interval_s``, merge the log's small segments older than one
        interval, in a thread of its own (a backlog may take a while; the control loop's
        heartbeats and leases must not wait for it)."""
        settings = self.state.project.spec.logging
        now = self.state.clock()
        if not settings.compact_interval_s:
            return
        if self._next_compaction is None:  # not while the server starts and warms up
            self._next_compaction = now + settings.compact_interval_s
        if now < self._next_compaction:
            return
        if self._compactor is not None and self._compactor.is_alive():
            return
        self._next_compaction = now + settings.compact_interval_s
        self._compactor = threading.Thread(
            target=self._compact,
            args=(now - settings.compact_interval_s, settings.compact_rows),
            name="modelpilot-compactor",
            daemon=True,  # a run cut short by the exit is rolled back by the database
        )
        self._compactor.start()

    def _compact(self, older_than: float, target_rows: int) -> None:
        try:
            result = self.state.project.prediction_log.compact(
                older_than=older_than, target_rows=target_rows
            )
        except Exception as exc:  # the next interval tries again
            logger.warning("compacting the prediction log failed: %s", exc)
            return
        if result.segments_merged:
            logger.info(
                "prediction log: %d segments merged into %d (%d rows)",
                result.segments_merged,
                result.segments_written,
                result.rows,
            )


def release_leases(controller: RolloutController) -> None:
    """Give up this worker's leases at a graceful stop, so nobody waits for them to expire."""
    for name in (CONTROLLER_LEASE, MONITOR_LEASE):
        try:
            controller.store.release_lease(name, controller.worker_id)
        except Exception as exc:  # the database is gone: the leases simply expire
            logger.info("lease %s not released: %s", name, exc)
