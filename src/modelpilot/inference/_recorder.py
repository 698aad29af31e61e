"""The one way into the prediction log for served predictions, and their output metrics.

Every answered prediction, every failed one and every shadow's copy reaches the log writer
through a :class:`PredictionRecorder`, as :class:`~modelpilot.store.LogRows`. Which side calls
it is each job's :class:`~modelpilot.inference.LogPolicy`: the model thread records the answers
that are final as scored (its whole micro-batch in one hand-over), the caller records answers it
changed first (people decide some) and a shadow's copies.

Durable mode (``logging.durable``): an answer goes out only once its rows are committed. The
model thread waits for the commit of its micro-batch (requests arriving meanwhile form the next
one: a natural group commit); the caller awaits it on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from modelpilot.inference._jobs import BatchJob, JobResult, LogPolicy
from modelpilot.inference._logwriter import LogWriter
from modelpilot.inference._pipeline import StepFailed
from modelpilot.registry import ModelVersion
from modelpilot.store import LogRows, MatrixColumns
from modelpilot.types import Clock

__all__ = ["OutputObserver", "PredictionRecorder", "failure_text"]

logger = logging.getLogger("modelpilot.inference")


class OutputObserver(Protocol):
    """Counts answered predictions (``modelpilot.monitoring.ServingMetrics`` does)."""

    def observe_outputs(
        self,
        deployment: str,
        version: str,
        predictions: Sequence[Any],
        confidence: Sequence[float] | None,
    ) -> None: ...


def failure_text(exc: BaseException) -> str:
    """What the log's ``error`` column says of a failed prediction.

    Examples
    --------
    >>> failure_text(KeyError("x")), failure_text(StepFailed("d", "clean", ValueError("v")))
    ('KeyError', 'ValueError in step clean')
    """
    if isinstance(exc, StepFailed):
        return f"{type(exc.cause).__name__} in step {exc.step}"
    return type(exc).__name__


class PredictionRecorder:
    """Hands served predictions to the log writer and counts them in the output metrics."""

    def __init__(
        self,
        writer: LogWriter,
        *,
        clock: Clock = time.time,
        durable: bool = False,
        observer: OutputObserver | None = None,
    ) -> None:
        self.writer = writer
        self.clock = clock
        self.durable = durable
        self.observer = observer

    # ---- the model thread: jobs whose policy is SCORER ----------------------------------
    def record_scored(
        self,
        version: ModelVersion,
        jobs: Sequence[BatchJob],
        results: Sequence[JobResult],
        *,
        inputs: Mapping[str, Any],
        proba: Any,
        classes: list[str] | None,
        now: float,
    ) -> Callable[[], None] | None:
        """Record the answers of a micro-batch's ``SCORER`` jobs (``inputs`` and ``proba``
        hold every job's rows, in order).

        Durable: commits them before returning (an error means they were not logged, so they
        must not be answered). Otherwise returns the hand-over to run on the event loop once
        the answers are out (None when no job is recorded here).
        """
        mine = [job.policy is LogPolicy.SCORER for job in jobs]
        if not any(mine):
            return None
        rows = _scored_rows(version, jobs, results, mine, inputs, proba, classes, now)
        if self.durable:
            self._commit(rows)
            self._observe(version, jobs, results, mine)
            return None

        def hand_over() -> None:
            # The writer thread joins the rows when it commits: the event loop only queues.
            self._submit(rows)
            self._observe(version, jobs, results, mine)

        return hand_over

    def _commit(self, rows: LogRows) -> None:
        committed = threading.Event()
        errors: list[BaseException | None] = []

        def on_commit(error: BaseException | None) -> None:
            errors.append(error)
            committed.set()

        self.writer.submit(rows, on_commit)
        committed.wait()
        if errors and errors[0] is not None:
            raise errors[0]

    def _submit(self, rows: LogRows) -> None:
        try:
            self.writer.submit(rows)
        except Exception as exc:  # the writer stopped: keep the rows, never drop them
            logger.error("the log writer refused %d answered predictions: %s", len(rows), exc)
            self.writer.dead_letter(rows, exc)

    def _observe(
        self,
        version: ModelVersion,
        jobs: Sequence[BatchJob],
        results: Sequence[JobResult],
        mine: Sequence[bool],
    ) -> None:
        if self.observer is None:
            return
        try:
            label = str(version.version)
            by_deployment: dict[str, tuple[list[Any], list[float] | None]] = {}
            for job, result, recorded in zip(jobs, results, mine, strict=True):
                if not recorded:
                    continue
                predictions, confidence = by_deployment.setdefault(
                    job.deployment, ([], [] if result.proba is not None else None)
                )
                predictions.extend(result.predictions)
                if confidence is not None and result.proba is not None:
                    # Python's max on the answer's rows: for the few rows of a small batch,
                    # cheaper than a NumPy reduction.
                    confidence.extend(max(row) for row in result.proba)
            for deployment, (predictions, confidence) in by_deployment.items():
                self.observer.observe_outputs(deployment, label, predictions, confidence)
        except Exception:  # a metric must never fail a prediction
            logger.exception("recording output metrics failed")

    # ---- failures (the model thread for SCORER jobs, the caller for the others) ----------
    def record_failure(
        self,
        version: ModelVersion,
        names: Sequence[str],
        job: BatchJob,
        ids: list[str],
        exc: BaseException,
        latency_ms: float,
    ) -> None:
        """A request the model (or a step) raised on: logged with a null prediction and what
        failed, so error rates come from the log and the ids in the 500 can be looked up."""
        self._submit(
            LogRows(
                version.name,
                version.version,
                ids,
                self.clock(),
                job.input_columns(names),
                [None] * len(ids),
                extra={"error": [failure_text(exc)] * len(ids)},
                latencies=[(latency_ms, len(ids))],
            )
        )

    # ---- the caller, once the answers are final ------------------------------------------
    async def record_answers(
        self,
        version: ModelVersion,
        deployment: str,
        inputs: Mapping[str, Any],
        result: JobResult,
        *,
        deferred: str | None = None,
    ) -> None:
        """Record one request's answers; ``deferred`` (a degree of automation) marks the rows
        a person decides. Durable: returns once they are committed."""
        n = len(result.ids)
        extra: dict[str, list[Any]] = {}
        if deferred is not None and result.reviews:
            extra["deferred"] = [deferred if i in result.reviews else None for i in range(n)]
        rows = LogRows(
            version.name,
            version.version,
            result.ids,
            self.clock(),
            inputs,
            result.predictions,
            proba=result.proba,
            classes=tuple(result.classes) if result.classes is not None else None,
            extra=extra,
            latencies=[(result.latency_ms, n)],
        )
        if self.durable:
            await self._committed(rows)
        else:
            self.writer.submit(rows)
        if self.observer is not None:
            try:
                confidence = [max(row) for row in result.proba] if result.proba else None
                self.observer.observe_outputs(
                    deployment, str(version.version), result.predictions, confidence
                )
            except Exception:  # a metric must never fail a prediction
                logger.exception("recording output metrics failed")

    async def _committed(self, rows: LogRows) -> None:
        loop = asyncio.get_running_loop()
        committed: asyncio.Future[None] = loop.create_future()

        def done(error: BaseException | None) -> None:
            def resolve() -> None:
                if committed.done():
                    return
                if error is None:
                    committed.set_result(None)
                else:
                    committed.set_exception(error)

            loop.call_soon_threadsafe(resolve)

        self.writer.submit(rows, done)
        await committed

    def record_shadow(
        self,
        version: ModelVersion,
        inputs: Mapping[str, Any],
        ids: list[str],
        outcome: JobResult | BaseException,
        latency_ms: float,
    ) -> None:
        """A shadow's answers to copies of requests (``source="shadow"``, the primary's ids),
        or what failed. A stopped writer drops them with a warning: a shadow's copy is not an
        answered prediction."""
        n = len(ids)
        if isinstance(outcome, JobResult):
            rows = LogRows(
                version.name,
                version.version,
                ids,
                self.clock(),
                inputs,
                outcome.predictions,
                proba=outcome.proba,
                classes=tuple(outcome.classes) if outcome.classes is not None else None,
                latencies=[(latency_ms, n)],
                source="shadow",
            )
        else:
            rows = LogRows(
                version.name,
                version.version,
                ids,
                self.clock(),
                inputs,
                [None] * n,
                extra={"error": [type(outcome).__name__] * n},
                latencies=[(latency_ms, n)],
                source="shadow",
            )
        try:
            self.writer.submit(rows)
        except Exception as exc:
            logger.warning(
                "shadow result of %s:%s not logged: %s", version.name, version.version, exc
            )


def _scored_rows(
    version: ModelVersion,
    jobs: Sequence[BatchJob],
    results: Sequence[JobResult],
    mine: Sequence[bool],
    inputs: Mapping[str, Any],
    proba: Any,
    classes: list[str] | None,
    now: float,
) -> LogRows:
    """The rows of a micro-batch's recorded jobs, as the model thread left them."""
    ids = [pid for result, keep in zip(results, mine, strict=True) if keep for pid in result.ids]
    predictions = [
        p for result, keep in zip(results, mine, strict=True) if keep for p in result.predictions
    ]
    latencies = [
        (result.latency_ms, job.count)
        for job, result, keep in zip(jobs, results, mine, strict=True)
        if keep
    ]
    if not all(mine):  # a micro-batch shared by deployments with other degrees of automation
        keep_rows = np.repeat(np.asarray(mine), [job.count for job in jobs])
        inputs = _pick(inputs, keep_rows)
        proba = None if proba is None else np.asarray(proba)[keep_rows]
    return LogRows(
        version.name,
        version.version,
        ids,
        now,
        inputs,
        predictions,
        proba=proba,
        classes=tuple(classes) if classes is not None and proba is not None else None,
        latencies=latencies,
    )


def _pick(inputs: Mapping[str, Any], keep: np.ndarray) -> Mapping[str, Any]:
    if isinstance(inputs, MatrixColumns):
        return MatrixColumns(inputs.matrix[keep], inputs.names)
    where = np.flatnonzero(keep)
    return {name: [values[i] for i in where] for name, values in inputs.items()}
