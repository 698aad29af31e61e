"""``shadow-canary``: shadow traffic first; a candidate that held up for ``rollout.shadow_s``
goes on as a canary (the record's strategy becomes ``canary``)."""

from __future__ import annotations

from typing import Any, ClassVar

from modelpilot.rollout._canary import CanaryDeploy
from modelpilot.rollout._shadow import ShadowDeploy
from modelpilot.rollout._store import RolloutRecord
from modelpilot.rollout._strategy import Event, RolloutContext

__all__ = ["ShadowCanaryDeploy"]


class ShadowCanaryDeploy(ShadowDeploy):
    name: ClassVar[str] = "shadow-canary"

    def config(self, ctx: RolloutContext, now: float) -> dict[str, Any]:
        return {
            **CanaryDeploy().config(ctx, now),
            "shadow_until": now + ctx.settings.shadow_s,
        }

    def analysed(
        self, ctx: RolloutContext, record: RolloutRecord, report: dict[str, Any], now: float
    ) -> list[Event]:
        until = record.config.get("shadow_until")
        if until is None or now < float(until):
            ctx.store.update(record, bump=False)
            return []
        gate = next((g for g in ctx.settings.gates if g.metric == "error_rate"), None)
        limit = gate.threshold if gate is not None else 0.02
        needed = gate.min_samples if gate is not None else 50
        mirrored = int(report.get("mirrored", 0))
        if mirrored < needed:
            ctx.store.update(record, bump=False)
            return []  # not enough shadow traffic yet: keep shadowing
        errors = float(report.get("candidate_error_rate", 0.0))
        if errors > limit:
            reason = (
                f"shadow phase failed: the candidate failed {errors:.1%} of "
                f"{mirrored} mirrored requests (limit {limit:.1%})"
            )
            return [ctx.roll_back_rollout(record, reason)]
        record.strategy = CanaryDeploy.name
        record.step = 0
        record.step_started_at = now
        record.history.append(
            {"at": now, "event": "shadow passed, canary begins", "shadow": report}
        )
        ctx.store.update(record)
        ctx.audit(
            "controller",
            "deploy.canary",
            record.deployment,
            {
                "rollout": record.id,
                "reason": "shadow phase passed",
                "mirrored": mirrored,
                "candidate_error_rate": errors,
            },
        )
        return [
            {
                "deployment": record.deployment,
                "event": "canary",
                "weight": record.config["steps"][0],
            }
        ]
