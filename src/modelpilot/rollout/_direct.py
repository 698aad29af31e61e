"""``direct``: replace the serving version at once, with no analysis (only with ``force``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from modelpilot.errors import ModelpilotError
from modelpilot.inference import StaticRouter
from modelpilot.registry import ModelVersion
from modelpilot.rollout._store import DeploymentState
from modelpilot.rollout._strategy import RolloutContext, StagedStrategy

__all__ = ["DirectDeploy"]


class DirectDeploy(StagedStrategy):
    """No rollout record: the deployment's version changes in one conditional update."""

    name: ClassVar[str] = "direct"
    alert_rollback: ClassVar[bool] = False

    def deploy(
        self,
        ctx: RolloutContext,
        state: DeploymentState,
        target: ModelVersion,
        *,
        actor: str,
        force: bool,
        reason: str,
        expected: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not force:
            raise ModelpilotError(
                "direct replaces the serving version at once, with no analysis; pass "
                "--force to do it anyway, or use --strategy canary, shadow or blue-green"
            )
        loaded = ctx.load(target, force=force)
        ctx.store.set_version(
            state.name,
            target.version,
            last_good=state.version,
            actor=actor,
            expect_revision=state.revision,
        )
        ctx.replace_router(state.name, StaticRouter(loaded))
        ctx.move_alias(state.name, target.version, actor, reason or "direct deploy")
        ctx.audit(
            actor,
            "deploy.direct",
            state.name,
            {"from": state.version, "to": target.version, "reason": reason},
        )
        ctx.reconcile()
        return ctx.status(state.name)
