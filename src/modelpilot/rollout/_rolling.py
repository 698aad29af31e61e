"""``rolling``: move the worker processes to the new version one at a time; each one
smoke-tests it first and reports healthy (or not) in its heartbeat before the next moves."""

from __future__ import annotations

from typing import Any, ClassVar

from modelpilot.errors import ModelpilotError
from modelpilot.inference import LoadedVersion, Router, StaticRouter
from modelpilot.rollout._smoke import smoke_test
from modelpilot.rollout._store import RolloutRecord
from modelpilot.rollout._strategy import Event, RolloutContext, StagedStrategy

__all__ = ["RollingDeploy"]


class RollingDeploy(StagedStrategy):
    name: ClassVar[str] = "rolling"
    alert_rollback: ClassVar[bool] = False
    smoke_first: ClassVar[bool] = True

    def started(self, ctx: RolloutContext, record: RolloutRecord, actor: str) -> None:
        # Targets an earlier rolling deployment left behind (aborted, or promoted and then
        # rolled back) would move every worker they name at once: start with none.
        ctx.store.set_target(record.deployment, None, None)

    def router(
        self,
        ctx: RolloutContext,
        record: RolloutRecord,
        primary: LoadedVersion,
        candidate: LoadedVersion,
    ) -> Router:
        workers = {w["worker_id"]: w for w in ctx.store.workers(record.deployment)}
        mine = workers.get(ctx.worker_id)
        name = record.deployment
        if mine is not None and mine["target_version"] == candidate.version.version:
            try:
                smoke_test(candidate, ctx.settings.smoke_requests)
            except ModelpilotError:
                ctx.store.heartbeat(ctx.worker_id, name, primary.version.version, healthy=False)
                return StaticRouter(primary)
            ctx.store.heartbeat(ctx.worker_id, name, candidate.version.version, healthy=True)
            return StaticRouter(candidate)
        return StaticRouter(primary)

    def tick(self, ctx: RolloutContext, record: RolloutRecord, now: float) -> list[Event]:
        workers = ctx.store.workers(record.deployment)
        target = record.candidate_version
        if any(w["target_version"] == target and not w["healthy"] for w in workers):
            ctx.store.set_target(record.deployment, None, record.primary_version)
            return [
                ctx.roll_back_rollout(record, "a worker failed its health check on the new version")
            ]
        moving = [w for w in workers if w["target_version"] == target and w["version"] != target]
        if moving:
            return []  # wait for the worker in transition to report healthy
        remaining = [w for w in workers if w["version"] != target]
        if not remaining:
            ctx.promote_rollout(record, "controller", "every worker runs the new version")
            return [{"deployment": record.deployment, "event": "promoted"}]
        nxt = remaining[0]
        ctx.store.set_target(record.deployment, nxt["worker_id"], target)
        record.history.append({"at": now, "event": "worker", "worker": nxt["worker_id"]})
        ctx.store.update(record)
        return [
            {"deployment": record.deployment, "event": "worker_moving", "worker": nxt["worker_id"]}
        ]

    def describe(self, ctx: RolloutContext, record: RolloutRecord, info: dict[str, Any]) -> None:
        info["workers"] = ctx.store.workers(record.deployment)

    def rolled_back(self, ctx: RolloutContext, record: RolloutRecord, back_to: int) -> bool:
        ctx.store.set_target(record.deployment, None, back_to)
        return True
