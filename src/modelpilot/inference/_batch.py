"""Batch scoring: a file in, a scored file and a rejects file out, every prediction logged.

Chunked end to end (bounded memory): read a chunk, validate it with the same
:class:`~modelpilot.data.SchemaValidator` online serving uses, predict the valid rows in one
vectorised call, append them to the output and the prediction log, write the invalid rows with
their reasons to the rejects file. Outputs are written under temporary names and renamed at the
end, so an interrupted run leaves no half-written file behind.

A deployment with ``steps`` is scored through the same :class:`~modelpilot.inference.Pipeline`
the server runs: rows are validated against the pipeline's schema (the project's features) and
the model gets its registered features from the steps' output.

One bad row does not stop a run. When the model (or a step before it) raises on a chunk, the
chunk is halved until the rows it raises on are found (a few bad rows among n cost about
2 log2(n) extra calls each); those rows go to the rejects file with the step's name or
``model`` and the error as the reason (``step clean: ValueError: ...``,
``model: ValueError: ...``), and the rest of the chunk is scored. A chunk on which every row
fails is rejected whole, and the run goes on. Such rows are predictions that failed, as on the
server: each gets a prediction id (the rejects file's ``prediction_id`` column) and is logged
with a null prediction and the error's type, so the error rates read from the log count batch
failures too. Rows the schema rejects never reach the model: they have no id and are not logged
(the server does not log its 422s either). Anything else that fails (reading the input, writing
a file, the prediction log's database) is not about the rows: it stops the run, which is
marked failed in ``scoring_runs``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, insert, select, update

from modelpilot.data import SchemaValidator, file_format, iter_batches
from modelpilot.errors import DataError
from modelpilot.inference._outputs import ModelOutput, run_model
from modelpilot.inference._pipeline import MODEL_STEP, Pipeline, StepFailed
from modelpilot.inference._recorder import failure_text
from modelpilot.registry import ModelVersion
from modelpilot.runtime import ModelRuntime
from modelpilot.store import (
    LogRows,
    PiiScrubber,
    PredictionBatch,
    PredictionLog,
    join_rows,
    new_ids,
)
from modelpilot.store._tables import scoring_runs
from modelpilot.types import Clock

__all__ = ["ScoringResult", "recent_run_rows", "score_file"]


def recent_run_rows(engine: Engine, model: str, *, limit: int) -> list[int]:
    """Row counts of the last ``limit`` successful scoring runs of ``model``, newest first:
    the "usual" volume an input file is compared with before it is scored.

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> recent_run_rows(create_database("sqlite://"), "houses", limit=10)
    []
    """
    query = (
        select(scoring_runs.c.n_rows)
        .where(scoring_runs.c.model == model, scoring_runs.c.status == "done")
        .order_by(scoring_runs.c.finished_at.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        return [int(n) for n in connection.execute(query).scalars()]


@dataclass
class ScoringResult:
    batch_id: str
    output: Path
    rejects: Path | None
    n_rows: int = 0
    n_scored: int = 0
    n_rejected: int = 0
    n_failed: int = 0  # of the rejected: a step or the model raised on them (logged, with ids)
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    unseen: dict[str, int] = field(default_factory=dict)  # scored values outside categories

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_id": self.batch_id,
            "output": str(self.output),
            "rejects": str(self.rejects) if self.rejects else None,
            "rows": self.n_rows,
            "scored": self.n_scored,
            "rejected": self.n_rejected,
            "failed": self.n_failed,
            "seconds": round(self.seconds, 3),
            "rejection_reasons": self.reasons,
            "unseen_categories": self.unseen,
        }


class _TableWriter:
    """Appends DataFrames to a CSV or Parquet file written under a temporary name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.format = file_format(path)
        self.tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        self._parquet: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None
        self._csv_started = False
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if self.format == "parquet":
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._schema = table.schema
                self._parquet = pq.ParquetWriter(self.tmp, table.schema)
            elif self._schema is not None and table.schema != self._schema:
                table = table.cast(self._schema)
            self._parquet.write_table(table)
        else:
            frame.to_csv(
                self.tmp,
                mode="a" if self._csv_started else "w",
                header=not self._csv_started,
                index=False,
            )
            self._csv_started = True
        self.rows += len(frame)

    def commit(self, empty_columns: list[str]) -> None:
        if self.format == "parquet":
            if self._parquet is None:
                pq.write_table(
                    pa.table({c: pa.array([], pa.string()) for c in empty_columns}), self.tmp
                )
            else:
                self._parquet.close()
        elif not self._csv_started:
            pd.DataFrame(columns=empty_columns).to_csv(self.tmp, index=False)
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
        self.tmp.unlink(missing_ok=True)


def _validation_reasons(problems: list[dict[str, Any]]) -> dict[int, list[str]]:
    reasons: dict[int, list[str]] = {}
    for problem in problems:
        reasons.setdefault(problem["row"], []).append(
            f"{problem['field']}: expected {problem['expected']}, got {problem['got']!r}"
        )
    return reasons


def _rejects_frame(
    chunk: pd.DataFrame, reasons: dict[int, list[str]], offset: int, ids: dict[int, str]
) -> pd.DataFrame:
    rows = sorted(reasons)
    frame = chunk.iloc[[r - offset for r in rows]].copy().astype(object)
    frame.insert(0, "_row", rows)
    frame["_reason"] = ["; ".join(reasons[r]) for r in rows]
    # A string column even in a chunk of validation rejects only (no ids): the chunks of a
    # Parquet rejects file must share one schema.
    frame["prediction_id"] = pd.array([ids.get(r) for r in rows], dtype="string")
    return frame


def _detached(error: Exception) -> Exception:
    """``error`` without the frames it was raised in (they hold the rows' intermediate frames:
    a chunk that fails on every row would keep them all alive)."""
    if isinstance(error, StepFailed):
        error.cause.with_traceback(None)
    return error.with_traceback(None)


def _failing_rows(
    run: Callable[[pd.DataFrame], ModelOutput], frame: pd.DataFrame
) -> tuple[dict[int, Exception], list[ModelOutput]]:
    """The rows of ``frame`` (positions) on which ``run`` raises, each with its error, and the
    outputs of the slices it scored, in row order (the other rows, so nothing is predicted twice).

    Halves a failing slice until single rows are left (a row scored alone is a request to
    the server), so k bad rows among n cost about 2k log2(n) calls, not n; a frame on which
    every row fails costs about 2n.
    """
    failures: dict[int, Exception] = {}
    outputs: list[ModelOutput] = []

    def search(start: int, stop: int) -> None:
        try:
            outputs.append(run(frame.iloc[start:stop].reset_index(drop=True)))
            return
        except Exception as exc:  # see _predict_rows: only the model call is in here
            error = _detached(exc)
        # Halved outside the except block, so no error chains to the one of its parent slice.
        if stop - start == 1:
            failures[start] = error
            return
        middle = (start + stop) // 2
        search(start, middle)
        search(middle, stop)

    middle = len(frame) // 2  # the whole frame has failed already
    if len(frame) == 1:
        search(0, 1)
    else:
        search(0, middle)
        search(middle, len(frame))
    return failures, outputs


def _joined(outputs: list[ModelOutput]) -> ModelOutput | None:
    """The outputs of consecutive slices as one."""
    if len(outputs) <= 1:
        return outputs[0] if outputs else None
    probas = [o.proba for o in outputs if o.proba is not None]
    proba = np.vstack(probas) if len(probas) == len(outputs) else None
    predictions = np.concatenate([o.predictions for o in outputs])
    return ModelOutput(predictions, proba, outputs[0].classes if proba is not None else None)


def _predict_rows(
    run: Callable[[pd.DataFrame], ModelOutput], frame: pd.DataFrame
) -> tuple[ModelOutput | None, dict[int, Exception]]:
    """The output for the rows of ``frame`` that ``run`` scores, and the rows it raises on.

    Any ``Exception`` out of ``run`` counts against the rows it was given: ``run`` is the
    model call (or the pipeline: steps, then the model) and nothing else, so what it raises is
    the model's answer to those rows. Errors that are not about the rows (reading the input,
    writing a file, the prediction log) happen outside it and stop the run. An error that is
    not about the rows but does come out of the model (a model that fails on every call) rejects
    every row, which the rejects file's reasons and the run's counts make plain.
    """
    try:
        return run(frame), {}
    except Exception:
        pass  # bisected outside the except block (see _failing_rows)
    failures, outputs = _failing_rows(run, frame)
    return _joined(outputs), failures


def _failure_reason(error: Exception) -> tuple[str, str]:
    """The key counted in ``ScoringResult.reasons``, and the rejected row's reason.

    Examples
    --------
    >>> _failure_reason(StepFailed("houses", "clean", KeyError("condition")))
    ('step clean', "step clean: KeyError: 'condition'")
    >>> _failure_reason(StepFailed("houses", "model", ValueError("a NaN")))
    ('model', 'model: ValueError: a NaN')
    >>> _failure_reason(ValueError("a NaN"))  # a model without steps
    ('model', 'model: ValueError: a NaN')
    """
    where = "model"
    cause: BaseException = error
    if isinstance(error, StepFailed):
        cause = error.cause
        if error.step != MODEL_STEP:
            where = f"step {error.step}"
    return where, f"{where}: {type(cause).__name__}: {cause}"


def _failure_batch(
    version: ModelVersion,
    inputs: pd.DataFrame,
    ids: list[str],
    errors: list[Exception],
    *,
    batch_id: str,
    latency_ms: float,
    now: float,
) -> PredictionBatch:
    """Failed predictions as the server logs them (prediction null, what failed)."""
    rows = LogRows(
        version.name,
        version.version,
        ids,
        now,
        {str(name): inputs[name].to_numpy() for name in inputs.columns},
        [None] * len(ids),
        extra={"error": [failure_text(error) for error in errors]},
        latencies=[(latency_ms, len(ids))],
        source="batch",
        batch_id=batch_id,
    )
    return join_rows([rows])


def score_file(
    version: ModelVersion,
    runtime: ModelRuntime,
    input_path: Path,
    output_path: Path,
    *,
    log: PredictionLog | None,
    scrubber: PiiScrubber | None = None,
    rejects_path: Path | None = None,
    batch_rows: int = 50_000,
    pipeline: Pipeline | None = None,
    progress: Callable[[int], None] | None = None,
    check: Callable[[ScoringResult], None] | None = None,
    clock: Clock = time.time,
) -> ScoringResult:
    """Score ``input_path`` into ``output_path``; rows that cannot be scored go to
    ``rejects_path`` with their reasons.

    ``pipeline`` is the deployment's steps (:meth:`PipelineBuilder.build`): rows then follow
    its schema and go through its steps before the model, exactly as on the server. A row on
    which a step or the model raises is rejected with the step's name (or ``model``) and the
    error, and logged as a failed prediction; the run goes on (see the module's docstring).

    ``progress`` gets the rows of each chunk read; ``check`` the counts so far after each
    chunk: an error it raises stops the run (marked failed, no output file left behind).
    """
    file_format(output_path)  # refuse an unknown output type before doing any work
    if output_path.resolve() == input_path.resolve():
        raise DataError(f"{output_path}: the output must not overwrite the input file")
    rejects = rejects_path or output_path.with_name(
        output_path.stem + ".rejects" + output_path.suffix
    )
    output_path.parent.mkdir(parents=True, exist_ok=True)
    validator = SchemaValidator(pipeline.features if pipeline is not None else version.features)

    def predict(frame: pd.DataFrame) -> ModelOutput:
        if pipeline is None:
            return run_model(runtime, frame, task=version.task)
        return pipeline.run(frame, runtime, version.features, task=version.task)

    batch_id = f"batch-{new_ids(1, clock=clock)[0][:20]}"
    result = ScoringResult(batch_id, output_path, rejects)
    started = time.perf_counter()
    writer, reject_writer = _TableWriter(output_path), _TableWriter(rejects)
    engine = log.engine if log is not None else None
    if engine is not None:
        with engine.begin() as connection:
            connection.execute(
                insert(scoring_runs).values(
                    batch_id=batch_id,
                    model=version.name,
                    version=version.version,
                    input_path=str(input_path),
                    output_path=str(output_path),
                    rejects_path=str(rejects),
                    started_at=clock(),
                    status="running",
                )
            )
    # CSV numbers are converted by Arrow, chunk by chunk; a chunk with a cell that is not a
    # number keeps that column as text for the validator, so one bad cell rejects its row
    # instead of failing the read, and only its chunk pays for checking cells in Python.
    types = {f.name: f.type for f in validator.features}
    input_columns: list[str] = []
    try:
        offset = 0
        for chunk in iter_batches(input_path, batch_rows=batch_rows, types=types, lenient=True):
            chunk = chunk.reset_index(drop=True)
            input_columns = list(chunk.columns)
            checked = validator.validate_frame(chunk, row_offset=offset)
            reasons = _validation_reasons(checked.problems)
            for problem in checked.problems:
                result.reasons[problem["field"]] = result.reasons.get(problem["field"], 0) + 1
            for name, count in checked.unseen.items():
                result.unseen[name] = result.unseen.get(name, 0) + count
            positions = np.flatnonzero(checked.valid)  # of the valid rows in the chunk
            clean = checked.clean.reset_index(drop=True)
            tick = time.perf_counter()
            # Only the model call is guarded (_predict_rows): a row the model or a step raises
            # on is rejected; an error while writing or logging below still stops the run.
            output, failures = _predict_rows(predict, clean) if len(clean) else (None, {})
            latency_ms = (time.perf_counter() - tick) * 1000 / max(len(clean), 1)
            now = clock()
            batches: list[PredictionBatch] = []
            failed_ids: dict[int, str] = {}  # row of the file -> prediction id
            if failures:
                failed = sorted(failures)
                ids = new_ids(len(failed), clock=clock)
                for position, pid in zip(failed, ids, strict=True):
                    key, reason = _failure_reason(failures[position])
                    row = offset + int(positions[position])
                    reasons.setdefault(row, []).append(reason)
                    failed_ids[row] = pid
                    result.reasons[key] = result.reasons.get(key, 0) + 1
                if log is not None:
                    inputs = clean.iloc[failed].reset_index(drop=True)
                    batches.append(
                        _failure_batch(
                            version,
                            inputs if scrubber is None else scrubber.frame(inputs),
                            ids,
                            [failures[position] for position in failed],
                            batch_id=batch_id,
                            latency_ms=latency_ms,
                            now=now,
                        )
                    )
                keep = ~np.isin(np.arange(len(clean)), failed)
                positions = positions[keep]
                clean = clean[keep].reset_index(drop=True)
            if reasons:
                reject_writer.write(_rejects_frame(chunk, reasons, offset, failed_ids))
            valid_rows = chunk.iloc[positions].reset_index(drop=True)
            for name in clean.columns:  # typed values, not the CSV's text
                valid_rows[name] = clean[name].to_numpy()
            if output is not None:
                ids = new_ids(len(valid_rows), clock=clock)
                scored = valid_rows.assign(**output.columns())
                scored.insert(0, "prediction_id", ids)
                writer.write(scored)
                if log is not None:
                    inputs = clean if scrubber is None else scrubber.frame(clean)
                    batches.insert(
                        0,
                        PredictionBatch(
                            model=version.name,
                            version=version.version,
                            ids=ids,
                            ts=np.full(len(ids), now),
                            inputs=inputs,
                            outputs=pd.DataFrame(output.columns()),
                            source="batch",
                            batch_id=batch_id,
                            latency_ms=np.full(len(ids), latency_ms),
                        ),
                    )
            if log is not None and batches:
                log.append(batches)  # one transaction: a chunk's scored and failed rows
            result.n_rows += len(chunk)
            result.n_scored += len(valid_rows)
            result.n_rejected += len(reasons)
            result.n_failed += len(failures)
            offset += len(chunk)
            if progress is not None:
                progress(len(chunk))
            if check is not None:
                check(result)
        writer.commit([*input_columns, "prediction"])
        if result.n_rejected:
            reject_writer.commit(["_row", *input_columns, "_reason", "prediction_id"])
        else:
            reject_writer.abort()
            result.rejects = None
    except BaseException:
        writer.abort()
        reject_writer.abort()
        if engine is not None:
            with engine.begin() as connection:
                connection.execute(
                    update(scoring_runs)
                    .where(scoring_runs.c.batch_id == batch_id)
                    .values(
                        status="failed",
                        finished_at=clock(),
                        n_rows=result.n_rows,
                        n_scored=result.n_scored,
                        n_rejected=result.n_rejected,
                    )
                )
        raise
    result.seconds = time.perf_counter() - started
    if engine is not None:
        with engine.begin() as connection:
            connection.execute(
                update(scoring_runs)
                .where(scoring_runs.c.batch_id == batch_id)
                .values(
                    status="done",
                    finished_at=clock(),
                    n_rows=result.n_rows,
                    n_scored=result.n_scored,
                    n_rejected=result.n_rejected,
                )
            )
    return result
