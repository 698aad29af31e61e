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

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, insert, select, update

from modelpilot.data import file_format, iter_batches
from modelpilot.errors import DataError
from modelpilot.inference._batch_chunk import ChunkScorer, Tally
from modelpilot.inference._batch_rows import TableWriter
from modelpilot.inference._pipeline import Pipeline
from modelpilot.registry import ModelVersion
from modelpilot.runtime import ModelRuntime
from modelpilot.store import PiiScrubber, PredictionLog, PredictionStore, new_ids
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
class ScoringResult(Tally):
    """What a run did: its id (``batch_id``, as logged), where its outputs are, its counts."""

    batch_id: str = ""
    output: Path | str = ""
    rejects: Path | str | None = None
    seconds: float = 0.0

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


def score_file(
    version: ModelVersion,
    runtime: ModelRuntime,
    input_path: Path,
    output_path: Path,
    *,
    log: PredictionStore | None,
    runs: Engine | None = None,
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

    ``runs`` is the metadata database where the run is recorded (``scoring_runs``); by
    default the SQL log's own, and none for a log elsewhere (Delta) unless it is given.

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
    batch_id = f"batch-{new_ids(1, clock=clock)[0][:20]}"
    result = ScoringResult(batch_id=batch_id, output=output_path, rejects=rejects)
    started = time.perf_counter()
    writer, reject_writer = TableWriter(output_path), TableWriter(rejects)
    engine = runs if runs is not None else log.engine if isinstance(log, PredictionLog) else None
    if engine is not None:
        start_run(engine, result, version, input_path=str(input_path), now=clock())
    scorer = ChunkScorer(
        version,
        runtime,
        batch_id,
        pipeline=pipeline,
        scrubber=scrubber,
        log=log is not None,
        clock=clock,
    )

    def ids(rows: np.ndarray) -> list[str]:
        return new_ids(len(rows), clock=clock)

    # CSV numbers are converted by Arrow, chunk by chunk; a chunk with a cell that is not a
    # number keeps that column as text for the validator, so one bad cell rejects its row
    # instead of failing the read, and only its chunk pays for checking cells in Python.
    input_columns: list[str] = []
    try:
        offset = 0
        chunks = iter_batches(input_path, batch_rows=batch_rows, types=scorer.types, lenient=True)
        for chunk in chunks:
            scored = scorer.score(chunk, offset=offset, ids=ids)
            input_columns = scored.columns
            scored.write(writer, reject_writer)
            if log is not None and scored.batches:
                log.append(scored.batches)  # one transaction: a chunk's scored and failed rows
            result.add(scored)
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
            finish_run(engine, result, "failed", clock())
        raise
    result.seconds = time.perf_counter() - started
    if engine is not None:
        finish_run(engine, result, "done", clock())
    return result


def start_run(
    engine: Engine, result: ScoringResult, version: ModelVersion, *, input_path: str, now: float
) -> None:
    """Record a run that starts in ``scoring_runs``."""
    with engine.begin() as connection:
        connection.execute(
            insert(scoring_runs).values(
                batch_id=result.batch_id,
                model=version.name,
                version=version.version,
                input_path=input_path,
                output_path=str(result.output),
                rejects_path=str(result.rejects),
                started_at=now,
                status="running",
            )
        )


def finish_run(engine: Engine, result: ScoringResult, status: str, now: float) -> None:
    """Record how a run ended in ``scoring_runs``, with its counts."""
    with engine.begin() as connection:
        connection.execute(
            update(scoring_runs)
            .where(scoring_runs.c.batch_id == result.batch_id)
            .values(
                status=status,
                finished_at=now,
                n_rows=result.n_rows,
                n_scored=result.n_scored,
                n_rejected=result.n_rejected,
            )
        )
