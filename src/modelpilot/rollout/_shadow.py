"""``shadow``: the primary answers every request; the candidate scores a copy afterwards.

The candidate's answers are logged (``source="shadow"``, the primary's ids) and compared with
the primary's every ``rollout.analysis_interval_s``; nothing is promoted automatically.
"""

from __future__ import annotations

from typing import Any, ClassVar

from modelpilot.inference import LoadedVersion, Router
from modelpilot.rollout._analysis import compare_shadow
from modelpilot.rollout._routers import ShadowRouter
from modelpilot.rollout._store import RolloutRecord
from modelpilot.rollout._strategy import Event, RolloutContext, StagedStrategy

__all__ = ["ShadowDeploy", "shadow_report"]


def shadow_report(ctx: RolloutContext, record: RolloutRecord) -> dict[str, Any]:
    """The candidate's copies against the primary's answers since the rollout began."""
    frame = ctx.prediction_window(record, record.created_at)
    if frame.empty:
        return {"requests": 0, "mirrored": 0, "compared": 0}
    primary = frame[(frame["source"] == "online") & (frame["version"] == record.primary_version)]
    shadow = frame[(frame["source"] == "shadow") & (frame["version"] == record.candidate_version)]
    return compare_shadow(primary, shadow, task=ctx.task)


class ShadowDeploy(StagedStrategy):
    name: ClassVar[str] = "shadow"

    def router(
        self,
        ctx: RolloutContext,
        record: RolloutRecord,
        primary: LoadedVersion,
        candidate: LoadedVersion,
    ) -> Router:
        return ShadowRouter(primary, candidate)

    def mirrors(self, record: RolloutRecord) -> bool:
        return True

    def tick(self, ctx: RolloutContext, record: RolloutRecord, now: float) -> list[Event]:
        if not ctx.analysis_due(record, now):
            return []
        report = shadow_report(ctx, record)
        record.history = [*record.history[-50:], {"at": now, "shadow": report}]
        return self.analysed(ctx, record, report, now)

    def analysed(
        self, ctx: RolloutContext, record: RolloutRecord, report: dict[str, Any], now: float
    ) -> list[Event]:
        """After each comparison (kept in the history): a shadow only keeps watching."""
        ctx.store.update(record, bump=False)
        return []

    def describe(self, ctx: RolloutContext, record: RolloutRecord, info: dict[str, Any]) -> None:
        info["shadow"] = shadow_report(ctx, record)
