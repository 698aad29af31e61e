"""When a retraining run may start: the cooldown, concurrent runs, and the retry rule.

The cooldown is a lease row (``retrain:<model>``) taken by one conditional update, so many
simultaneous alerts, in one process or several, start at most one run per ``cooldown_s``.

**The retry rule.** A cooldown must not keep production on a broken model. When the last run
did not fix production — its candidate was rejected by the offline comparison or rolled back
by its rollout, the run failed, or its candidate was promoted and still misses the target —
another run may start before the cooldown is over, once all of these hold:

- that run has ended, and so has its candidate's rollout;
- ``retrain.retry_after_s`` have passed since that run started;
- at least ``retrain.min_new_labels`` labels (at least one) arrived since it started: the next
  run trains on more of the world as it is now;
- the production version's key metric over those new labels (its newest
  ``monitoring.label_window``) still misses its target;
- fewer than ``retrain.max_retries`` retries ran in a row since the last run that was not one.

``modelpilot retrain --force`` ignores the cooldown, the retry rule and ``min_new_labels``. Only
runs that are really running hold it back (``max_concurrent``): a run still marked running
after ``retrain.timeout_s`` (and a minute) was left by a process that died, and is marked
failed instead of blocking every later run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from modelpilot.errors import ConflictError
from modelpilot.project import Project
from modelpilot.registry import compute_metrics
from modelpilot.store import check_fence
from modelpilot.store._tables import leases, retrain_runs

__all__ = ["RETRY_PREFIX", "RetrainPolicy", "RetryCheck"]

#: The trigger of a run started by the retry rule begins with this.
RETRY_PREFIX = "retry"
#: How long past ``retrain.timeout_s`` a run may still be marked running before it counts as
#: abandoned.
ABANDON_GRACE_S = 60.0


@dataclass(frozen=True)
class RetryCheck:
    """Whether the retry rule allows a run now, and why (or why not)."""

    allowed: bool
    reason: str


class RetrainPolicy:
    """The policy of one model's retraining runs (see the module's docstring)."""

    def __init__(self, project: Project, model: str) -> None:
        self.project = project
        self.model = model
        self.settings = project.spec.retrain

    # ---- runs that are really running -----------------------------------------------------
    def running(self, now: float) -> int:
        """Runs in progress, after marking the abandoned ones failed."""
        limit = now - self.settings.timeout_s - ABANDON_GRACE_S
        error = orjson.dumps(
            {
                "error": "abandoned: still marked running past retrain.timeout_s; the "
                "process that ran it has ended"
            }
        ).decode()
        with self.project.engine.begin() as connection:
            connection.execute(
                update(retrain_runs)
                .where(
                    retrain_runs.c.model == self.model,
                    retrain_runs.c.status == "running",
                    retrain_runs.c.started_at < limit,
                )
                .values(status="failed", finished_at=now, details_json=error)
            )
            rows = connection.execute(
                select(retrain_runs.c.id).where(
                    retrain_runs.c.model == self.model, retrain_runs.c.status == "running"
                )
            ).all()
        return len(rows)

    # ---- the cooldown lease ---------------------------------------------------------------
    def claim(self, now: float, *, force: bool, retry: RetryCheck | None = None) -> None:
        """Take the cooldown slot atomically, or raise a ConflictError saying why not.

        ``retry``: the retry rule's verdict, which lets a run start while cooling down."""
        running = self.running(now)
        if running >= self.settings.max_concurrent:
            raise ConflictError(
                f"{running} retraining run(s) of {self.model} already "
                f"running (retrain.max_concurrent = {self.settings.max_concurrent})"
            )
        name = f"retrain:{self.model}"
        engine = self.project.engine
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
        if force or (retry is not None and retry.allowed):
            # Compare-and-set on the expiry read above: of simultaneous retries, one wins.
            with engine.begin() as connection:
                taken = connection.execute(
                    update(leases)
                    .where(leases.c.name == name, leases.c.expires_at == current)
                    .values(holder=str(os.getpid()), expires_at=expires)
                ).rowcount
            if taken or force:
                return
        wait = max(0.0, float(current or now) - now)
        why = f"; no early retry: {retry.reason}" if retry is not None else ""
        raise ConflictError(
            f"retraining {self.model} is cooling down (retrain.cooldown_s); the next run may "
            f"start in {wait:.0f}s{why}, or pass --force"
        )

    # ---- the retry rule -------------------------------------------------------------------
    def retry(self, now: float, runs: list[Any]) -> RetryCheck:
        """The retry rule (module docstring) given the model's runs, newest first."""
        if not runs:
            return RetryCheck(False, "no earlier run")
        last = runs[0]
        if last.status == "running":
            return RetryCheck(False, f"run {last.id} is still running")
        if (
            last.status == "succeeded"
            and "rollout" not in last.details
            and (last.details.get("rollout_id") is not None)
        ):
            return RetryCheck(False, f"run {last.id}'s rollout is still running")
        retries = 0
        for run in runs:
            if not str(run.trigger).startswith(RETRY_PREFIX):
                break
            retries += 1
        if retries >= self.settings.max_retries:
            return RetryCheck(False, f"{retries} retries in a row already (retrain.max_retries)")
        wait = last.started_at + self.settings.retry_after_s - now
        if wait > 0:
            return RetryCheck(False, f"retrain.retry_after_s: {wait:.0f}s to go")
        log = self.project.prediction_log
        fresh = log.labels_since(last.started_at, model=self.model)
        needed = max(1, self.settings.min_new_labels)
        if len(fresh) < needed:
            return RetryCheck(False, f"{len(fresh)} of {needed} new labels since run {last.id}")
        failing = self.failing(fresh)
        if not failing:
            return RetryCheck(False, "production's key metric meets its target on the new labels")
        what = {
            "rolled_back": f"v{last.version} was rolled back",
            "rejected": f"v{last.version} was rejected",
            "failed": "failed",
        }.get(last.status, "did not fix production")
        return RetryCheck(
            True, f"run {last.id} {what}; {', '.join(failing)} on {len(fresh)} new labels"
        )

    def failing(self, labelled: Any) -> list[str]:
        """The key metrics production misses on the newest of ``labelled`` (rows of the log
        with their labels), as ``"mae 31,000 misses mae <= 25000"``."""
        spec = self.project.spec
        production = self.project.registry.resolve(f"{self.model}@production")
        rows = labelled
        if not rows.empty:
            rows = rows[(rows["version"] == production.version) & (rows["source"] == "online")]
            rows = rows[rows["prediction"].notna()].tail(spec.monitoring.label_window)
        if len(rows) < 2:
            return []
        truth, predicted = rows["label"].to_numpy(), rows["prediction"].to_numpy()
        if spec.task != "regression":  # labels keep their JSON type: compare as class names
            truth, predicted = truth.astype(str), predicted.astype(str)
        values = compute_metrics(spec.task or "regression", truth, predicted)
        out = []
        for key in spec.key_metrics:
            value = values.get(key.name)
            if value is not None and not key.passes(float(value)):
                out.append(f"{key.name} {value:,.4g} misses {key}")
        return out
