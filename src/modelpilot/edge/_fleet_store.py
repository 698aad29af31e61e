"""The fleet's state in the metadata database: edge rollouts and devices (migration 0008)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select, update

from modelpilot.store._tables import edge_devices, edge_rollouts

__all__ = ["EdgeRollout", "FleetStore"]

RUNNING, PROMOTED, ROLLED_BACK = "running", "promoted", "rolled_back"


@dataclass
class EdgeRollout:
    """One edge rollout: ``share`` percent of the devices (stable by device id) run the
    candidate while it is ``running``; it ends ``promoted`` or ``rolled_back``."""

    id: int
    deployment: str
    model: str
    primary_version: int
    candidate_version: int
    share: float
    state: str
    started_at: float
    started_by: str
    ended_at: float | None = None
    reason: str = ""
    failures: int = 0
    analyzed_at: float | None = None
    gates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deployment": self.deployment,
            "model": self.model,
            "primary_version": self.primary_version,
            "candidate_version": self.candidate_version,
            "share": self.share,
            "state": self.state,
            "started_at": self.started_at,
            "started_by": self.started_by,
            "ended_at": self.ended_at,
            "reason": self.reason,
            "failures": self.failures,
            "analyzed_at": self.analyzed_at,
            "gates": self.gates,
        }


def _rollout(row: Any) -> EdgeRollout:
    return EdgeRollout(
        id=row.id,
        deployment=row.deployment,
        model=row.model,
        primary_version=row.primary_version,
        candidate_version=row.candidate_version,
        share=row.share,
        state=row.state,
        started_at=row.started_at,
        started_by=row.started_by,
        ended_at=row.ended_at,
        reason=row.reason,
        failures=row.failures,
        analyzed_at=row.analyzed_at,
        gates=json.loads(row.gates_json),
    )


class FleetStore:
    """Rows of ``edge_rollouts`` and ``edge_devices``.

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> store = FleetStore(create_database("sqlite://"))
    >>> record = store.start("houses", "houses", 1, 2, 50.0, now=10.0, actor="alice")
    >>> store.latest("houses").state, store.running("houses").candidate_version
    ('running', 2)
    >>> store.finish(record.id, "promoted", "gates passed", now=20.0)
    True
    >>> store.running("houses") is None
    True
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- rollouts -------------------------------------------------------------------------
    def latest(self, deployment: str) -> EdgeRollout | None:
        query = (
            select(edge_rollouts)
            .where(edge_rollouts.c.deployment == deployment)
            .order_by(edge_rollouts.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else _rollout(row)

    def running(self, deployment: str) -> EdgeRollout | None:
        latest = self.latest(deployment)
        return latest if latest is not None and latest.running else None

    def history(self, deployment: str, *, limit: int = 20) -> list[EdgeRollout]:
        query = (
            select(edge_rollouts)
            .where(edge_rollouts.c.deployment == deployment)
            .order_by(edge_rollouts.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [_rollout(row) for row in connection.execute(query)]

    def start(
        self,
        deployment: str,
        model: str,
        primary: int,
        candidate: int,
        share: float,
        *,
        now: float,
        actor: str,
    ) -> EdgeRollout:
        with self.engine.begin() as connection:
            result = connection.execute(
                insert(edge_rollouts).values(
                    deployment=deployment,
                    model=model,
                    primary_version=primary,
                    candidate_version=candidate,
                    share=share,
                    state=RUNNING,
                    started_at=now,
                    started_by=actor,
                    reason="",
                    failures=0,
                    gates_json="[]",
                )
            )
            key = int(result.inserted_primary_key[0])  # type: ignore[index]
        return EdgeRollout(key, deployment, model, primary, candidate, share, RUNNING, now, actor)

    def finish(self, rollout_id: int, state: str, reason: str, *, now: float) -> bool:
        """End a running rollout; False when it was no longer running (someone else ended it)."""
        with self.engine.begin() as connection:
            result = connection.execute(
                update(edge_rollouts)
                .where(edge_rollouts.c.id == rollout_id, edge_rollouts.c.state == RUNNING)
                .values(state=state, reason=reason, ended_at=now)
            )
        return bool(result.rowcount)

    def record_analysis(
        self, rollout_id: int, *, failures: int, gates: list[dict[str, Any]], now: float
    ) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(edge_rollouts)
                .where(edge_rollouts.c.id == rollout_id)
                .values(failures=failures, gates_json=json.dumps(gates), analyzed_at=now)
            )

    # ---- devices --------------------------------------------------------------------------
    def seen(
        self,
        deployment: str,
        device: str,
        *,
        now: float,
        assigned: int | None = None,
        uploaded: int = 0,
        duplicates: int = 0,
        dropped: int | None = None,
    ) -> None:
        """Note a device's request: an assignment it was given, or an upload."""
        key = (edge_devices.c.deployment == deployment, edge_devices.c.device == device)
        with self.engine.begin() as connection:
            row = connection.execute(select(edge_devices).where(*key)).first()
            if row is None:
                connection.execute(
                    insert(edge_devices).values(
                        deployment=deployment,
                        device=device,
                        first_seen=now,
                        last_seen=now,
                        assigned_version=assigned,
                        last_sync=now if uploaded or duplicates else None,
                        uploaded=uploaded,
                        duplicates=duplicates,
                        dropped=dropped or 0,
                    )
                )
                return
            values: dict[str, Any] = {"last_seen": now}
            if assigned is not None:
                values["assigned_version"] = assigned
            if uploaded or duplicates or dropped is not None:
                values["last_sync"] = now
                values["uploaded"] = row.uploaded + uploaded
                values["duplicates"] = row.duplicates + duplicates
            if dropped is not None:  # the device's own running total
                values["dropped"] = max(row.dropped, dropped)
            connection.execute(update(edge_devices).where(*key).values(**values))

    def devices(self, deployment: str, *, limit: int = 1000) -> list[dict[str, Any]]:
        query = (
            select(edge_devices)
            .where(edge_devices.c.deployment == deployment)
            .order_by(edge_devices.c.first_seen, edge_devices.c.device)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [
                {k: v for k, v in row._mapping.items() if k != "deployment"}
                for row in connection.execute(query)
            ]

    def rank(self, deployment: str, device: str) -> int | None:
        """The device's place among the deployment's devices by first sight (0 is the first)."""
        column = edge_devices.c
        with self.engine.connect() as connection:
            first = connection.execute(
                select(column.first_seen).where(
                    column.deployment == deployment, column.device == device
                )
            ).scalar()
            if first is None:
                return None
            earlier = connection.execute(
                select(func.count()).where(
                    column.deployment == deployment,
                    or_(
                        column.first_seen < first,
                        and_(column.first_seen == first, column.device < device),
                    ),
                )
            ).scalar_one()
        return int(earlier)
