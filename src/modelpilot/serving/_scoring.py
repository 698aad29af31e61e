"""Scoring a micro-batch in the model thread: inputs in; answers, log rows and metrics out.

Everything that can be done once per micro-batch instead of once per request is done here:
one 2-D array for the model (no DataFrame when the model takes arrays), one model call, one
block of prediction ids, one columnar batch for the prediction log, one update of the output
metrics. At 64 connections a micro-batch holds ~30 requests, so this is what lets one Python
process answer several times more requests per second than a server that does the same work
per request (``benchmarks/serving.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.data import SchemaValidator
from modelpilot.registry import ModelVersion
from modelpilot.runtime import ModelRuntime
from modelpilot.serving._batching import Answers
from modelpilot.serving._logwriter import (
    LazyBatch,
    LogEntry,
    LogWriter,
    MatrixColumns,
    RawPart,
)
from modelpilot.serving._outputs import ModelOutput, output_columns, run_model
from modelpilot.serving._pipeline import Pipeline, StepFailed
from modelpilot.store import PredictionBatch, new_ids

__all__ = [
    "BatchFailed",
    "BatchJob",
    "JobResult",
    "ScoringSink",
    "batch_scorer",
    "failure_entries",
    "prediction_entries",
]

logger = logging.getLogger("modelpilot.serving")


@dataclass(slots=True)
class BatchJob:
    """One request's validated instances, waiting in the micro-batcher.

    ``rows`` (all-numeric rows in feature order, the fast path) or ``columns`` (validated
    columns of any types) holds them. With ``log`` the model thread logs the request's
    predictions (or its failure) itself; without, the caller does (it changes the answer
    first: deferrals to people, or a shadow's copy).
    """

    count: int
    rows: list[list[float | int]] | None = None
    columns: dict[str, list[Any]] | None = None
    deployment: str = ""
    log: bool = False
    submitted: float = field(default_factory=time.perf_counter)

    def records(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """The instances as records (for the log, and for a shadow's copy)."""
        if self.rows is not None:
            # Floats, as validate_records gives them (a JSON 3 is the number 3.0).
            return [dict(zip(names, map(float, row), strict=True)) for row in self.rows]
        columns = self.columns or {}
        return [{name: columns[name][i] for name in names} for i in range(self.count)]


@dataclass
class JobResult:
    predictions: list[Any]
    proba: list[list[float]] | None
    classes: list[str] | None
    # Set by the automation step: per-instance confidence, and for deferred instances
    # index -> (review id, status, whether the requester sees the model's suggestion).
    confidence: list[float] | None = None
    reviews: dict[int, tuple[str, str, bool]] | None = None
    ids: list[str] = field(default_factory=list)
    latency_ms: float = 0.0
    logged: bool = False  # the model thread logged it (and recorded its output metrics)


class BatchFailed(Exception):
    """The model (or a pipeline step) raised on one request's instances."""

    def __init__(self, ids: list[str], cause: BaseException, *, logged: bool) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.ids = ids
        self.cause = cause
        self.logged = logged
        self.latency_ms = 0.0


@dataclass
class ScoringSink:
    """Where the model thread sends what it scored: the prediction log and the metrics."""

    writer: LogWriter
    clock: Callable[[], float] = time.time
    durable: bool = False
    metrics: Any = None  # ServingMetrics


def batch_scorer(
    version: ModelVersion,
    runtime: ModelRuntime,
    validator: SchemaValidator,
    *,
    pipeline: Pipeline | None = None,
    sink: ScoringSink | None = None,
) -> Callable[[list[BatchJob]], Sequence[JobResult | BaseException]]:
    """The micro-batcher's function for one loaded version (it runs in a model thread)."""
    names = validator.names
    task = version.task
    array_ok = pipeline is None and bool(getattr(runtime, "accepts_array", False))

    def model_input(jobs: list[BatchJob]) -> tuple[Any, Mapping[str, Any]]:
        """What the model gets, and the input columns to log."""
        if all(job.rows is not None for job in jobs):
            matrix = np.array([row for job in jobs for row in job.rows or ()], dtype=np.float64)
            matrix = matrix.reshape(-1, len(names))
            logged = MatrixColumns(matrix, names)
            if array_ok:
                return matrix, logged
            return pd.DataFrame(matrix, columns=list(names), copy=False), logged
        columns: dict[str, list[Any]] = {name: [] for name in names}
        for job in jobs:
            if job.rows is not None:
                for j, name in enumerate(names):
                    columns[name].extend(float(row[j]) for row in job.rows)
            else:
                for name in names:
                    columns[name].extend((job.columns or {})[name])
        frame = validator.to_frame(columns)
        if array_ok and validator.all_numeric:
            return frame.to_numpy(dtype=np.float64), columns
        return frame, columns

    def call(data: Any, n: int) -> ModelOutput:
        if pipeline is None:
            output = run_model(runtime, data, task=task)
        else:
            frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data, columns=names)
            output = pipeline.run(frame, runtime, version.features, task=task)
        if len(output.predictions) != n:
            raise RuntimeError(f"the model returned {len(output.predictions)} rows for {n}")
        return output

    def fail(job: BatchJob, exc: BaseException) -> BatchFailed:
        clock = sink.clock if sink is not None else time.time
        ids = new_ids(job.count, clock=clock)
        latency_ms = (time.perf_counter() - job.submitted) * 1000
        failure = BatchFailed(ids, exc, logged=job.log and sink is not None)
        failure.latency_ms = latency_ms
        if failure.logged and sink is not None:
            # Failed predictions are logged too (prediction null, the error's type), so error
            # rates per version come from the log, and the ids in the 500 can be looked up.
            sink.writer.submit(
                failure_entries(version, job.records(names), ids, exc, latency_ms, clock())
            )
        return failure

    def score(jobs: list[BatchJob]) -> Sequence[JobResult | BaseException]:
        n = sum(job.count for job in jobs)
        try:
            data, logged_inputs = model_input(jobs)
            output = call(data, n)
        except Exception as exc:
            if len(jobs) > 1:  # find the poisonous request: each one alone
                return _each_alone(score, jobs)
            return [fail(jobs[0], exc)]
        done = time.perf_counter()
        now = sink.clock() if sink is not None else time.time()
        ids = new_ids(n, clock=lambda: now)
        predictions = output.predictions.tolist()
        proba = output.proba.tolist() if output.proba is not None else None
        classes = [str(c) for c in output.classes] if output.classes is not None else None
        results: Answers[JobResult | BaseException] = Answers()
        start = 0
        for job in jobs:
            end = start + job.count
            results.append(
                JobResult(
                    predictions[start:end],
                    proba[start:end] if proba is not None else None,
                    classes,
                    ids=ids[start:end],
                    latency_ms=(done - job.submitted) * 1000,
                )
            )
            start = end
        if sink is None or not any(job.log for job in jobs):
            return results
        if sink.durable:
            try:
                batch = _log_batch(version, jobs, results, output, classes, logged_inputs, ids, now)
                _commit(sink, batch)  # answered means logged: commit first
            except Exception as exc:  # not logged, so not answered: those requests fail
                logger.error("logging %d predictions failed: %s", n, exc)
                failed: Answers[JobResult | BaseException] = Answers(
                    exc if job.log else r for job, r in zip(jobs, results, strict=True)
                )
                return failed
            _mark_logged(jobs, results)
            _observe(sink.metrics, version, jobs, results)
            return results
        # Not durable: the answers go out first; their rows follow on the event loop.
        _mark_logged(jobs, results)

        def build() -> PredictionBatch:
            return _log_batch(version, jobs, results, output, classes, logged_inputs, ids, now)

        def rows() -> list[LogEntry]:
            return _row_entries(version, names, jobs, results, now)

        raw = None
        if isinstance(logged_inputs, MatrixColumns) and all(job.log for job in jobs):
            raw = RawPart(
                (version.name, version.version, names, tuple(classes) if classes else None),
                logged_inputs.matrix,
                predictions,
                output.proba if classes is not None else None,
                ids,
                now,
                [(r.latency_ms, job.count) for job, r in zip(jobs, results, strict=True)],  # type: ignore[union-attr]
            )

        def after() -> None:
            logged = sum(job.count for job in jobs if job.log)
            # The writer thread builds the rows when it commits: the event loop only queues.
            _hand_over(sink, version, jobs, results, output, LazyBatch(logged, build, rows, raw))

        results.after = after
        return results

    return score


def _each_alone(
    score: Callable[[list[BatchJob]], Sequence[JobResult | BaseException]], jobs: list[BatchJob]
) -> Answers[JobResult | BaseException]:
    """Score each job on its own, keeping every part's after-work."""
    combined: Answers[JobResult | BaseException] = Answers()
    afters: list[Callable[[], None]] = []
    for job in jobs:
        part = score([job])
        combined.extend(part)
        after = getattr(part, "after", None)
        if after is not None:
            part.after = None  # type: ignore[attr-defined]  # no cycle: see MicroBatcher._finish
            afters.append(after)
    if afters:

        def after_all() -> None:
            for after in afters:
                after()

        combined.after = after_all
    return combined


def _log_batch(
    version: ModelVersion,
    jobs: list[BatchJob],
    results: list[JobResult | BaseException],
    output: ModelOutput,
    classes: list[str] | None,
    inputs: Mapping[str, Any],
    ids: list[str],
    now: float,
) -> PredictionBatch:
    """The log rows of the jobs that are logged here, as one columnar batch."""
    predictions: list[Any] = []
    for result in results:
        if isinstance(result, JobResult):
            predictions.extend(result.predictions)
    outputs = output_columns(predictions, output.proba, classes)
    if len(jobs) == 1:
        latencies: Any = [results[0].latency_ms] * jobs[0].count  # type: ignore[union-attr]
    else:
        latencies = np.repeat(
            [r.latency_ms for r in results],  # type: ignore[union-attr]
            [job.count for job in jobs],
        )
    batch = PredictionBatch(
        model=version.name,
        version=version.version,
        ids=ids,
        ts=np.full(len(ids), now),
        inputs=inputs,
        outputs=outputs,
        latency_ms=latencies,
    )
    if not all(job.log for job in jobs):
        batch = _only_logged(batch, jobs)
    return batch


def _commit(sink: ScoringSink, batch: PredictionBatch) -> None:
    """Hand a batch to the writer and wait for its commit (durable mode)."""
    # Requests that arrive meanwhile gather into the next micro-batch: a natural group commit.
    committed = threading.Event()
    errors: list[BaseException | None] = []

    def on_commit(error: BaseException | None) -> None:
        errors.append(error)
        committed.set()

    sink.writer.submit_batch(batch, on_commit)
    committed.wait()
    if errors and errors[0] is not None:
        raise errors[0]


def _hand_over(
    sink: ScoringSink,
    version: ModelVersion,
    jobs: list[BatchJob],
    results: list[JobResult | BaseException],
    output: ModelOutput,
    batch: PredictionBatch | LazyBatch,
) -> None:
    """Queue the rows of answered predictions for the writer (on the event loop)."""
    try:
        sink.writer.submit_batch(batch)
    except Exception as exc:  # the writer stopped: keep the rows, never drop them
        logger.error("the log writer refused %d answered predictions: %s", len(batch), exc)
        sink.writer.dead_letter_batch(batch, exc)
    _observe(sink.metrics, version, jobs, results)


def _row_entries(
    version: ModelVersion,
    names: Sequence[str],
    jobs: list[BatchJob],
    results: list[JobResult | BaseException],
    now: float,
) -> list[LogEntry]:
    entries: list[LogEntry] = []
    for job, result in zip(jobs, results, strict=True):
        if job.log and isinstance(result, JobResult):
            entries += prediction_entries(version, job.records(names), result, now)
    return entries


def prediction_entries(
    version: ModelVersion,
    records: list[dict[str, Any]],
    result: JobResult,
    now: float,
    *,
    deferred: str | None = None,
) -> list[LogEntry]:
    """Log entries of one request's answered predictions, row by row.

    ``deferred`` (a degree of automation) marks the rows a person decides.
    """
    entries = []
    for index, pid in enumerate(result.ids):
        outputs: dict[str, Any] = {"prediction": result.predictions[index]}
        if deferred is not None and result.reviews is not None and index in result.reviews:
            outputs["deferred"] = deferred
        if result.proba is not None and result.classes is not None:
            outputs["probabilities"] = dict(zip(result.classes, result.proba[index], strict=True))
            outputs["confidence"] = max(result.proba[index])
        entries.append(
            LogEntry(
                pid,
                now,
                version.name,
                version.version,
                records[index],
                outputs,
                result.latency_ms,
            )
        )
    return entries


def _mark_logged(jobs: list[BatchJob], results: list[JobResult | BaseException]) -> None:
    """Mark the results the model thread logs (only the jobs that asked for it)."""
    for job, result in zip(jobs, results, strict=True):
        if job.log and isinstance(result, JobResult):
            result.logged = True


def _observe(
    metrics: Any,
    version: ModelVersion,
    jobs: list[BatchJob],
    results: list[JobResult | BaseException],
) -> None:
    if metrics is None:
        return
    try:
        label = str(version.version)
        by_deployment: dict[str, tuple[list[Any], list[float] | None]] = {}
        for job, result in zip(jobs, results, strict=True):
            if job.log and isinstance(result, JobResult):
                predictions, confidence = by_deployment.setdefault(
                    job.deployment, ([], [] if result.proba is not None else None)
                )
                predictions.extend(result.predictions)
                if confidence is not None and result.proba is not None:
                    # Python's max on the answer's rows: for the few rows of a small batch,
                    # cheaper than a NumPy reduction.
                    confidence.extend(max(row) for row in result.proba)
        for deployment, (predictions, confidence) in by_deployment.items():
            metrics.observe_outputs(deployment, label, predictions, confidence)
    except Exception:  # a metric must never fail a prediction
        logger.exception("recording output metrics failed")


def failure_entries(
    version: ModelVersion,
    records: list[dict[str, Any]],
    ids: list[str],
    exc: BaseException,
    latency_ms: float,
    now: float,
) -> list[LogEntry]:
    """Log entries of a failed request: prediction null, and what failed."""
    failed = {
        "prediction": None,
        "error": f"{type(exc.cause).__name__} in step {exc.step}"
        if isinstance(exc, StepFailed)
        else type(exc).__name__,
    }
    return [
        LogEntry(pid, now, version.name, version.version, record, failed, latency_ms)
        for pid, record in zip(ids, records, strict=True)
    ]


def _only_logged(batch: PredictionBatch, jobs: list[BatchJob]) -> PredictionBatch:
    """The rows of the jobs that are logged here (a batch may mix them with others')."""
    keep = np.flatnonzero(np.repeat([job.log for job in jobs], [job.count for job in jobs]))

    def pick(values: Any) -> Any:
        if isinstance(values, np.ndarray):
            return values[keep]
        return [values[i] for i in keep]

    inputs: Mapping[str, Any] = batch.inputs  # type: ignore[assignment]
    outputs: Mapping[str, Any] = batch.outputs  # type: ignore[assignment]
    if isinstance(inputs, MatrixColumns):
        picked_inputs: Mapping[str, Any] = MatrixColumns(inputs.matrix[keep], inputs.names)
    else:
        picked_inputs = {name: pick(values) for name, values in inputs.items()}
    return PredictionBatch(
        model=batch.model,
        version=batch.version,
        ids=pick(list(batch.ids)),
        ts=pick(np.asarray(batch.ts)),
        inputs=picked_inputs,
        outputs={name: pick(values) for name, values in outputs.items()},
        latency_ms=pick(np.asarray(batch.latency_ms)),
    )
