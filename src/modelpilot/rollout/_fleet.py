"""The server processes of a fleet in the database: their heartbeats, the version each one
serves (and is asked to move to, in a rolling update), and the leases that make one of them
the leader of a job (the rollout controller, the monitor)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from modelpilot.store._tables import leases, server_workers
from modelpilot.types import Clock

__all__ = ["FleetStore"]


class FleetStore:
    """Worker heartbeats and leases, with time from ``clock``.

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> fleet = FleetStore(create_database("sqlite://"), clock=lambda: 100.0)
    >>> fleet.acquire_lease("monitor", "a", ttl=5.0), fleet.acquire_lease("monitor", "b", ttl=5.0)
    (True, False)
    """

    def __init__(self, engine: Engine, *, clock: Clock = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def heartbeat(self, worker: str, deployment: str, version: int, *, healthy: bool) -> None:
        now = self.clock()
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
                        server_workers.c.heartbeat_at >= self.clock() - max_age,
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
        with self.engine.begin() as connection:
            connection.execute(query.values(target_version=version))

    def forget_worker(self, worker: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(delete(server_workers).where(server_workers.c.worker_id == worker))

    def acquire_lease(self, name: str, holder: str, ttl: float) -> bool:
        now = self.clock()
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(leases)
                .where(
                    leases.c.name == name,
                    (leases.c.holder == holder) | (leases.c.expires_at < now),
                )
                .values(holder=holder, expires_at=now + ttl)
            ).rowcount
            if taken:
                return True
            exists = connection.execute(select(leases.c.name).where(leases.c.name == name)).first()
        if exists is not None:
            return False
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(leases).values(name=name, holder=holder, expires_at=now + ttl)
                )
        except IntegrityError:  # another worker created it first
            return False
        return True

    def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up if ``holder`` has it (a graceful stop); whether it did."""
        with self.engine.begin() as connection:
            released = connection.execute(
                update(leases)
                .where(leases.c.name == name, leases.c.holder == holder)
                .values(expires_at=0.0)
            ).rowcount
        return bool(released)
