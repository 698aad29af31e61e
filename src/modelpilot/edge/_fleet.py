"""A fleet of devices: which version each one runs, and canary rollouts judged by their logs.

Without an edge rollout, a deployment's devices run the version its alias points to. An edge
rollout (:meth:`EdgeFleet.start`) gives the candidate to ``share`` percent of the devices, a
stable set: a device is in it when its bucket (``rollout.bucket_of``, the server canary's
sticky routing, keyed by the rollout and the device id) is below ``share * 100``. Devices learn
their version from their signed assignment (``server/_edge.py``) and sync their logs back
(``_ingest.py``); the fleet's version then is the candidate once a rollout is promoted, the
primary once it is rolled back (the alias is not moved: the server's own deployment has its own
rollouts).

Judging reuses the server's canary analysis as it is (``rollout.analyze`` with the project's
``rollout.gates``, ``analysis_interval_s``, ``step_interval_s`` and ``failure_limit``) on the
synced edge rows since the rollout began: the candidate's devices against the primary's. The
``agreement`` gate is left out: it compares two versions' answers to the same request, and a
device runs one version. A rollout is judged when a device of its deployment syncs and when its
status is read (at most once per ``analysis_interval_s``); the rollout controller and its
control loop are not involved.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from modelpilot.edge._fleet_store import PROMOTED, ROLLED_BACK, EdgeRollout, FleetStore
from modelpilot.errors import ConflictError, ModelpilotError, NotFoundError
from modelpilot.monitoring import TimeSeriesStore, parse_labels
from modelpilot.project import Project
from modelpilot.rollout import StepWindow, analyze, bucket_of
from modelpilot.spec import DeploymentSpec

__all__ = ["EdgeFleet", "in_canary"]

#: Gates that need two versions' answers to one request, which devices never have.
_PAIRED_GATES = frozenset({"agreement"})


def in_canary(rollout: EdgeRollout, device: str) -> bool:
    """Whether ``device`` runs the candidate of ``rollout`` (stable for a rollout and device).

    Examples
    --------
    >>> rollout = EdgeRollout(7, "houses", "houses", 1, 2, 50.0, "running", 0.0, "alice")
    >>> in_canary(rollout, "pos-1") == in_canary(rollout, "pos-1")
    True
    >>> sum(in_canary(rollout, f"pos-{i}") for i in range(1000)) in range(430, 571)
    True
    """
    return bucket_of(f"{rollout.id}:{device}") < rollout.share * 100


class EdgeFleet:
    """The devices of a project's deployments, and their rollouts (see the module)."""

    def __init__(self, project: Project, *, clock: Callable[[], float] = time.time) -> None:
        self.project = project
        self.store = FleetStore(project.engine)
        self.clock = clock

    def deployment(self, name: str) -> DeploymentSpec:
        """The project's deployment ``name`` (404 when there is none)."""
        for spec in self.project.spec.deployment_specs:
            if spec.name == name:
                return spec
        known = ", ".join(s.name for s in self.project.spec.deployment_specs)
        raise NotFoundError("deployment", name, hint=f"the project's deployments are {known}")

    def _model(self, spec: DeploymentSpec) -> str:
        return spec.model or self.project.spec.model_name

    def baseline(self, spec: DeploymentSpec) -> int:
        """The version the deployment's devices run outside a rollout's canary."""
        latest = self.store.latest(spec.name)
        if latest is not None:
            return latest.candidate_version if latest.state == PROMOTED else latest.primary_version
        return self.project.registry.alias_version(self._model(spec), spec.alias)

    def version_for(self, name: str, device: str) -> tuple[str, int, EdgeRollout | None]:
        """(model, version, running rollout) for one device of deployment ``name``."""
        spec = self.deployment(name)
        running = self.store.running(name)
        if running is not None:
            chosen = (
                running.candidate_version if in_canary(running, device) else running.primary_version
            )
            return running.model, chosen, running
        return self._model(spec), self.baseline(spec), None

    # ---- rollouts -------------------------------------------------------------------------
    def start(
        self, name: str, version: int, share: float, *, actor: str, force: bool = False
    ) -> EdgeRollout:
        """Give ``version`` to ``share`` percent of the deployment's devices."""
        spec = self.deployment(name)
        if not 0 < share <= 100:
            raise ModelpilotError(f"share must be a percentage in (0, 100], got {share:g}")
        running = self.store.running(name)
        if running is not None:
            raise ConflictError(
                f"edge rollout {running.id} of {name} (version {running.candidate_version} to "
                f"{running.share:g}% of its devices) is running; promote or roll it back first"
            )
        model = self._model(spec)
        candidate = self.project.registry.get(model, version)
        if candidate.rejected and not force:
            raise ConflictError(
                f"{model} v{version} is rejected ({'; '.join(candidate.failed_checks)}); "
                "pass force to roll it out anyway"
            )
        primary = self.baseline(spec)
        if primary == version:
            raise ConflictError(f"the devices of {name} run version {version} already")
        record = self.store.start(
            name, model, primary, version, share, now=self.clock(), actor=actor
        )
        self.project.registry.audit(
            actor, "edge.rollout.start", name, {"version": version, "share": share, "from": primary}
        )
        return record

    def end(self, name: str, state: str, *, actor: str, reason: str) -> EdgeRollout:
        """Promote (``promoted``) or roll back (``rolled_back``) the running rollout."""
        self.deployment(name)
        running = self.store.running(name)
        if running is None:
            raise ConflictError(f"no edge rollout of {name} is running")
        if not self.store.finish(running.id, state, reason, now=self.clock()):
            raise ConflictError(f"edge rollout {running.id} of {name} ended meanwhile")
        self.project.registry.audit(
            actor,
            f"edge.rollout.{'promote' if state == PROMOTED else 'rollback'}",
            name,
            {"rollout": running.id, "reason": reason},
        )
        latest = self.store.latest(name)
        return latest if latest is not None else running

    def judge(self, name: str, *, force: bool = False) -> EdgeRollout | None:
        """Analyse the running rollout if due; promote or roll it back as its gates say."""
        record = self.store.running(name)
        if record is None:
            return None
        settings = self.project.spec.rollout
        now = self.clock()
        if (
            not force
            and record.analyzed_at is not None
            and now - record.analyzed_at < settings.analysis_interval_s
        ):
            return record
        gates = [g for g in settings.gates if g.metric not in _PAIRED_GATES]
        log = self.project.prediction_log
        frame = log.window(model=record.model, start=record.started_at, source="edge")
        labeled = None
        if any(g.metric == "key_metric" for g in gates):
            rows = log.labeled(model=record.model, start=record.started_at, source="edge")
            labeled = (
                _version(rows, record.candidate_version),
                _version(rows, record.primary_version),
            )
        window = StepWindow(
            _version(frame, record.candidate_version),
            _version(frame, record.primary_version),
            pd.DataFrame(columns=["id", "candidate", "primary"]),
        )
        spec = self.project.spec
        results = analyze(
            window, gates, task=spec.task, key_metrics=spec.key_metrics, labeled=labeled
        )
        failed = [r for r in results if r.status == "fail"]
        failures = record.failures + (1 if failed else 0)
        self.store.record_analysis(
            record.id, failures=failures, gates=[r.to_dict() for r in results], now=now
        )
        if failed and failures >= settings.failure_limit:
            reason = "gates failed: " + "; ".join(f"{r.metric} ({r.detail})" for r in failed)
            return self.end(name, ROLLED_BACK, actor="edge-fleet", reason=reason)
        waiting = [r for r in results if r.status != "pass" and r.metric != "key_metric"]
        if not failed and not waiting and now - record.started_at >= settings.step_interval_s:
            return self.end(name, PROMOTED, actor="edge-fleet", reason="every gate passed")
        return self.store.running(name)

    def status(self, name: str) -> dict[str, Any]:
        """The fleet's version, the running (or last) rollout with its gates, the devices."""
        spec = self.deployment(name)
        self.judge(name)
        latest = self.store.latest(name)
        devices = self.store.devices(name)
        running = latest if latest is not None and latest.running else None
        drift = self._drift_shares(name)
        for device in devices:
            device["canary"] = running is not None and in_canary(running, device["device"])
            device["drift_share"] = drift.get(device["device"])
        return {
            "deployment": name,
            "model": self._model(spec),
            "version": self.baseline(spec),
            "rollout": None if latest is None else latest.to_dict(),
            "devices": devices,
        }

    def _drift_shares(self, name: str) -> dict[str, float | None]:
        """Each labelled device's latest ``edge_drift_share`` of the last day."""
        series = TimeSeriesStore(self.project.engine, clock=self.clock)
        points = series.query("edge_drift_share", deployment=name, start=self.clock() - 86400)
        return {parse_labels(p.labels).get("device", ""): p.value for p in points}


def _version(frame: pd.DataFrame, version: int) -> pd.DataFrame:
    if frame.empty or "version" not in frame:
        return frame.iloc[0:0]
    return frame[frame["version"] == version].reset_index(drop=True)
