"""The server processes of a fleet in the database: their heartbeats, the version each one
serves (and is asked to move to, in a rolling update), and the leases that make one of them
the leader of a job (the rollout controller, the monitor).

Heartbeats and leases are timed by the lease table's clock (``store/_leases.py``): the
database's ``now()`` on PostgreSQL, so replicas on machines whose clocks differ agree on who
is alive and who leads; the process clock on SQLite, which is one machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from modelpilot.store import Lease, LeaseTable, check_fence
from modelpilot.store._tables import server_workers
from modelpilot.types import Clock

__all__ = ["FleetStore"]


class FleetStore:
    """Worker heartbeats and leases.

    ``clock`` times what the store writes; leases and heartbeats take the database's clock
    instead where there is one (``database_time``, see :class:`~modelpilot.store.LeaseTable`).

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> fleet = FleetStore(create_database("sqlite://"), clock=lambda: 100.0)
    >>> fleet.acquire_lease("monitor", "a", ttl=5.0), fleet.acquire_lease("monitor", "b", ttl=5.0)
    (True, False)
    """

    def __init__(
        self, engine: Engine, *, clock: Clock = time.time, database_time: bool | None = None
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.leases = LeaseTable(engine, clock=clock, database_time=database_time)

    @contextmanager
    def _leader_write(self) -> Iterator[Connection]:
        """A write transaction that a leader's job makes: fenced by its lease, if any."""
        with self.engine.begin() as connection:
            check_fence(connection)
            yield connection

    def heartbeat(self, worker: str, deployment: str, version: int, *, healthy: bool) -> None:
        now = self.leases.now()
        with self.engine.begin() as connection:
            done = connection.execute(
                update(server_workers)
                .where(
                    server_workers.c.worker_id == worker, server_workers.c.deployment == deployment
                )
                .values(version=version, healthy=int(healthy), heartbeat_at=now)
            ).rowcount
            if not done:
                connection.execute(
                    insert(server_workers).values(
                        worker_id=worker,
                        deployment=deployment,
                        version=version,
                        target_version=None,
                        healthy=int(healthy),
                        heartbeat_at=now,
                    )
                )

    def workers(self, deployment: str, *, max_age: float = 5.0) -> list[dict[str, Any]]:
        with self.engine.connect() as connection:
            rows = (
                connection.execute(
                    select(server_workers)
                    .where(
                        server_workers.c.deployment == deployment,
                        server_workers.c.heartbeat_at >= self.leases.now() - max_age,
                    )
                    .order_by(server_workers.c.worker_id)
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    def set_target(self, deployment: str, worker: str | None, version: int | None) -> None:
        query = update(server_workers).where(server_workers.c.deployment == deployment)
        if worker is not None:
            query = query.where(server_workers.c.worker_id == worker)
        with self._leader_write() as connection:
            connection.execute(query.values(target_version=version))

    def forget_worker(self, worker: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(server_workers).where(server_workers.c.worker_id == worker))

    def take_lease(self, name: str, holder: str, ttl: float) -> Lease | None:
        """Renew or take the lease; the :class:`~modelpilot.store.Lease` (the fencing token
        of the holder's writes), or None when another worker holds it."""
        return self.leases.take(name, holder, ttl)

    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        """Whether ``holder`` holds lease ``name`` now (renewed or taken)."""
        return self.take_lease(name, holder, ttl) is not None

    def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up if ``holder`` has it (a graceful stop); whether it did."""
        return self.leases.release(name, holder)
