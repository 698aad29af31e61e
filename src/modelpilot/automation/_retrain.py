"""The retraining loop: export data, train, register, compare with production, deploy.

Triggers — an alert's ``retrain`` action, a schedule, or ``modelpilot retrain`` — all go
through :meth:`RetrainLoop.trigger`, whose policy (cooldown, minimum new labels, maximum
concurrent runs) is enforced by one conditional update in the database: many simultaneous
alerts, in one process or several, start at most one run per cooldown.

The trainer is the user's: a shell command or a ``module:function``. It gets the exported data
(the production version's training data plus the logged inputs that have labels, over
``retrain.window_s``) and writes one model artifact. A failing run is reported and nothing is
registered; a successful one is registered with its holdout metrics, compared with production
on the same holdout, and — when it passes and the project allows it — deployed with the
configured strategy, whose gates then promote it or roll it back.
"""

from __future__ import annotations

import importlib
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
from sqlalchemy.exc import IntegrityError

from modelpilot.data import read_table
from modelpilot.errors import ConfigError, ConflictError, ModelpilotError
from modelpilot.project import Project
from modelpilot.registry import evaluate, register_model
from modelpilot.spec import METRICS
from modelpilot.store import check_fence
from modelpilot.store._tables import leases, retrain_runs
from modelpilot.types import Clock

__all__ = ["RetrainLoop", "RetrainRun"]


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
        deploy: Callable[[int, str], Any] | None = None,
    ) -> None:
        self.project = project
        self.settings = project.spec.retrain
        self.model = project.spec.model_name
        self.clock = clock
        self.deploy = deploy  # (version, reason) -> status; the server's controller
        self._threads: list[threading.Thread] = []

    # ---- policy -------------------------------------------------------------------------
    def _claim(self, now: float, *, force: bool) -> None:
        """Take the cooldown slot atomically, or raise a ConflictError saying why not."""
        name = f"retrain:{self.model}"
        engine = self.project.engine
        with engine.connect() as connection:
            running = connection.execute(
                select(retrain_runs.c.id).where(
                    retrain_runs.c.model == self.model, retrain_runs.c.status == "running"
                )
            ).all()
        if len(running) >= self.settings.max_concurrent:
            raise ConflictError(
                f"{len(running)} retraining run(s) of {self.model} already "
                f"running (retrain.max_concurrent = {self.settings.max_concurrent})"
            )
        expires = now + (0.0 if force else self.settings.cooldown_s)
        with engine.begin() as connection:
            check_fence(connection)  # a leader's trigger (schedule, alert): still the leader?
            taken = connection.execute(
                update(leases)
                .where(leases.c.name == name, leases.c.expires_at <= now)
                .values(holder=str(os.getpid()), expires_at=expires)
            ).rowcount
            if taken:
                return
            current = connection.execute(
                select(leases.c.expires_at).where(leases.c.name == name)
            ).scalar()
        if current is None:
            try:
                with engine.begin() as connection:
                    connection.execute(
                        insert(leases).values(
                            name=name, holder=str(os.getpid()), expires_at=expires
                        )
                    )
                return
            except IntegrityError:
                pass
        if force:
            with engine.begin() as connection:
                connection.execute(
                    update(leases).where(leases.c.name == name).values(expires_at=expires)
                )
            return
        raise ConflictError(
            f"retraining {self.model} is cooling down (retrain.cooldown_s); "
            "the next run may start in "
            f"{max(0.0, float(current or now) - now):.0f}s, or pass --force"
        )

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
        return _row(row) if row is not None else None

    def runs(self, *, limit: int = 20) -> list[RetrainRun]:
        with self.project.engine.connect() as connection:
            rows = connection.execute(
                select(retrain_runs)
                .where(retrain_runs.c.model == self.model)
                .order_by(retrain_runs.c.id.desc())
                .limit(limit)
            ).all()
        return [_row(r) for r in rows]

    def trigger(
        self, *, reason: str, actor: str, force: bool = False, background: bool = True
    ) -> RetrainRun:
        """Start a run if the policy allows it (else a ConflictError that says why)."""
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
        self._claim(now, force=force)
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
                    details_json=orjson.dumps(details, option=orjson.OPT_SERIALIZE_NUMPY).decode(),
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
        spec = self.project.spec
        registry = self.project.registry
        production = registry.resolve(f"{self.model}@production")
        names = [f.name for f in production.features]
        frames = []
        reference_path = production.lineage.get("data_path")
        reference = pd.DataFrame()
        if reference_path and Path(reference_path).is_file():
            reference = read_table(
                reference_path, types={f.name: f.type for f in production.features}
            )
            reference = reference[[c for c in [*names, spec.target] if c in reference]]
            frames.append(reference.assign(_source="reference"))
        labeled = self.project.prediction_log.labeled(
            model=self.model, start=self.clock() - self.settings.window_s
        )
        labeled = labeled[labeled["source"] == "online"] if not labeled.empty else labeled
        recent = pd.DataFrame()
        if not labeled.empty:
            labeled = labeled.sort_values("label_ts", kind="stable")
            recent = labeled[[c for c in names if c in labeled]].copy()
            recent[spec.target] = labeled["label"].to_numpy()
            recent = recent.drop_duplicates()
        if len(recent) >= 10:
            # The holdout is the newest labels: a retrained model is judged on the world as it
            # is now, which is why it was retrained.
            cut = len(recent) - max(1, int(len(recent) * self.settings.holdout_fraction))
            holdout, fresh = recent.iloc[cut:], recent.iloc[:cut]
        else:
            holdout, fresh = pd.DataFrame(), recent
        if holdout.empty:
            holdout_path = production.lineage.get("eval_path")
            if not holdout_path or not Path(holdout_path).is_file():
                raise ModelpilotError(
                    "no labelled recent data and no holdout file to evaluate a retrained model on"
                )
            holdout = read_table(holdout_path)
        frames.append(fresh.assign(_source="logged"))
        train = pd.concat(frames, ignore_index=True)
        directory.mkdir(parents=True, exist_ok=True)
        train_path, holdout_path_out = directory / "train.parquet", directory / "holdout.parquet"
        # `_source` ("reference" or "logged") lets a trainer weigh the new rows; drop it or use it.
        train.to_parquet(train_path)
        holdout.to_parquet(holdout_path_out)
        counts = {
            "reference_rows": len(reference),
            "logged_rows": len(fresh),
            "holdout_rows": len(holdout),
        }
        return train_path, holdout_path_out, counts

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
        comparison = self._compare(version.version, holdout)
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
                self.deploy(version.version, f"retrain run {run_id}")
                details["deployed"] = self.settings.deploy
            except ModelpilotError as exc:
                details["deploy_error"] = exc.message
        self._finish(run_id, "succeeded", details, version.version)
        return self.get(run_id)

    def _compare(self, version: int, holdout: Path) -> dict[str, Any]:
        """Candidate and production on the same holdout, key metric by key metric."""
        spec = self.project.spec
        registry = self.project.registry
        candidate = registry.get(self.model, version)
        production = registry.resolve(f"{self.model}@production")
        prod_metrics, _ = evaluate(registry.load(production, trust=True, force=True), spec, holdout)
        cand_metrics = {k: v for k, v in candidate.metrics.items() if isinstance(v, float)}
        rows, ok = [], True
        for key in spec.key_metrics:
            c, p = cand_metrics.get(key.name), prod_metrics.get(key.name)
            if c is None or p is None:
                continue
            better = c <= p if METRICS[key.name] == "lower" else c >= p
            ok = ok and better
            rows.append(
                {
                    "metric": key.name,
                    "candidate": c,
                    "production": p,
                    "production_version": production.version,
                }
            )
        return {"metrics": rows, "better_or_equal": ok}
