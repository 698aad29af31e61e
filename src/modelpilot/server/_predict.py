"""Answering prediction requests, whatever protocol carried them (MLServer's ``dataplane``).

Validate the instances, choose the version (the deployment's router), score them in its
micro-batcher, apply the deployment's degree of automation (which answers go to a person), have
the answers recorded, and send copies to any shadow. The codecs (``_v1.py``, ``_v2.py``) turn
bytes into records and answers into bytes; this module never sees either.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from typing import Any

from modelpilot.automation import margin_confidence, typicality_confidence
from modelpilot.errors import ValidationFailed
from modelpilot.inference import (
    BatchFailed,
    BatchJob,
    Deployment,
    JobResult,
    LoadedVersion,
    LogPolicy,
    StepFailed,
)
from modelpilot.server._errors import ModelFailed
from modelpilot.server._state import ServerState
from modelpilot.store import new_ids

__all__ = ["Predictor"]

logger = logging.getLogger("modelpilot.server")


class Predictor:
    """The prediction logic of one server (see the module's docstring)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.max_instances = state.project.spec.serving.max_instances
        self._background: set[asyncio.Task[None]] = set()

    async def predict(
        self,
        deployment: Deployment,
        records: list[Any],
        key: str | None,
        *,
        loaded: LoadedVersion | None = None,
    ) -> tuple[list[str], JobResult, LoadedVersion]:
        """``(ids, answers, the version that answered)`` for one request's records."""
        state = self.state
        if not records:
            raise ValidationFailed(
                [{"field": "instances", "expected": "at least one instance", "got": []}]
            )
        if len(records) > self.max_instances:
            raise ValidationFailed(
                [
                    {
                        "field": "instances",
                        "expected": f"at most {self.max_instances} instances",
                        "got": f"{len(records)} instances",
                    }
                ]
            )
        target = loaded or deployment.router.choose(key)
        validator = target.validator
        names = validator.names
        metrics = state.metrics
        n = len(records)
        degree = state.degree_of(deployment.name)
        # With full automation the answers are the model's as scored: the model thread records
        # them with the rest of its micro-batch. Other degrees change answers first (people
        # decide some), so this request records its own once they are final.
        policy = LogPolicy.SCORER if degree == "full" else LogPolicy.CALLER
        rows = validator.numeric_rows(records)  # the fast path: clean, all-numeric records
        if rows is not None:
            job = BatchJob(n, rows=rows, deployment=deployment.name, policy=policy)
            missing: dict[str, int] = {}
            out_of_range: dict[str, int] = {}
            unseen: dict[str, int] = {}
            problems: list[dict[str, Any]] = []
        else:
            checked = validator.validate_records(records)
            job = BatchJob(n, columns=checked.columns, deployment=deployment.name, policy=policy)
            missing, out_of_range, unseen = checked.missing, checked.out_of_range, checked.unseen
            problems = checked.problems
        if metrics is not None:
            try:
                metrics.observe_inputs(deployment.name, names, n, missing, out_of_range, unseen)
            except Exception:  # a metric must never fail a prediction
                logger.exception("recording input metrics failed")
        if problems:
            raise ValidationFailed(problems)
        state.writer.check_capacity(n)
        if degree == "human":  # the model is not consulted at all
            result = JobResult([None] * n, None, None, ids=new_ids(n, clock=state.clock))
        else:
            try:
                result = await target.batcher.submit(job)
            except BatchFailed as exc:
                raise self._failed(target, job, exc) from None
        ids = result.ids
        inputs: list[dict[str, Any]] | None = None
        if policy is LogPolicy.CALLER:
            inputs = job.records(names)
            columns = {name: [record[name] for record in inputs] for name in names}
            result = await self._automate(deployment, target, degree, ids, inputs, columns, result)
            await state.recorder.record_answers(
                target.version, deployment.name, columns, result, deferred=degree
            )
        state.counters.predictions += n
        mirrors = deployment.router.mirrors(target)
        if mirrors:
            loop = asyncio.get_running_loop()
            shared = inputs if inputs is not None else job.records(names)
            for mirror in mirrors:
                # After this request's answer: a mirror never delays or fails the primary's.
                task = loop.create_task(self._mirror(mirror, shared, ids))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        return ids, result, target

    def _failed(self, target: LoadedVersion, job: BatchJob, exc: BatchFailed) -> ModelFailed:
        """A request the model raised on: counted, logged (by the model thread for ``SCORER``
        jobs), and answered with a 500 that names its prediction ids."""
        state = self.state
        state.counters.model_errors += 1
        cause = exc.cause
        where = f"step {cause.step!r} of" if isinstance(cause, StepFailed) else "model"
        logger.error(
            "%s %s failed on prediction ids %s", where, target.label, exc.ids, exc_info=cause
        )
        if job.policy is LogPolicy.CALLER:
            state.recorder.record_failure(
                target.version, target.validator.names, job, exc.ids, cause, exc.latency_ms
            )
        return ModelFailed(exc.ids, cause)

    async def _automate(
        self,
        deployment: Deployment,
        target: LoadedVersion,
        degree: str,
        ids: list[str],
        inputs: list[dict[str, Any]],
        columns: dict[str, list[Any]],
        result: JobResult,
    ) -> JobResult:
        """Apply the deployment's degree of automation: which answers go to a person."""
        reviews_queue = self.state.reviews
        if reviews_queue is None:  # start-up has not finished: nothing can be deferred yet
            return result
        settings = self.state.project.spec.automation
        if result.proba is not None:
            confidence = margin_confidence(result.proba)
        elif degree == "human":
            confidence = [0.0] * len(ids)
        else:
            confidence = typicality_confidence(
                columns, target.validator.features, target.version.profile
            )
        if degree == "partial":
            deferred = [i for i, c in enumerate(confidence) if c < settings.threshold]
            status, visible = "deferred", True
        else:  # assist: a suggestion to confirm; shadow / human: a person decides unaided
            deferred = list(range(len(ids)))
            status, visible = "pending_review", degree == "assist"
        reviews: dict[int, tuple[str, str, bool]] = {}
        if deferred:
            items = [(ids[i], inputs[i], result.predictions[i], confidence[i]) for i in deferred]
            loop = asyncio.get_running_loop()
            created = await loop.run_in_executor(
                None,
                functools.partial(
                    reviews_queue.add,
                    deployment.name,
                    target.version.name,
                    target.version.version,
                    degree,
                    items,
                ),
            )
            reviews = {
                i: (item.id, status, visible) for i, item in zip(deferred, created, strict=True)
            }
        return dataclasses.replace(result, confidence=confidence, reviews=reviews)

    async def _mirror(
        self, loaded: LoadedVersion, inputs: list[dict[str, Any]], ids: list[str]
    ) -> None:
        """Score a copy of a request with another version; record it as a shadow's answer."""
        await asyncio.sleep(0)  # let the primary's response go out first
        started = time.perf_counter()
        outcome: JobResult | BaseException
        try:
            checked = loaded.validator.validate_records(inputs)
            if checked.problems:
                raise ValidationFailed(checked.problems)
            outcome = await loaded.batcher.submit(
                BatchJob(len(inputs), columns=checked.columns, policy=LogPolicy.CALLER)
            )
        except Exception as exc:
            outcome = exc.cause if isinstance(exc, BatchFailed) else exc
        latency_ms = (time.perf_counter() - started) * 1000
        names = list(inputs[0]) if inputs else []
        columns = {name: [record[name] for record in inputs] for name in names}
        self.state.recorder.record_shadow(loaded.version, columns, ids, outcome, latency_ms)
