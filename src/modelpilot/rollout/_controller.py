"""The rollout controller: starts, advances, promotes and rolls back deployments.

State lives in the database (``_store.py``), so a restarted server resumes a canary in the step
it was in, and every worker process of a server converges on the same routing. What differs
between strategies lives in one object per strategy (``_strategy.py``); the controller keeps
what they share: locking, persistence, the checks before a deployment starts, promotion,
rollback and routing. Time comes from an injected clock: a 4-step canary with 10-minute steps is
tested in milliseconds by moving the clock and calling :meth:`RolloutController.tick`.
"""

from __future__ import annotations

import functools
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import pandas as pd

from modelpilot.errors import ConflictError, ModelpilotError, RejectedVersionError
from modelpilot.inference import DeploymentManager, LoadedVersion, Router, StaticRouter
from modelpilot.project import Project
from modelpilot.registry import ModelVersion, PerformanceEstimator
from modelpilot.rollout._store import RolloutRecord, RolloutStore
from modelpilot.rollout._strategies import strategy_named, strategy_of
from modelpilot.rollout._strategy import Event
from modelpilot.spec import KeyMetric
from modelpilot.types import Clock

__all__ = ["RolloutController"]

F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: RolloutController, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return cast(F, wrapper)


class RolloutController:
    """Starts, advances, promotes and rolls back deployments of one server.

    It is the :class:`~modelpilot.rollout._strategy.RolloutContext` its strategies run in.
    """

    def __init__(
        self,
        project: Project,
        manager: DeploymentManager,
        *,
        clock: Clock = time.time,
        worker_id: str | None = None,
    ) -> None:
        self.project = project
        self.manager = manager
        self.clock = clock
        self.settings = project.spec.rollout
        self.store = RolloutStore(project.engine, clock=clock)
        # Unique per process even where host names and pids repeat (a container restarted in
        # its pod keeps both): the lease holder's name must never be a newcomer's too.
        self.worker_id = (
            worker_id or f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"
        )
        self._applied: dict[str, int] = {}
        self._standby: dict[str, tuple[LoadedVersion, float]] = {}
        self._last_analysis: dict[int, float] = {}
        # Admin requests and the tick loop run on different threads of one process; the
        # database guards against other processes, this lock against our own threads.
        self.lock = threading.RLock()

    # ---- what strategies use (RolloutContext) -----------------------------------------
    @property
    def task(self) -> str | None:
        return self.project.spec.task

    @property
    def key_metrics(self) -> list[KeyMetric]:
        return self.project.spec.key_metrics

    def load(self, version: ModelVersion, *, force: bool = False) -> LoadedVersion:
        return self.manager.load_version(version, force=force)

    def replace_router(self, name: str, router: Router) -> None:
        self.manager.replace_router(name, router)

    def audit(self, actor: str, action: str, name: str, details: dict[str, Any]) -> None:
        self.project.registry.audit(actor, action, name, details)

    def move_alias(self, name: str, version: int, actor: str, reason: str) -> None:
        spec = self.manager.get(name).spec
        self.project.registry.set_alias(
            spec.model or self.project.spec.model_name,
            spec.alias,
            version,
            actor=actor,
            reason=reason,
            force=True,
        )

    def keep_standby(self, name: str, primary: LoadedVersion, until: float) -> None:
        self._standby[name] = (primary, until)

    def analysis_due(self, record: RolloutRecord, now: float, *, step_over: bool = False) -> bool:
        last = self._last_analysis.get(record.id, 0.0)
        if now - last < self.settings.analysis_interval_s and not step_over:
            return False
        self._last_analysis[record.id] = now
        return True

    def prediction_window(self, record: RolloutRecord, since: float) -> pd.DataFrame:
        model = self._version(record.deployment, record.candidate_version).name
        return self.project.prediction_log.window(model=model, start=since)

    def labeled_window(self, record: RolloutRecord, since: float) -> pd.DataFrame:
        model = self._version(record.deployment, record.candidate_version).name
        return self.project.prediction_log.labeled(model=model, start=since)

    def estimators(
        self, record: RolloutRecord
    ) -> tuple[PerformanceEstimator | None, PerformanceEstimator | None]:
        def of(version: int | None) -> PerformanceEstimator | None:
            if version is None:
                return None
            found = self._version(record.deployment, version)
            return PerformanceEstimator.of(found, key_metrics=self.key_metrics)

        return of(record.candidate_version), of(record.primary_version)

    def promote_rollout(
        self,
        record: RolloutRecord,
        actor: str,
        reason: str,
        *,
        move_alias: bool = True,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """End ``record`` with its candidate serving (and, unless a switch moved it already,
        the deployment's alias pointing at it)."""
        state = self.store.state(record.deployment)
        self.store.finish(
            record,
            "promoted",
            reason,
            version=record.candidate_version,
            last_good=record.primary_version or state.version,
            actor=actor,
        )
        self._standby.pop(record.deployment, None)
        if move_alias:
            self.move_alias(record.deployment, record.candidate_version, actor, reason)
        self.audit(
            actor,
            "promote",
            record.deployment,
            {
                "rollout": record.id,
                "version": record.candidate_version,
                "reason": reason,
                **dict(details or {}),
            },
        )
        self.reconcile()

    def roll_back_rollout(
        self, record: RolloutRecord, reason: str, *, recorded: str | None = None, **details: Any
    ) -> Event:
        """The controller ends ``record``: the primary serves on (``recorded`` is the reason
        kept in the rollout, when it says more than ``reason``)."""
        self.store.finish(record, "rolled_back", recorded or reason, actor="controller")
        self.audit(
            "controller",
            "rollback",
            record.deployment,
            {"rollout": record.id, "reason": reason, **details},
        )
        return {"deployment": record.deployment, "event": "rolled_back", "reason": reason}

    # ---- helpers ----------------------------------------------------------------------
    def _version(self, name: str, version: int) -> ModelVersion:
        model = self.manager.get(name).spec.model or self.project.spec.model_name
        return self.project.registry.get(model, version)

    @_locked
    def attach(self, actor: str = "server") -> None:
        """Record every deployment's state (first start) and rebuild routers from it."""
        for deployment in self.manager.all():
            self.store.ensure(
                deployment.name,
                deployment.spec.model or "",
                deployment.primary.version.version,
                actor,
            )
        self.reconcile(force=True)

    # ---- admin actions ----------------------------------------------------------------
    @_locked
    def deploy(
        self,
        name: str,
        version: int,
        strategy: str,
        *,
        actor: str,
        force: bool = False,
        reason: str = "",
        expected: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Deploy ``version`` of ``name`` with ``strategy``. ``expected``: what the proxy
        gates should expect of the candidate (a retraining run's offline measurements)."""
        how = strategy_named(strategy)
        target = self._version(name, version)
        if target.rejected and not force:
            raise RejectedVersionError(target.name, target.version, target.failed_checks)
        state = self.store.state(name)
        if state.active_rollout is not None:
            active = self.store.get(state.active_rollout)
            raise ConflictError(
                f"cannot deploy v{version} to {name!r}: a {active.strategy} of "
                f"v{active.candidate_version} is {active.status}; abort or roll it back first"
            )
        if version == state.version:
            raise ConflictError(f"{name!r} already serves v{version}")
        return how.deploy(
            self, state, target, actor=actor, force=force, reason=reason, expected=expected
        )

    @_locked
    def rollback(self, name: str, *, actor: str, reason: str = "") -> dict[str, Any]:
        """Back to the last good version at once, whatever the rollout's state."""
        state = self.store.state(name)
        active = self.store.active(name)
        if active is not None:
            back_to = active.primary_version or state.version
            self.store.finish(
                active,
                "rolled_back",
                reason or "rolled back by an admin",
                version=back_to,
                last_good=state.last_good_version,
                actor=actor,
            )
            if strategy_of(active).rolled_back(self, active, back_to):
                self.move_alias(name, back_to, actor, f"rollback: {reason}")
        else:
            if state.last_good_version is None:
                raise ConflictError(f"{name!r} has no earlier version to roll back to")
            back_to = state.last_good_version
            self.manager.load_version(self._version(name, back_to), force=True)
            self.store.set_version(
                name, back_to, last_good=None, actor=actor, expect_revision=state.revision
            )
            self.move_alias(name, back_to, actor, f"rollback: {reason}")
        self.audit(
            actor,
            "rollback",
            name,
            {"to": back_to, "reason": reason, "rollout": active.id if active else None},
        )
        self.reconcile()
        return self.status(name)

    @_locked
    def promote(self, name: str, *, actor: str, reason: str = "") -> dict[str, Any]:
        active = self._require_active(name)
        self.promote_rollout(active, actor, reason or "promoted by an admin")
        return self.status(name)

    @_locked
    def abort(self, name: str, *, actor: str, reason: str = "") -> dict[str, Any]:
        active = self._require_active(name)
        if active.status == "switched":
            return self.rollback(name, actor=actor, reason=reason or "aborted")
        self.store.finish(active, "aborted", reason or "aborted by an admin", actor=actor)
        self.audit(actor, "abort", name, {"rollout": active.id, "reason": reason})
        self.reconcile()
        return self.status(name)

    @_locked
    def pause(self, name: str, *, actor: str) -> dict[str, Any]:
        active = self._require_active(name)
        if not active.paused:
            active.paused = True
            active.config["paused_at"] = self.clock()
            self.store.update(active)
            self.audit(actor, "pause", name, {"rollout": active.id})
        return self.status(name)

    @_locked
    def resume(self, name: str, *, actor: str) -> dict[str, Any]:
        active = self._require_active(name)
        if active.paused:
            paused_for = self.clock() - float(active.config.pop("paused_at", self.clock()))
            active.step_started_at += paused_for  # a pause does not count toward the step
            active.paused = False
            self.store.update(active)
            self.audit(actor, "resume", name, {"rollout": active.id})
        return self.status(name)

    def _require_active(self, name: str) -> RolloutRecord:
        active = self.store.active(name)
        if active is None:
            raise ConflictError(f"{name!r} has no rollout in progress")
        return active

    # ---- routing ----------------------------------------------------------------------
    @_locked
    def reconcile(self, *, force: bool = False) -> None:
        """Make this process's routers match the database (cheap when nothing changed)."""
        for state in self.store.states():
            try:
                deployment = self.manager.get(state.name)
            except ModelpilotError:
                continue
            if not force and self._applied.get(state.name) == state.revision:
                continue
            active = self.store.get(state.active_rollout) if state.active_rollout else None
            primary = self.load(self._version(state.name, state.version), force=True)
            router: Router = StaticRouter(primary)
            if active is not None:
                candidate = self.load(
                    self._version(state.name, active.candidate_version), force=True
                )
                router = strategy_of(active).router(self, active, primary, candidate)
            previous = deployment.router
            self.manager.replace_router(state.name, router)
            self._applied[state.name] = state.revision
            for old in previous.versions:
                if old not in router.versions and state.name not in self._standby:
                    self.manager.unload(old.version.name, old.version.version)

    # ---- the loop ---------------------------------------------------------------------
    def heartbeat(self) -> None:
        for deployment in self.manager.all():
            self.store.heartbeat(
                self.worker_id, deployment.name, deployment.primary.version.version, healthy=True
            )

    @_locked
    def tick(self) -> list[Event]:
        """Advance every active rollout by what the clock and the gates say; returns events."""
        events: list[Event] = []
        now = self.clock()
        for name in list(self._standby):
            active = self.store.active(name)
            if active is None or active.status != "switched":
                self._standby.pop(name, None)
        for state in self.store.states():
            if state.active_rollout is None:
                continue
            record = self.store.get(state.active_rollout)
            events += strategy_of(record).tick(self, record, now)
        self.reconcile()
        return events

    # ---- reading ----------------------------------------------------------------------
    def status(self, name: str) -> dict[str, Any]:
        state = self.store.state(name)
        deployment = self.manager.get(name)
        out: dict[str, Any] = {
            "deployment": name,
            "model": deployment.spec.model,
            "version": state.version,
            "last_good_version": state.last_good_version,
            "routing": deployment.router.describe(),
            "rollout": None,
        }
        active = self.store.active(name)
        if active is not None:
            info = active.to_dict()
            strategy_of(active).describe(self, active, info)
            if active.status == "switched":
                out["version"] = active.candidate_version
                info["standby_version"] = active.primary_version
                info["standby_until"] = active.config.get("window_until")
            out["rollout"] = info
        out["recent"] = [
            r.to_dict() | {"history": r.history[-3:]} for r in self.store.history(name, limit=5)
        ]
        return out
