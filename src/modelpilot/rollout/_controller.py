"""The rollout controller: direct, shadow, canary, blue-green and rolling deployments.

State lives in the database (``_store.py``), so a restarted server resumes a canary in the step
it was in, and every worker process of a server converges on the same routing. Time comes from
an injected clock: a 4-step canary with 10-minute steps is tested in milliseconds by moving the
clock and calling :meth:`RolloutController.tick`.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import pandas as pd

from modelpilot.errors import ConflictError, ModelpilotError, RejectedVersionError
from modelpilot.project import Project
from modelpilot.registry import ModelVersion
from modelpilot.rollout._analysis import StepWindow, analyze, compare_shadow
from modelpilot.rollout._routers import CanaryRouter, ShadowRouter
from modelpilot.rollout._smoke import smoke_test
from modelpilot.rollout._store import RolloutRecord, RolloutStore
from modelpilot.serving import DeploymentManager, LoadedVersion, StaticRouter

__all__ = ["STRATEGIES", "RolloutController"]

STRATEGIES = ("direct", "shadow", "canary", "shadow-canary", "blue-green", "rolling")

F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    @functools.wraps(method)
    def wrapper(self: RolloutController, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return cast(F, wrapper)


class RolloutController:
    """Starts, advances, promotes and rolls back deployments of one server."""

    def __init__(
        self,
        project: Project,
        manager: DeploymentManager,
        *,
        clock: Callable[[], float] = time.time,
        worker_id: str | None = None,
    ) -> None:
        self.project = project
        self.manager = manager
        self.clock = clock
        self.settings = project.spec.rollout
        self.store = RolloutStore(project.engine, clock=clock)
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self._applied: dict[str, int] = {}
        self._standby: dict[str, tuple[LoadedVersion, float]] = {}
        self._last_analysis: dict[int, float] = {}
        # Admin requests and the tick loop run on different threads of one process; the
        # database guards against other processes, this lock against our own threads.
        self.lock = threading.RLock()

    # ---- helpers ----------------------------------------------------------------------
    def _version(self, name: str, version: int) -> ModelVersion:
        model = self.manager.get(name).spec.model or self.project.spec.model_name
        return self.project.registry.get(model, version)

    def _audit(self, actor: str, action: str, name: str, details: dict[str, Any]) -> None:
        self.project.registry.audit(actor, action, name, details)

    def _move_alias(self, name: str, version: int, actor: str, reason: str) -> None:
        spec = self.manager.get(name).spec
        self.project.registry.set_alias(
            spec.model or self.project.spec.model_name,
            spec.alias,
            version,
            actor=actor,
            reason=reason,
            force=True,
        )

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
    ) -> dict[str, Any]:
        if strategy not in STRATEGIES:
            raise ModelpilotError(
                f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
            )
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
        if strategy == "direct":
            if not force:
                raise ModelpilotError(
                    "direct replaces the serving version at once, with no analysis; pass "
                    "--force to do it anyway, or use --strategy canary, shadow or blue-green"
                )
            loaded = self.manager.load_version(target, force=force)
            self.store.set_version(
                name, version, last_good=state.version, actor=actor, expect_revision=state.revision
            )
            self.manager.replace_router(name, StaticRouter(loaded))
            self._move_alias(name, version, actor, reason or "direct deploy")
            self._audit(
                actor,
                "deploy.direct",
                name,
                {"from": state.version, "to": version, "reason": reason},
            )
            self.reconcile()
            return self.status(name)
        config = {
            "steps": (
                list(self.settings.steps) if strategy in ("canary", "shadow-canary") else [100.0]
            ),
            # shadow-canary: shadow traffic first; when it held up for shadow_s, a canary.
            "shadow_until": (
                self.clock() + self.settings.shadow_s if strategy == "shadow-canary" else None
            ),
            "step_interval_s": self.settings.step_interval_s,
            "failures": 0,
            "force": force,
            "window_until": None,
        }
        # Load (and for blue-green, warm and smoke-test) before claiming the deployment: a
        # version that cannot load never becomes a rollout.
        loaded = self.manager.load_version(target, force=force)
        if strategy in ("blue-green", "rolling"):
            smoke_test(loaded, self.settings.smoke_requests)
        record = self.store.start(
            name,
            strategy=strategy,
            candidate=version,
            primary=state.version,
            config=config,
            actor=actor,
            reason=reason,
        )
        self._audit(
            actor,
            f"deploy.{strategy}",
            name,
            {"rollout": record.id, "from": state.version, "to": version, "reason": reason},
        )
        if strategy == "blue-green":
            self._switch(record, actor)
        if strategy == "rolling":
            # Targets an earlier rolling deployment left behind (aborted, or promoted and then
            # rolled back) would move every worker they name at once: start with none.
            self.store.set_target(name, None, None)
        self.reconcile()
        return self.status(name)

    def _switch(self, record: RolloutRecord, actor: str) -> None:
        """Blue-green: one atomic switch; the old version stays loaded for the window."""
        now = self.clock()
        record.status = "switched"
        record.config["window_until"] = now + self.settings.blue_green_window_s
        record.history.append({"at": now, "event": "switched", "to": record.candidate_version})
        self.store.update(record)
        self._move_alias(record.deployment, record.candidate_version, actor, "blue-green switch")

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
            if active.strategy in ("blue-green", "rolling") or active.status == "switched":
                self._move_alias(name, back_to, actor, f"rollback: {reason}")
            if active.strategy == "rolling":
                self.store.set_target(name, None, back_to)
        else:
            if state.last_good_version is None:
                raise ConflictError(f"{name!r} has no earlier version to roll back to")
            back_to = state.last_good_version
            self.manager.load_version(self._version(name, back_to), force=True)
            self.store.set_version(
                name, back_to, last_good=None, actor=actor, expect_revision=state.revision
            )
            self._move_alias(name, back_to, actor, f"rollback: {reason}")
        self._audit(
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
        self._promote(active, actor, reason or "promoted by an admin")
        return self.status(name)

    def _promote(self, record: RolloutRecord, actor: str, reason: str) -> None:
        state = self.store.state(record.deployment)
        self.store.finish(
            record,
            "promoted",
            reason,
            version=record.candidate_version,
            last_good=record.primary_version or state.version,
            actor=actor,
        )
        self._move_alias(record.deployment, record.candidate_version, actor, reason)
        self._audit(
            actor,
            "promote",
            record.deployment,
            {"rollout": record.id, "version": record.candidate_version, "reason": reason},
        )
        self.reconcile()

    @_locked
    def abort(self, name: str, *, actor: str, reason: str = "") -> dict[str, Any]:
        active = self._require_active(name)
        if active.status == "switched":
            return self.rollback(name, actor=actor, reason=reason or "aborted")
        self.store.finish(active, "aborted", reason or "aborted by an admin", actor=actor)
        self._audit(actor, "abort", name, {"rollout": active.id, "reason": reason})
        self.reconcile()
        return self.status(name)

    @_locked
    def pause(self, name: str, *, actor: str) -> dict[str, Any]:
        active = self._require_active(name)
        if not active.paused:
            active.paused = True
            active.config["paused_at"] = self.clock()
            self.store.update(active)
            self._audit(actor, "pause", name, {"rollout": active.id})
        return self.status(name)

    @_locked
    def resume(self, name: str, *, actor: str) -> dict[str, Any]:
        active = self._require_active(name)
        if active.paused:
            paused_for = self.clock() - float(active.config.pop("paused_at", self.clock()))
            active.step_started_at += paused_for  # a pause does not count toward the step
            active.paused = False
            self.store.update(active)
            self._audit(actor, "resume", name, {"rollout": active.id})
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
            primary = self.manager.load_version(
                self._version(state.name, state.version), force=True
            )
            router: Any = StaticRouter(primary)
            if active is not None:
                candidate = self.manager.load_version(
                    self._version(state.name, active.candidate_version), force=True
                )
                if active.strategy in ("shadow", "shadow-canary"):
                    router = ShadowRouter(primary, candidate)
                elif active.strategy == "canary":
                    weight = float(
                        active.config["steps"][min(active.step, len(active.config["steps"]) - 1)]
                    )
                    router = CanaryRouter(
                        primary, candidate, weight, mirror_fraction=self.settings.mirror_fraction
                    )
                elif active.strategy == "blue-green":
                    router = StaticRouter(candidate)
                    self._standby[state.name] = (primary, float(active.config["window_until"]))
                elif active.strategy == "rolling":
                    router = self._rolling_router(state.name, primary, candidate)
            previous = deployment.router
            self.manager.replace_router(state.name, router)
            self._applied[state.name] = state.revision
            for old in previous.versions:
                if old not in router.versions and state.name not in self._standby:
                    self.manager.unload(old.version.name, old.version.version)

    def _rolling_router(
        self, name: str, primary: LoadedVersion, candidate: LoadedVersion
    ) -> StaticRouter:
        workers = {w["worker_id"]: w for w in self.store.workers(name)}
        mine = workers.get(self.worker_id)
        if mine is not None and mine["target_version"] == candidate.version.version:
            try:
                smoke_test(candidate, self.settings.smoke_requests)
            except ModelpilotError:
                self.store.heartbeat(self.worker_id, name, primary.version.version, healthy=False)
                return StaticRouter(primary)
            self.store.heartbeat(self.worker_id, name, candidate.version.version, healthy=True)
            return StaticRouter(candidate)
        return StaticRouter(primary)

    # ---- the loop ---------------------------------------------------------------------
    def heartbeat(self) -> None:
        for deployment in self.manager.all():
            self.store.heartbeat(
                self.worker_id, deployment.name, deployment.primary.version.version, healthy=True
            )

    @_locked
    def tick(self) -> list[dict[str, Any]]:
        """Advance every active rollout by what the clock and the gates say; returns events."""
        events: list[dict[str, Any]] = []
        now = self.clock()
        for name in list(self._standby):
            active = self.store.active(name)
            if active is None or active.status != "switched":
                self._standby.pop(name, None)
        for state in self.store.states():
            if state.active_rollout is None:
                continue
            record = self.store.get(state.active_rollout)
            if record.strategy == "canary":
                events += self._tick_canary(record, now)
            elif record.strategy in ("shadow", "shadow-canary"):
                events += self._tick_shadow(record, now)
            elif record.strategy == "blue-green":
                if now >= float(record.config.get("window_until") or now):
                    self._finish_blue_green(record)
                    events.append({"deployment": record.deployment, "event": "promoted"})
            elif record.strategy == "rolling":
                events += self._tick_rolling(record)
        self.reconcile()
        return events

    def _finish_blue_green(self, record: RolloutRecord) -> None:
        state = self.store.state(record.deployment)
        self.store.finish(
            record,
            "promoted",
            "blue-green window over",
            version=record.candidate_version,
            last_good=record.primary_version or state.version,
            actor="controller",
        )
        self._standby.pop(record.deployment, None)
        self._audit(
            "controller",
            "promote",
            record.deployment,
            {
                "rollout": record.id,
                "version": record.candidate_version,
                "reason": "blue-green window over",
            },
        )

    def window(self, record: RolloutRecord, since: float) -> StepWindow:
        log = self.project.prediction_log
        model = self._version(record.deployment, record.candidate_version).name
        frame = log.window(model=model, start=since)
        if frame.empty:
            empty = pd.DataFrame(columns=["id", "prediction", "latency_ms"])
            return StepWindow(empty, empty, pd.DataFrame(columns=["id", "candidate", "primary"]))
        online = frame[frame["source"] == "online"]
        shadow = frame[frame["source"] == "shadow"]
        candidate = online[online["version"] == record.candidate_version]
        # The primary's answers in the step: the requests it served and the copies of the
        # candidate's requests it scored. At 100% only the copies exist; counting answered
        # requests alone, the latency gate waited forever and the last step never passed.
        primary = frame[
            (frame["version"] == record.primary_version)
            & frame["source"].isin(("online", "shadow"))
        ]
        mirrored = shadow[shadow["version"] == record.primary_version]
        if "error" in mirrored:
            mirrored = mirrored[mirrored["error"].isna()]
        ok = candidate if "error" not in candidate else candidate[candidate["error"].isna()]
        pairs = ok[["id", "prediction"]].merge(
            mirrored[["id", "prediction"]], on="id", suffixes=("_c", "_p")
        )
        pairs = pairs.rename(columns={"prediction_c": "candidate", "prediction_p": "primary"})
        return StepWindow(candidate.reset_index(drop=True), primary.reset_index(drop=True), pairs)

    def _labeled(
        self, record: RolloutRecord, since: float
    ) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        model = self._version(record.deployment, record.candidate_version).name
        labeled = self.project.prediction_log.labeled(model=model, start=since)
        if labeled.empty:
            return None
        online = labeled[labeled["source"] == "online"]
        return (
            online[online["version"] == record.candidate_version],
            online[online["version"] == record.primary_version],
        )

    def _tick_canary(self, record: RolloutRecord, now: float) -> list[dict[str, Any]]:
        if record.paused:
            return []
        last = self._last_analysis.get(record.id, 0.0)
        interval = float(record.config["step_interval_s"])
        elapsed = now - record.step_started_at
        if now - last < self.settings.analysis_interval_s and elapsed < interval:
            return []
        self._last_analysis[record.id] = now
        # Labels only for a key_metric gate: reading the step's window once more for them
        # doubled the cost of every analysis, which grows with the step's traffic.
        wants_labels = any(g.metric == "key_metric" for g in self.settings.gates)
        results = analyze(
            self.window(record, record.step_started_at),
            self.settings.gates,
            task=self.project.spec.task,
            key_metrics=self.project.spec.key_metrics,
            labeled=self._labeled(record, record.step_started_at) if wants_labels else None,
        )
        failed = [r for r in results if r.status == "fail"]
        record.history.append(
            {
                "at": now,
                "step": record.step,
                "weight": record.config["steps"][record.step],
                "gates": [r.to_dict() for r in results],
            }
        )
        if failed:
            record.config["failures"] = int(record.config.get("failures", 0)) + 1
            if record.config["failures"] >= self.settings.failure_limit:
                reason = "; ".join(
                    f"{r.metric} failed ({r.detail}: {_fmt(r.value)} vs {r.threshold:g})"
                    for r in failed
                )
                self.store.finish(
                    record, "rolled_back", f"gates failed: {reason}", actor="controller"
                )
                self._audit(
                    "controller",
                    "rollback",
                    record.deployment,
                    {"rollout": record.id, "reason": reason, "step": record.step},
                )
                return [{"deployment": record.deployment, "event": "rolled_back", "reason": reason}]
            self.store.update(record, bump=False)
            return [{"deployment": record.deployment, "event": "gate_failed"}]
        blocking = [r for r in results if r.status == "insufficient" and r.metric != "key_metric"]
        if elapsed >= interval and not blocking:
            if record.step + 1 >= len(record.config["steps"]):
                self._promote(record, "controller", "every canary step passed its gates")
                return [{"deployment": record.deployment, "event": "promoted"}]
            record.step += 1
            record.step_started_at = now
            record.config["failures"] = 0
            self.store.update(record)
            return [
                {
                    "deployment": record.deployment,
                    "event": "step",
                    "weight": record.config["steps"][record.step],
                }
            ]
        self.store.update(record, bump=False)
        return []

    def _tick_shadow(self, record: RolloutRecord, now: float) -> list[dict[str, Any]]:
        last = self._last_analysis.get(record.id, 0.0)
        if now - last < self.settings.analysis_interval_s:
            return []
        self._last_analysis[record.id] = now
        report = self.shadow_report(record)
        record.history = [*record.history[-50:], {"at": now, "shadow": report}]
        until = record.config.get("shadow_until")
        if record.strategy == "shadow-canary" and until is not None and now >= float(until):
            return self._shadow_to_canary(record, report, now)
        self.store.update(record, bump=False)
        return []

    def _shadow_to_canary(
        self, record: RolloutRecord, report: dict[str, Any], now: float
    ) -> list[dict[str, Any]]:
        """The shadow phase is over: a candidate that held up goes on as a canary."""
        gate = next((g for g in self.settings.gates if g.metric == "error_rate"), None)
        limit = gate.threshold if gate is not None else 0.02
        needed = gate.min_samples if gate is not None else 50
        mirrored = int(report.get("mirrored", 0))
        if mirrored < needed:
            self.store.update(record, bump=False)
            return []  # not enough shadow traffic yet: keep shadowing
        errors = float(report.get("candidate_error_rate", 0.0))
        if errors > limit:
            reason = (
                f"shadow phase failed: the candidate failed {errors:.1%} of "
                f"{mirrored} mirrored requests (limit {limit:.1%})"
            )
            self.store.finish(record, "rolled_back", reason, actor="controller")
            self._audit(
                "controller",
                "rollback",
                record.deployment,
                {"rollout": record.id, "reason": reason},
            )
            return [{"deployment": record.deployment, "event": "rolled_back", "reason": reason}]
        record.strategy = "canary"
        record.step = 0
        record.step_started_at = now
        record.history.append(
            {"at": now, "event": "shadow passed, canary begins", "shadow": report}
        )
        self.store.update(record)
        self._audit(
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

    def shadow_report(self, record: RolloutRecord) -> dict[str, Any]:
        model = self._version(record.deployment, record.candidate_version).name
        frame = self.project.prediction_log.window(model=model, start=record.created_at)
        if frame.empty:
            return {"requests": 0, "mirrored": 0, "compared": 0}
        primary = frame[
            (frame["source"] == "online") & (frame["version"] == record.primary_version)
        ]
        shadow = frame[
            (frame["source"] == "shadow") & (frame["version"] == record.candidate_version)
        ]
        return compare_shadow(primary, shadow, task=self.project.spec.task)

    def _tick_rolling(self, record: RolloutRecord) -> list[dict[str, Any]]:
        workers = self.store.workers(record.deployment)
        target = record.candidate_version
        if any(w["target_version"] == target and not w["healthy"] for w in workers):
            reason = "a worker failed its health check on the new version"
            self.store.set_target(record.deployment, None, record.primary_version)
            self.store.finish(record, "rolled_back", reason, actor="controller")
            self._audit(
                "controller",
                "rollback",
                record.deployment,
                {"rollout": record.id, "reason": reason},
            )
            return [{"deployment": record.deployment, "event": "rolled_back", "reason": reason}]
        moving = [w for w in workers if w["target_version"] == target and w["version"] != target]
        if moving:
            return []  # wait for the worker in transition to report healthy
        remaining = [w for w in workers if w["version"] != target]
        if not remaining:
            self._promote(record, "controller", "every worker runs the new version")
            return [{"deployment": record.deployment, "event": "promoted"}]
        nxt = remaining[0]
        self.store.set_target(record.deployment, nxt["worker_id"], target)
        record.history.append({"at": self.clock(), "event": "worker", "worker": nxt["worker_id"]})
        self.store.update(record)
        return [
            {"deployment": record.deployment, "event": "worker_moving", "worker": nxt["worker_id"]}
        ]

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
            if active.strategy == "canary":
                steps = active.config["steps"]
                remaining = float(active.config["step_interval_s"]) - (
                    self.clock() - active.step_started_at
                )
                info["step_of"] = f"{active.step + 1}/{len(steps)}"
                info["weight"] = steps[active.step]
                info["next_step_in_s"] = None if active.paused else max(0.0, remaining)
                gates: list[dict[str, Any]] = next(
                    (h["gates"] for h in reversed(active.history) if "gates" in h), []
                )
                info["gates"] = gates
            if active.strategy in ("shadow", "shadow-canary"):
                info["shadow"] = self.shadow_report(active)
            if active.strategy == "rolling":
                info["workers"] = self.store.workers(name)
            if active.status == "switched":
                out["version"] = active.candidate_version
                info["standby_version"] = active.primary_version
                info["standby_until"] = active.config.get("window_until")
            out["rollout"] = info
        out["recent"] = [
            r.to_dict() | {"history": r.history[-3:]} for r in self.store.history(name, limit=5)
        ]
        return out


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"
