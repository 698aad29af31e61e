"""The rollout strategy protocol: one object per way of moving a deployment to a new version.

The controller (``_controller.py``) owns what every strategy shares: locking, the state in the
database, leases, the checks before a deployment starts, promotion and rollback. A strategy
says how its rollout begins, which router serves while it runs, how each tick advances it and
what its status shows. Strategies reach the controller through :class:`RolloutContext`, so the
controller's module imports them and never the other way around.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from modelpilot.inference import LoadedVersion, Router, StaticRouter
from modelpilot.registry import ModelVersion
from modelpilot.rollout._smoke import smoke_test
from modelpilot.rollout._store import DeploymentState, RolloutRecord, RolloutStore
from modelpilot.spec import RolloutSettings
from modelpilot.types import Clock

__all__ = ["Event", "RolloutContext", "RolloutStrategy", "StagedStrategy"]

#: What a tick reports: ``{"deployment": name, "event": "promoted" | "step" | ..., ...}``.
Event = dict[str, Any]


class RolloutContext(Protocol):
    """What a strategy may use of the controller that runs it."""

    store: RolloutStore
    settings: RolloutSettings
    clock: Clock
    worker_id: str

    def load(self, version: ModelVersion, *, force: bool = False) -> LoadedVersion: ...

    def replace_router(self, name: str, router: Router) -> None: ...

    def reconcile(self, *, force: bool = False) -> None: ...

    def status(self, name: str) -> dict[str, Any]: ...

    def audit(self, actor: str, action: str, name: str, details: dict[str, Any]) -> None: ...

    def move_alias(self, name: str, version: int, actor: str, reason: str) -> None: ...

    def promote_rollout(
        self,
        record: RolloutRecord,
        actor: str,
        reason: str,
        *,
        move_alias: bool = True,
        details: Mapping[str, Any] | None = None,
    ) -> None: ...

    def roll_back_rollout(self, record: RolloutRecord, reason: str, **details: Any) -> Event: ...

    def keep_standby(self, name: str, primary: LoadedVersion, until: float) -> None: ...

    def analysis_due(self, record: RolloutRecord, now: float, *, step_over: bool = False) -> bool:
        """Whether to analyse ``record`` now (every ``rollout.analysis_interval_s``, and
        whenever ``step_over``); a true answer counts as the analysis having run."""
        ...

    def prediction_window(self, record: RolloutRecord, since: float) -> Any: ...

    def labeled_window(self, record: RolloutRecord, since: float) -> Any: ...

    def estimators(self, record: RolloutRecord) -> tuple[Any, Any]:
        """The candidate's and the primary's performance estimators (None where a version
        has none): what the ``estimated_key_metric`` gate compares."""
        ...

    @property
    def task(self) -> str | None: ...

    @property
    def key_metrics(self) -> Any: ...


class RolloutStrategy(Protocol):
    """One way to deploy a version: ``direct``, ``shadow``, ``canary``, ``shadow-canary``,
    ``blue-green`` or ``rolling``."""

    name: ClassVar[str]
    #: Whether the ``rollback_canary`` alert action undoes it (a candidate serves, or shadows,
    #: beside the primary: there is something to roll back to at once).
    alert_rollback: ClassVar[bool]

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
        """Start deploying ``target`` (every common check has passed); the status after.

        ``expected``: what the proxy gates should expect of it (a retraining run's offline
        measurements), kept in the rollout's config."""
        ...

    def router(
        self,
        ctx: RolloutContext,
        record: RolloutRecord,
        primary: LoadedVersion,
        candidate: LoadedVersion,
    ) -> Router:
        """What serves this process's requests while ``record`` runs."""
        ...

    def tick(self, ctx: RolloutContext, record: RolloutRecord, now: float) -> list[Event]:
        """Advance the rollout by what the clock and the gates say."""
        ...

    def describe(self, ctx: RolloutContext, record: RolloutRecord, info: dict[str, Any]) -> None:
        """Add what the status of a running rollout shows about this strategy to ``info``."""
        ...

    def mirrors(self, record: RolloutRecord) -> bool:
        """Whether the candidate scores copies of every request now (a shadow phase)."""
        ...

    def shadowed(self, record: RolloutRecord) -> bool:
        """Whether the candidate scored copies of requests in this rollout (now, or in a
        shadow phase it has passed)."""
        ...

    def rolled_back(self, ctx: RolloutContext, record: RolloutRecord, back_to: int) -> bool:
        """After a rollback of a running ``record`` to ``back_to``: whether the alias moved
        during the rollout (so it must move back)."""
        ...


class StagedStrategy:
    """The common part of the strategies that run as a rollout record: load the candidate
    (smoke-test it when ``smoke_first``), record the rollout, audit it, then ``started``."""

    name: ClassVar[str] = ""
    alert_rollback: ClassVar[bool] = True
    smoke_first: ClassVar[bool] = False

    def config(self, ctx: RolloutContext, now: float) -> dict[str, Any]:
        return {
            "steps": [100.0],
            "shadow_until": None,
            "step_interval_s": ctx.settings.step_interval_s,
            "failures": 0,
            "window_until": None,
        }

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
        config = {**self.config(ctx, ctx.clock()), "force": force}
        if expected:
            config["expected"] = dict(expected)
        # Load (and where a switch is immediate, warm and smoke-test) before claiming the
        # deployment: a version that cannot load never becomes a rollout.
        loaded = ctx.load(target, force=force)
        if self.smoke_first:
            smoke_test(loaded, ctx.settings.smoke_requests)
        record = ctx.store.start(
            state.name,
            strategy=self.name,
            candidate=target.version,
            primary=state.version,
            config=config,
            actor=actor,
            reason=reason,
        )
        ctx.audit(
            actor,
            f"deploy.{self.name}",
            state.name,
            {"rollout": record.id, "from": state.version, "to": target.version, "reason": reason},
        )
        self.started(ctx, record, actor)
        ctx.reconcile()
        return ctx.status(state.name)

    def started(self, ctx: RolloutContext, record: RolloutRecord, actor: str) -> None:
        """Right after the rollout was recorded (nothing by default)."""

    def router(
        self,
        ctx: RolloutContext,
        record: RolloutRecord,
        primary: LoadedVersion,
        candidate: LoadedVersion,
    ) -> Router:
        return StaticRouter(primary)

    def tick(self, ctx: RolloutContext, record: RolloutRecord, now: float) -> list[Event]:
        return []

    def describe(self, ctx: RolloutContext, record: RolloutRecord, info: dict[str, Any]) -> None:
        return None

    def mirrors(self, record: RolloutRecord) -> bool:
        return False

    def shadowed(self, record: RolloutRecord) -> bool:
        return self.mirrors(record)

    def rolled_back(self, ctx: RolloutContext, record: RolloutRecord, back_to: int) -> bool:
        return False
