"""The server's control loop: what runs beside the request path, once a tick, on a thread.

One replica (the holder of the ``rollout-controller`` lease) advances the rollouts, runs the
automation ladder and the retraining schedule, and compacts the prediction log; every replica
reports its heartbeat and its traffic of the interval, and follows the routing and the degrees
of automation the database holds; the holder of the ``monitor`` lease records the time series
and evaluates the alert rules. The leader's work runs inside ``fenced(lease)``: each of its
writes checks that the lease still has its epoch (``store/_leases.py``), so a leader that
stalled and lost the lease writes nothing when it wakes up. A replica that drains (SIGTERM)
gives its leases up at once and only follows until it stops.
"""

from __future__ import annotations

import logging
import threading

from modelpilot.errors import ModelpilotError
from modelpilot.rollout import RolloutController
from modelpilot.server._state import ServerState
from modelpilot.store import Lease, LeaseLost, fenced

__all__ = [
    "CONTROLLER_LEASE",
    "CONTROLLER_TTL_S",
    "MONITOR_LEASE",
    "ControlLoop",
    "release_leases",
]

logger = logging.getLogger("modelpilot.server")

CONTROLLER_LEASE = "rollout-controller"
MONITOR_LEASE = "monitor"
#: The controller's lease lasts this long unless renewed (every tick): a dead or stalled
#: leader is replaced within it plus a tick (``docs/scale-out.md``).
CONTROLLER_TTL_S = 5.0
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
        self._stepped_down = False

    def tick(self) -> None:
        state = self.state
        ctl = state.controller
        if ctl is None:
            return
        ctl.heartbeat()
        if state.monitor is not None:
            try:
                state.monitor.traffic.flush()  # every replica's counts of the interval
            except Exception as exc:  # retried at the next tick; leading must go on
                logger.warning("this replica's traffic counts were not written: %s", exc)
        if state.draining:  # leave the leading to the others; keep following the routing
            self._step_down()
            ctl.reconcile()
            return
        lease = ctl.store.take_lease(CONTROLLER_LEASE, ctl.worker_id, ttl=CONTROLLER_TTL_S)
        try:
            with fenced(lease):
                if lease is not None:
                    ctl.tick()
                else:
                    ctl.reconcile()
                self._automation(leading=lease is not None)
        except LeaseLost as exc:  # stalled past the lease: another replica leads now
            logger.warning("%s", exc.message)
            lease = None
        if state.monitor_leader is not None:
            state.monitor_leader.tick()
        if lease is not None:
            self._compact_log(lease)

    def _step_down(self) -> None:
        """Give the leases up once, at the start of a drain: the next leader takes over
        while this replica still answers requests."""
        if self._stepped_down:
            return
        self._stepped_down = True
        ctl = self.state.controller
        if ctl is not None:
            ctl.store.release_lease(CONTROLLER_LEASE, ctl.worker_id)
        if self.state.monitor_leader is not None:
            self.state.monitor_leader.step_down()

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
            if state.retrain is not None:
                state.retrain.tick()  # the retry rule (docs/automation.md)
        schedule = state.project.spec.retrain.schedule_s
        if schedule and state.retrain is not None and now - self._last_schedule >= schedule:
            self._last_schedule = now
            try:
                state.retrain.trigger(reason="schedule", actor="schedule")
            except ModelpilotError as exc:
                logger.info("scheduled retraining not started: %s", exc.message)

    def _compact_log(self, lease: Lease) -> None:
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
            args=(now - settings.compact_interval_s, settings.compact_rows, lease),
            name="modelpilot-compactor",
            daemon=True,  # a run cut short by the exit is rolled back by the database
        )
        self._compactor.start()

    def _compact(self, older_than: float, target_rows: int, lease: Lease) -> None:
        try:
            result = self.state.project.prediction_log.compact(
                older_than=older_than,
                target_rows=target_rows,
                fence=lease,  # a leader that lost its lease meanwhile stops merging
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
    """Give up this worker's leases at a graceful stop, so nobody waits for them to expire,
    and leave the list of workers (a rolling update no longer waits for this one)."""
    for name in (CONTROLLER_LEASE, MONITOR_LEASE):
        try:
            controller.store.release_lease(name, controller.worker_id)
        except Exception as exc:  # the database is gone: the leases simply expire
            logger.info("lease %s not released: %s", name, exc)
    try:
        controller.store.forget_worker(controller.worker_id)
    except Exception as exc:  # its heartbeat ages out instead
        logger.info("worker %s not removed: %s", controller.worker_id, exc)
