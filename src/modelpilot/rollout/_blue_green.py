"""``blue-green``: warm and smoke-test the candidate, switch all traffic at once, and keep the
old version loaded for ``rollout.blue_green_window_s`` so a rollback is instant."""

from __future__ import annotations

from typing import ClassVar

from modelpilot.inference import LoadedVersion, Router, StaticRouter
from modelpilot.rollout._store import RolloutRecord
from modelpilot.rollout._strategy import Event, RolloutContext, StagedStrategy

__all__ = ["BlueGreenDeploy"]


class BlueGreenDeploy(StagedStrategy):
    name: ClassVar[str] = "blue-green"
    smoke_first: ClassVar[bool] = True

    def started(self, ctx: RolloutContext, record: RolloutRecord, actor: str) -> None:
        # One atomic switch; the old version stays loaded for the window.
        now = ctx.clock()
        record.status = "switched"
        record.config["window_until"] = now + ctx.settings.blue_green_window_s
        record.history.append({"at": now, "event": "switched", "to": record.candidate_version})
        ctx.store.update(record)
        ctx.move_alias(record.deployment, record.candidate_version, actor, "blue-green switch")

    def router(
        self,
        ctx: RolloutContext,
        record: RolloutRecord,
        primary: LoadedVersion,
        candidate: LoadedVersion,
    ) -> Router:
        ctx.keep_standby(record.deployment, primary, float(record.config["window_until"]))
        return StaticRouter(candidate)

    def tick(self, ctx: RolloutContext, record: RolloutRecord, now: float) -> list[Event]:
        if now < float(record.config.get("window_until") or now):
            return []
        ctx.promote_rollout(record, "controller", "blue-green window over", move_alias=False)
        return [{"deployment": record.deployment, "event": "promoted"}]

    def rolled_back(self, ctx: RolloutContext, record: RolloutRecord, back_to: int) -> bool:
        return True
