"""Persisted rollout state: deployment states and rollouts (workers and leases: ``_fleet.py``).

Every change is a conditional update on the database, so two admins racing (or two worker
processes) get a clean :class:`~modelpilot.errors.ConflictError` and never a corrupted state.
A change the controller's leader makes (a step, a promotion, a rollback) is also fenced by its
lease: a leader that lost the lease meanwhile gets :class:`~modelpilot.store.LeaseLost`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from modelpilot.errors import ConflictError, NotFoundError
from modelpilot.rollout._fleet import FleetStore
from modelpilot.store._tables import deployment_states, rollouts

__all__ = ["DeploymentState", "RolloutRecord", "RolloutStore"]

ACTIVE = ("running", "paused", "switched")


@dataclass
class DeploymentState:
    name: str
    model: str
    version: int
    last_good_version: int | None
    active_rollout: int | None
    revision: int
    updated_at: float
    updated_by: str


@dataclass
class RolloutRecord:
    id: int
    deployment: str
    strategy: str
    candidate_version: int
    primary_version: int | None
    status: str
    step: int
    step_started_at: float
    paused: bool
    config: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""
    created_at: float = 0.0
    created_by: str = ""
    finished_at: float | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deployment": self.deployment,
            "strategy": self.strategy,
            "candidate_version": self.candidate_version,
            "primary_version": self.primary_version,
            "status": self.status,
            "step": self.step,
            "step_started_at": self.step_started_at,
            "paused": self.paused,
            "config": self.config,
            "reason": self.reason,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "finished_at": self.finished_at,
            "history": self.history[-20:],
        }


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


class RolloutStore(FleetStore):
    """Deployment states and rollouts (and, from :class:`FleetStore`, the workers and leases)."""

    # ---- deployment states ------------------------------------------------------------
    def ensure(self, name: str, model: str, version: int, actor: str) -> DeploymentState:
        try:
            with self.engine.begin() as connection:
                row = connection.execute(
                    select(deployment_states).where(deployment_states.c.name == name)
                ).first()
                if row is None:
                    connection.execute(
                        insert(deployment_states).values(
                            name=name,
                            model=model,
                            version=version,
                            last_good_version=None,
                            active_rollout=None,
                            revision=0,
                            updated_at=self.clock(),
                            updated_by=actor,
                        )
                    )
        except IntegrityError:
            # The worker processes of a first start all attach at once: another one inserted
            # the row between our look and our insert. Its row is as good as ours.
            pass
        return self.state(name)

    def state(self, name: str) -> DeploymentState:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(deployment_states).where(deployment_states.c.name == name)
            ).first()
        if row is None:
            raise NotFoundError("deployment", name, hint="is the server running it?")
        return DeploymentState(**row._mapping)

    def states(self) -> list[DeploymentState]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(deployment_states)).all()
        return [DeploymentState(**r._mapping) for r in rows]

    def set_version(
        self,
        name: str,
        version: int,
        *,
        last_good: int | None,
        actor: str,
        expect_revision: int | None = None,
        clear_rollout: bool = False,
    ) -> None:
        values: dict[str, Any] = {
            "version": version,
            "last_good_version": last_good,
            "revision": deployment_states.c.revision + 1,
            "updated_at": self.clock(),
            "updated_by": actor,
        }
        if clear_rollout:
            values["active_rollout"] = None
        query = update(deployment_states).where(deployment_states.c.name == name)
        if expect_revision is not None:
            query = query.where(deployment_states.c.revision == expect_revision)
        with self._leader_write() as connection:
            if connection.execute(query.values(**values)).rowcount == 0:
                raise ConflictError(
                    f"deployment {name!r} changed meanwhile; look at "
                    "`modelpilot status` and try again"
                )

    def bump(self, name: str) -> None:
        with self._leader_write() as connection:
            connection.execute(
                update(deployment_states)
                .where(deployment_states.c.name == name)
                .values(revision=deployment_states.c.revision + 1)
            )

    # ---- rollouts ---------------------------------------------------------------------
    def start(
        self,
        name: str,
        *,
        strategy: str,
        candidate: int,
        primary: int | None,
        config: dict[str, Any],
        actor: str,
        reason: str,
        status: str = "running",
    ) -> RolloutRecord:
        """Insert a rollout and claim the deployment for it, or raise a 409."""
        now = self.clock()
        with self._leader_write() as connection:
            inserted = connection.execute(
                insert(rollouts).values(
                    deployment=name,
                    strategy=strategy,
                    candidate_version=candidate,
                    primary_version=primary,
                    status=status,
                    step=0,
                    step_started_at=now,
                    paused=0,
                    config_json=_dumps(config),
                    history_json="[]",
                    reason=reason,
                    created_at=now,
                    created_by=actor,
                )
            )
            rollout_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
            claimed = connection.execute(
                update(deployment_states)
                .where(
                    deployment_states.c.name == name, deployment_states.c.active_rollout.is_(None)
                )
                .values(
                    active_rollout=rollout_id,
                    revision=deployment_states.c.revision + 1,
                    updated_at=now,
                    updated_by=actor,
                )
            ).rowcount
            if claimed == 0:
                connection.rollback()
                active = self.active(name)
                what = (
                    f"a {active.strategy} of v{active.candidate_version} started by "
                    f"{active.created_by} is {active.status}"
                    if active
                    else "another change is in progress"
                )
                raise ConflictError(
                    f"cannot start a {strategy} on {name!r}: {what}; "
                    "`modelpilot abort` or `rollback` it first, or wait"
                )
        return self.get(rollout_id)

    def get(self, rollout_id: int) -> RolloutRecord:
        with self.engine.connect() as connection:
            row = connection.execute(select(rollouts).where(rollouts.c.id == rollout_id)).first()
        if row is None:
            raise NotFoundError("rollout", str(rollout_id))
        return _record(row)

    def active(self, name: str) -> RolloutRecord | None:
        with self.engine.connect() as connection:
            rollout_id = connection.execute(
                select(deployment_states.c.active_rollout).where(deployment_states.c.name == name)
            ).scalar()
        return self.get(int(rollout_id)) if rollout_id is not None else None

    def history(self, name: str, *, limit: int = 20) -> list[RolloutRecord]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(rollouts)
                .where(rollouts.c.deployment == name)
                .order_by(rollouts.c.id.desc())
                .limit(limit)
            ).all()
        return [_record(r) for r in rows]

    def update(self, record: RolloutRecord, *, bump: bool = True) -> None:
        with self._leader_write() as connection:
            connection.execute(
                update(rollouts)
                .where(rollouts.c.id == record.id)
                .values(
                    strategy=record.strategy,
                    status=record.status,
                    step=record.step,
                    step_started_at=record.step_started_at,
                    paused=int(record.paused),
                    config_json=_dumps(record.config),
                    history_json=_dumps(record.history[-200:]),
                    reason=record.reason,
                    finished_at=record.finished_at,
                    primary_version=record.primary_version,
                )
            )
            if bump:
                connection.execute(
                    update(deployment_states)
                    .where(deployment_states.c.name == record.deployment)
                    .values(revision=deployment_states.c.revision + 1)
                )

    def finish(
        self,
        record: RolloutRecord,
        status: str,
        reason: str,
        *,
        version: int | None = None,
        last_good: int | None = None,
        actor: str,
    ) -> None:
        """End a rollout and release the deployment in one transaction."""
        now = self.clock()
        record.status, record.reason, record.finished_at = status, reason, now
        with self._leader_write() as connection:
            connection.execute(
                update(rollouts)
                .where(rollouts.c.id == record.id)
                .values(
                    status=status,
                    reason=reason,
                    finished_at=now,
                    history_json=_dumps(record.history[-200:]),
                )
            )
            values: dict[str, Any] = {
                "active_rollout": None,
                "revision": deployment_states.c.revision + 1,
                "updated_at": now,
                "updated_by": actor,
            }
            if version is not None:
                values["version"] = version
                values["last_good_version"] = last_good
            connection.execute(
                update(deployment_states)
                .where(
                    deployment_states.c.name == record.deployment,
                    deployment_states.c.active_rollout == record.id,
                )
                .values(**values)
            )


def _record(row: Any) -> RolloutRecord:
    data = row._mapping
    return RolloutRecord(
        id=data["id"],
        deployment=data["deployment"],
        strategy=data["strategy"],
        candidate_version=data["candidate_version"],
        primary_version=data["primary_version"],
        status=data["status"],
        step=data["step"],
        step_started_at=data["step_started_at"],
        paused=bool(data["paused"]),
        config=orjson.loads(data["config_json"]),
        history=orjson.loads(data["history_json"]),
        reason=data["reason"],
        created_at=data["created_at"],
        created_by=data["created_by"],
        finished_at=data["finished_at"],
    )
