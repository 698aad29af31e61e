"""The retraining loop: export data, train, register, compare with production, deploy.

Triggers — an alert's ``retrain`` action, a schedule, the retry rule, or ``modelpilot
retrain`` — all go through :meth:`RetrainLoop.trigger`, whose policy (cooldown, minimum new
labels, maximum concurrent runs, the retry rule; ``_retrain_policy.py``) is enforced by
conditional updates in the database: many simultaneous alerts, in one process or several,
start at most one run per cooldown.

The trainer is the user's: a shell command or a ``module:function``. It gets the exported data
(the production version's training data plus the logged inputs that have labels, over
``retrain.window_s``) and writes one model artifact. A failing run is reported and nothing is
registered; a successful one is registered with its holdout metrics, compared with production
on the same holdout (``_retrain_compare.py``, which also measures what change to expect of it),
and — when it passes and the project allows it — deployed with the configured strategy, whose
gates then promote it or roll it back. The run's record follows its rollout: a candidate that
is rolled back turns the run ``rolled_back``, with the rollout's reason.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from sqlalchemy import insert, select, update

from modelpilot.automation._retrain_compare import compare_with_production
from modelpilot.automation._retrain_export import export_data
from modelpilot.automation._retrain_policy import RETRY_PREFIX, RetrainPolicy, RetryCheck
from modelpilot.errors import ConfigError, ConflictError, ModelpilotError
from modelpilot.project import Project
from modelpilot.registry import register_model
from modelpilot.rollout import RolloutStore
from modelpilot.store import check_fence
from modelpilot.store._tables import retrain_runs
from modelpilot.types import Clock

__all__ = ["RetrainLoop", "RetrainRun"]

logger = logging.getLogger("modelpilot.automation")


@dataclass
class RetrainRun:
    id: int
    model: str
    trigger: str
    status: str
    started_at: float
    finished_at: float | None
    version: int | None
    details: dict[str, Any]
    started_by: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _row(row: Any) -> RetrainRun:
    m = dict(row._mapping)
    m["details"] = orjson.loads(m.pop("details_json") or "{}")
    return RetrainRun(**m)


class RetrainLoop:
    def __init__(
        self,
        project: Project,
        *,
        clock: Clock = time.time,
        deploy: Callable[[int, str, dict[str, Any]], Any] | None = None,
    ) -> None:
        self.project = project
        self.settings = project.spec.retrain
        self.model = project.spec.model_name
        self.clock = clock
        # (version, reason, expected) -> status; the server's controller.
        self.deploy = deploy
        self.policy = RetrainPolicy(project, self.model)
        self._threads: list[threading.Thread] = []

    # ---- policy -------------------------------------------------------------------------
    def new_labels(self, since: float) -> int:
        return len(self.project.prediction_log.labels_since(since, model=self.model))

    def last_run(self) -> RetrainRun | None:
        with self.project.engine.connect() as connection:
            row = connection.execute(
                select(retrain_runs)
                .where(retrain_runs.c.model == self.model)
                .order_by(retrain_runs.c.id.desc())
                .limit(1)
            ).first()
        return self._followed(_row(row)) if row is not None else None

    def runs(self, *, limit: int = 20) -> list[RetrainRun]:
        """The newest runs first, each with what became of its candidate's rollout."""
        with self.project.engine.connect() as connection:
            rows = connection.execute(
                select(retrain_runs)
                .where(retrain_runs.c.model == self.model)
                .order_by(retrain_runs.c.id.desc())
                .limit(limit)
            ).all()
        return [self._followed(_row(r)) for r in rows]

    def _followed(self, run: RetrainRun) -> RetrainRun:
        """``run``, its record brought up to date with its rollout once that has ended: a
        rolled-back (or aborted) candidate makes the run ``rolled_back``, with the reason."""
        rollout_id = run.details.get("rollout_id")
        if run.status != "succeeded" or rollout_id is None or "rollout" in run.details:
            return run
        try:
            record = RolloutStore(self.project.engine).get(int(rollout_id))
        except ModelpilotError:
            return run
        if record.active:
            return run
        outcome = {"id": record.id, "status": record.status, "reason": record.reason}
        status = "succeeded" if record.status == "promoted" else "rolled_back"
        details = {**run.details, "rollout": outcome}
        with self.project.engine.begin() as connection:
            updated = connection.execute(
                update(retrain_runs)
                .where(retrain_runs.c.id == run.id, retrain_runs.c.status == "succeeded")
                .values(status=status, details_json=_dumps(details))
            ).rowcount
        if updated and status == "rolled_back":
            self.project.registry.audit(
                "retrain",
                "retrain.rolled_back",
                self.model,
                {
                    "run": run.id,
                    "version": run.version,
                    "rollout": record.id,
                    "reason": record.reason,
                },
            )
        return dataclasses.replace(run, status=status, details=details)

    def tick(self) -> RetrainRun | None:
        """Start a run when the retry rule allows one (``_retrain_policy.py``); the server's
        control loop calls this on the leading worker."""
        if not (self.settings.command or self.settings.function) or not self.settings.auto:
            return None
        try:
            runs = self.runs(limit=self.settings.max_retries + 2)
            check = self.policy.retry(self.clock(), runs)
            if not check.allowed:
                return None
            return self.trigger(
                reason=f"{RETRY_PREFIX}: {check.reason}", actor="retrain", retry=check
            )
        except ModelpilotError as exc:
            logger.info("no retry of the retraining: %s", exc.message)
        except Exception:  # the next tick tries again; the control loop must go on
            logger.exception("checking the retraining's retry rule failed")
        return None

    def trigger(
        self,
        *,
        reason: str,
        actor: str,
        force: bool = False,
        background: bool = True,
        retry: RetryCheck | None = None,
    ) -> RetrainRun:
        """Start a run if the policy allows it (else a ConflictError that says why).

        While the cooldown lasts, a trigger still starts a run when the retry rule allows
        one (``retry``: its verdict; found here when not given)."""
        if not (self.settings.command or self.settings.function):
            raise ConfigError(
                "modelpilot.yaml",
                [
                    "retrain: neither `command` nor `function` is set; name what trains a model, "
                    "e.g. `retrain: {command: python train.py}`"
                ],
            )
        now = self.clock()
        last = self.last_run()
        if not force and self.settings.min_new_labels:
            fresh = self.new_labels(last.started_at if last else 0.0)
            if fresh < self.settings.min_new_labels:
                raise ConflictError(
                    f"only {fresh} new labels since the last run; retrain.min_new_labels is "
                    f"{self.settings.min_new_labels} (pass --force to train anyway)"
                )
        if retry is None and not force:
            retry = self.policy.retry(now, self.runs(limit=self.settings.max_retries + 2))
        self.policy.claim(now, force=force, retry=retry)
        with self.project.engine.begin() as connection:
            check_fence(connection)
            inserted = connection.execute(
                insert(retrain_runs).values(
                    model=self.model,
                    trigger=reason[:100],
                    status="running",
                    started_at=now,
                    details_json="{}",
                    started_by=actor,
                )
            )
            run_id = int(inserted.inserted_primary_key[0])  # type: ignore[index]
        self.project.registry.audit(
            actor, "retrain.start", self.model, {"run": run_id, "reason": reason}
        )
        if background:
            thread = threading.Thread(
                target=self.run, args=(run_id,), daemon=True, name=f"modelpilot-retrain-{run_id}"
            )
            self._threads.append(thread)
            thread.start()
        else:
            self.run(run_id)
        return self.get(run_id)

    def get(self, run_id: int) -> RetrainRun:
        with self.project.engine.connect() as connection:
            row = connection.execute(
                select(retrain_runs).where(retrain_runs.c.id == run_id)
            ).first()
        if row is None:
            raise ModelpilotError(f"no retraining run {run_id}")
        return _row(row)

    def wait(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)

    # ---- a run --------------------------------------------------------------------------
    def _finish(
        self, run_id: int, status: str, details: dict[str, Any], version: int | None = None
    ) -> None:
        with self.project.engine.begin() as connection:
            connection.execute(
                update(retrain_runs)
                .where(retrain_runs.c.id == run_id)
                .values(
                    status=status,
                    finished_at=self.clock(),
                    version=version,
                    details_json=_dumps(details),
                )
            )
        self.project.registry.audit(
            "retrain",
            f"retrain.{status}",
            self.model,
            {
                "run": run_id,
                **{k: v for k, v in details.items() if k in ("reason", "version", "error")},
            },
        )

    def export(self, directory: Path) -> tuple[Path, Path, dict[str, Any]]:
        """Write train.parquet and holdout.parquet; returns their paths and counts."""
        return export_data(self.project, self.model, directory, now=self.clock())

    def _train(self, directory: Path, train: Path, holdout: Path) -> Path:
        output = directory / "output"
        output.mkdir(exist_ok=True)
        if self.settings.function:
            module_name, _, attr = self.settings.function.partition(":")
            sys.path.insert(0, str(self.project.directory))
            try:
                trainer = getattr(importlib.import_module(module_name), attr)
            finally:
                sys.path.remove(str(self.project.directory))
            result = trainer(
                pd.read_parquet(train), pd.read_parquet(holdout), output, self.project.spec
            )
            return Path(result)
        env = {
            **os.environ,
            "MODELPILOT_TRAIN_DATA": str(train),
            "MODELPILOT_HOLDOUT_DATA": str(holdout),
            "MODELPILOT_OUTPUT_DIR": str(output),
            "MODELPILOT_TARGET": self.project.spec.target,
            "MODELPILOT_PROJECT": str(self.project.directory),
        }
        completed = subprocess.run(
            shlex.split(self.settings.command or ""),
            cwd=self.project.directory,
            env=env,
            capture_output=True,
            text=True,
            timeout=self.settings.timeout_s,
            check=False,
        )
        (directory / "train.log").write_text(completed.stdout + completed.stderr)
        if completed.returncode != 0:
            tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
            raise ModelpilotError(
                f"the training command exited {completed.returncode}: " + " | ".join(tail)
            )
        artifacts = [p for p in output.iterdir() if not p.name.startswith(".")]
        if len(artifacts) != 1:
            raise ModelpilotError(
                f"the training command must write exactly one artifact into "
                f"$MODELPILOT_OUTPUT_DIR; found {len(artifacts)}"
            )
        return artifacts[0]

    def run(self, run_id: int) -> RetrainRun:
        directory = self.project.directory / ".modelpilot" / "retrain" / f"run-{run_id}"
        details: dict[str, Any] = {}
        try:
            train, holdout, counts = self.export(directory)
            details.update(counts)
            artifact = self._train(directory, train, holdout)
            version = register_model(
                self.project,
                artifact,
                name=self.model,
                eval_file=holdout,
                data_file=train,
                trust=True,
                tags={"retrain_run": str(run_id)},
            )
        except Exception as exc:  # reported, never half-registered (registration is atomic)
            details["error"] = f"{type(exc).__name__}: {exc}"
            self._finish(run_id, "failed", details)
            return self.get(run_id)
        details["version"] = version.version
        try:
            comparison = compare_with_production(
                self.project.spec,
                self.project.registry,
                version,
                self.project.registry.resolve(f"{self.model}@production"),
                holdout,
                source=f"retrain run {run_id}",
            )
        except Exception as exc:  # the version stays registered; nothing is deployed
            details["error"] = f"comparing with production failed: {type(exc).__name__}: {exc}"
            self._finish(run_id, "failed", details, version.version)
            return self.get(run_id)
        details["comparison"] = comparison
        if version.rejected or not comparison["better_or_equal"]:
            details["reason"] = (
                "misses its key-metric targets"
                if version.rejected
                else "worse than production on the same holdout"
            )
            self._finish(run_id, "rejected", details, version.version)
            return self.get(run_id)
        if self.settings.auto and self.settings.deploy != "none" and self.deploy is not None:
            try:
                status = self.deploy(
                    version.version, f"retrain run {run_id}", comparison["expected"]
                )
                details["deployed"] = self.settings.deploy
                rollout = (status or {}).get("rollout") if isinstance(status, dict) else None
                if isinstance(rollout, dict) and rollout.get("id") is not None:
                    details["rollout_id"] = rollout["id"]
            except ModelpilotError as exc:
                details["deploy_error"] = exc.message
        self._finish(run_id, "succeeded", details, version.version)
        return self.get(run_id)


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
