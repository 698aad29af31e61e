"""One monitor for all worker processes: the one holding a lease records and alerts.

``modelpilot serve --workers N`` runs N processes, each with a monitor and an alert engine.
Left alone, each would write every time-series point and fire every alert (notifications,
actions) N times. As the rollout controller does with its ``rollout-controller`` lease, the
worker holding the ``monitor`` lease in the metadata database ticks the monitor and evaluates
the alert rules; the others follow the alerts the holder saved. When the holder dies its lease
runs out after ``ttl`` seconds and the next worker to ask takes over.

The holder ticks inside ``fenced(lease)``: every alert state it saves and every action it
starts checks, in the same transaction, that the lease still has its epoch. A holder that
stalled past its lease and lost it (its writes raise ``LeaseLost``) steps down instead of
firing or acting a second time.
"""

from __future__ import annotations

import logging
from typing import Protocol

from modelpilot.monitoring._monitor import Monitor
from modelpilot.store import Lease, LeaseLost, fenced

logger = logging.getLogger("modelpilot.monitoring")

__all__ = ["MonitorLeader"]


class LeaseStore(Protocol):
    """What hands out the lease: ``modelpilot.rollout.RolloutStore``."""

    def take_lease(self, name: str, holder: str, ttl: float) -> Lease | None: ...

    def release_lease(self, name: str, holder: str) -> bool: ...


class AlertFollower(Protocol):
    """What follows the holder's alerts: ``modelpilot.alerting.AlertEngine``."""

    def reload(self) -> None: ...


class MonitorLeader:
    """Ticks ``monitor`` only in the worker process that holds the ``name`` lease.

    Call :meth:`tick` from every worker's control loop (more often than ``ttl``: each call
    renews the lease). ``alerts``, the engine listening to the monitor's points, reloads its
    state from the database when this worker does not hold the lease, and once more when it
    takes the lease over, so a firing alert is not fired (nor notified) twice.

    Examples
    --------
    >>> from modelpilot.rollout import RolloutStore
    >>> from modelpilot.store import create_database
    >>> now = [0.0]
    >>> store = RolloutStore(create_database("sqlite://"), clock=lambda: now[0])
    >>> store.acquire_lease("monitor", "worker-a", ttl=5.0)
    True
    >>> store.acquire_lease("monitor", "worker-b", ttl=5.0)  # worker-a holds it
    False
    >>> now[0] = 6.0  # worker-a stopped renewing it
    >>> store.acquire_lease("monitor", "worker-b", ttl=5.0)
    True
    """

    def __init__(
        self,
        monitor: Monitor,
        store: LeaseStore,
        worker_id: str,
        *,
        alerts: AlertFollower | None = None,
        name: str = "monitor",
        ttl: float = 10.0,
    ) -> None:
        self.monitor = monitor
        self.store = store
        self.worker_id = worker_id
        self.alerts = alerts
        self.name = name
        self.ttl = ttl
        self.leading = False

    def tick(self) -> bool:
        """Renew or take the lease; tick the monitor if this worker holds it. Returns that."""
        lease = self.store.take_lease(self.name, self.worker_id, ttl=self.ttl)
        if lease is None:
            self._follow()
            return False
        if not self.leading:
            self.leading = True
            # The previous holder may have changed alerts since our last look: start from the
            # database's state, and from our own counters' current values.
            if self.alerts is not None:
                self.alerts.reload()
            self.monitor.resume()
        try:
            with fenced(lease):
                self.monitor.tick()
        except LeaseLost as exc:  # we stalled and another worker took over meanwhile
            logger.warning("%s", exc.message)
            self._follow()
            return False
        return True

    def step_down(self) -> None:
        """Give the lease up and stop leading (a replica that drains before it stops)."""
        self.store.release_lease(self.name, self.worker_id)
        self._follow()

    def _follow(self) -> None:
        if self.leading:
            self.leading = False
            self.monitor.stop_leading()
        if self.alerts is not None:
            self.alerts.reload()  # GET /v1/alerts and the firing gauge of this worker
