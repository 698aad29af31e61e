"""Scoring a micro-batch in the model thread: inputs in; answers, log rows and metrics out.

Everything that can be done once per micro-batch instead of once per request is done here:
one 2-D array for the model (no DataFrame when the model takes arrays), one model call, one
block of prediction ids, one hand-over to the prediction log, one update of the output
metrics. At 64 connections a micro-batch holds ~30 requests, so this is what lets one Python
process answer several times more requests per second than a server that does the same work
per request (``benchmarks/serving.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.data import SchemaValidator
from modelpilot.inference._batching import Answers
from modelpilot.inference._jobs import BatchFailed, BatchJob, JobResult, LogPolicy
from modelpilot.inference._outputs import ModelOutput, run_model
from modelpilot.inference._pipeline import Pipeline
from modelpilot.inference._recorder import PredictionRecorder
from modelpilot.registry import ModelVersion
from modelpilot.runtime import ModelRuntime
from modelpilot.store import MatrixColumns, new_ids

__all__ = ["batch_scorer"]

logger = logging.getLogger("modelpilot.inference")

BatchFunction = Callable[[list[BatchJob]], Sequence[JobResult | BaseException]]


def batch_scorer(
    version: ModelVersion,
    runtime: ModelRuntime,
    validator: SchemaValidator,
    *,
    pipeline: Pipeline | None = None,
    recorder: PredictionRecorder | None = None,
) -> BatchFunction:
    """The micro-batcher's function for one loaded version (it runs in a model thread).

    Jobs whose policy is :attr:`LogPolicy.SCORER` are recorded by ``recorder`` here, with the
    rest of their micro-batch; the others are their caller's to record.
    """
    names = validator.names
    task = version.task
    array_ok = pipeline is None and bool(getattr(runtime, "accepts_array", False))
    clock = recorder.clock if recorder is not None else time.time

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
        ids = new_ids(job.count, clock=clock)
        latency_ms = (time.perf_counter() - job.submitted) * 1000
        if recorder is not None and job.policy is LogPolicy.SCORER:
            recorder.record_failure(version, names, job, ids, exc, latency_ms)
        return BatchFailed(ids, exc, latency_ms=latency_ms)

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
        now = clock()
        ids = new_ids(n, clock=lambda: now)
        predictions = output.predictions.tolist()
        proba = output.proba.tolist() if output.proba is not None else None
        classes = [str(c) for c in output.classes] if output.classes is not None else None
        results: Answers[JobResult | BaseException] = Answers()
        answered: list[JobResult] = []
        start = 0
        for job in jobs:
            end = start + job.count
            result = JobResult(
                predictions[start:end],
                proba[start:end] if proba is not None else None,
                classes,
                ids=ids[start:end],
                latency_ms=(done - job.submitted) * 1000,
            )
            answered.append(result)
            results.append(result)
            start = end
        if recorder is None:
            return results
        try:
            results.after = recorder.record_scored(
                version,
                jobs,
                answered,
                inputs=logged_inputs,
                proba=output.proba if classes is not None else None,
                classes=classes,
                now=now,
            )
        except Exception as exc:  # durable, and not logged: so not answered, those fail
            logger.error("logging %d predictions failed: %s", n, exc)
            failed: Answers[JobResult | BaseException] = Answers(
                exc if job.policy is LogPolicy.SCORER else r
                for job, r in zip(jobs, answered, strict=True)
            )
            return failed
        return results

    return score


def _each_alone(score: BatchFunction, jobs: list[BatchJob]) -> Answers[JobResult | BaseException]:
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
