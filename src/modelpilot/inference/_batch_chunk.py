"""One chunk of batch scoring, the same for every engine: validate, run the steps and the model,
find the rows they raise on, and build the scored rows, the rejects and the log's batches.

The single-process engine (``_batch.py``) and the Dask engine (``_dask_part.py``) both call
:meth:`ChunkScorer.score`; they differ only in where the rows come from, where the results go
and how prediction ids are made (random and time-ordered in one process; derived from the run,
the partition and the row on Dask, so a partition scored twice logs the same ids).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from modelpilot.data import SchemaValidator
from modelpilot.inference._batch_rows import (
    failure_batch,
    failure_reason,
    predict_rows,
    rejects_frame,
    validation_reasons,
)
from modelpilot.inference._outputs import ModelOutput, run_model
from modelpilot.inference._pipeline import Pipeline, PipelineBuilder, steps_deployment
from modelpilot.project import Project
from modelpilot.registry import ModelVersion
from modelpilot.runtime import ModelRuntime
from modelpilot.spec import DeploymentSpec
from modelpilot.store import PiiScrubber, PredictionBatch, load_pii_key
from modelpilot.types import Clock

__all__ = ["ChunkScorer", "IdMaker", "ScoredChunk", "Tally", "load_scoring"]

#: Prediction ids for rows of the input (their row numbers in the file).
IdMaker = Callable[[np.ndarray], list[str]]


class FrameSink(Protocol):
    """Where an engine writes rows (a file under a temporary name, a part file)."""

    def write(self, frame: pd.DataFrame) -> None: ...


@dataclass
class Tally:
    """Counts of a chunk, a partition or a run (what ``ScoringResult`` reports)."""

    n_rows: int = 0
    n_scored: int = 0
    n_rejected: int = 0
    n_failed: int = 0  # of the rejected: a step or the model raised on them (logged, with ids)
    reasons: dict[str, int] = field(default_factory=dict)
    unseen: dict[str, int] = field(default_factory=dict)  # scored values outside categories

    def add(self, other: Tally) -> None:
        self.n_rows += other.n_rows
        self.n_scored += other.n_scored
        self.n_rejected += other.n_rejected
        self.n_failed += other.n_failed
        for mine, theirs in ((self.reasons, other.reasons), (self.unseen, other.unseen)):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count


@dataclass
class ScoredChunk(Tally):
    """What one chunk gave: the scored rows (with ``prediction_id``), the rejected rows with
    their reasons, and the batches to log (scored and failed rows: one append)."""

    scored: pd.DataFrame | None = None
    rejects: pd.DataFrame | None = None
    batches: list[PredictionBatch] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # of the input

    def write(self, scored: FrameSink, rejects: FrameSink) -> None:
        """Append the scored rows to ``scored``, the rejected ones to ``rejects``."""
        if self.rejects is not None:
            rejects.write(self.rejects)
        if self.scored is not None:
            scored.write(self.scored)


@dataclass
class ChunkScorer:
    """Scores chunks of rows with ``runtime`` (behind ``pipeline``'s steps, if any).

    ``log`` says whether the chunk's batches are built (a run with ``--no-log`` skips them);
    ``batch_id`` is the run's id, recorded with every logged prediction.
    """

    version: ModelVersion
    runtime: ModelRuntime
    batch_id: str
    pipeline: Pipeline | None = None
    scrubber: PiiScrubber | None = None
    log: bool = True
    clock: Clock = time.time

    def __post_init__(self) -> None:
        features = self.pipeline.features if self.pipeline is not None else self.version.features
        self.validator = SchemaValidator(features)
        self.types = {f.name: f.type for f in self.validator.features}

    @classmethod
    def for_project(
        cls,
        project: Project,
        version: ModelVersion,
        spec: DeploymentSpec | None,
        *,
        batch_id: str,
        trust: bool,
        force: bool,
        log: bool,
    ) -> ChunkScorer:
        """The scorer of ``version`` as ``project`` runs it: through the steps of ``spec`` (or
        of the deployment that runs the model behind steps), pii scrubbed before logging."""
        runtime, pipeline, scrubber = load_scoring(project, version, spec, trust=trust, force=force)
        return cls(version, runtime, batch_id, pipeline=pipeline, scrubber=scrubber, log=log)

    def _predict(self, frame: pd.DataFrame) -> ModelOutput:
        if self.pipeline is None:
            return run_model(self.runtime, frame, task=self.version.task)
        return self.pipeline.run(frame, self.runtime, self.version.features, task=self.version.task)

    def score(self, chunk: pd.DataFrame, *, offset: int, ids: IdMaker) -> ScoredChunk:
        """Score ``chunk``, whose first row is row ``offset`` of the input."""
        version, scrubber = self.version, self.scrubber
        chunk = chunk.reset_index(drop=True)
        result = ScoredChunk(n_rows=len(chunk), columns=list(chunk.columns))
        checked = self.validator.validate_frame(chunk, row_offset=offset)
        reasons = validation_reasons(checked.problems)
        for problem in checked.problems:
            result.reasons[problem["field"]] = result.reasons.get(problem["field"], 0) + 1
        result.unseen = dict(checked.unseen)
        positions = np.flatnonzero(checked.valid)  # of the valid rows in the chunk
        clean = checked.clean.reset_index(drop=True)
        tick = time.perf_counter()
        # Only the model call is guarded (predict_rows): a row the model or a step raises on is
        # rejected; an error while writing or logging (the engine's part) still stops the run.
        output, failures = predict_rows(self._predict, clean) if len(clean) else (None, {})
        latency_ms = (time.perf_counter() - tick) * 1000 / max(len(clean), 1)
        now = self.clock()
        failed_ids: dict[int, str] = {}  # row of the file -> prediction id
        if failures:
            failed = sorted(failures)
            rows = offset + positions[failed]
            failed_id_list = ids(rows)
            for position, row, pid in zip(failed, rows.tolist(), failed_id_list, strict=True):
                key, reason = failure_reason(failures[position])
                reasons.setdefault(row, []).append(reason)
                failed_ids[row] = pid
                result.reasons[key] = result.reasons.get(key, 0) + 1
            if self.log:
                inputs = clean.iloc[failed].reset_index(drop=True)
                result.batches.append(
                    failure_batch(
                        version,
                        inputs if scrubber is None else scrubber.frame(inputs),
                        failed_id_list,
                        [failures[position] for position in failed],
                        batch_id=self.batch_id,
                        latency_ms=latency_ms,
                        now=now,
                    )
                )
            keep = ~np.isin(np.arange(len(clean)), failed)
            positions = positions[keep]
            clean = clean[keep].reset_index(drop=True)
        if reasons:
            result.rejects = rejects_frame(chunk, reasons, offset, failed_ids)
        valid_rows = chunk.iloc[positions].reset_index(drop=True)
        for name in clean.columns:  # typed values, not the CSV's text
            valid_rows[name] = clean[name].to_numpy()
        if output is not None:
            scored_ids = ids(offset + positions)
            scored = valid_rows.assign(**output.columns())
            scored.insert(0, "prediction_id", scored_ids)
            result.scored = scored
            if self.log:
                result.batches.insert(
                    0,
                    PredictionBatch(
                        model=version.name,
                        version=version.version,
                        ids=scored_ids,
                        ts=np.full(len(scored_ids), now),
                        inputs=clean if scrubber is None else scrubber.frame(clean),
                        outputs=pd.DataFrame(output.columns()),
                        source="batch",
                        batch_id=self.batch_id,
                        latency_ms=np.full(len(scored_ids), latency_ms),
                    ),
                )
        result.n_scored = len(valid_rows)
        result.n_rejected = len(reasons)
        result.n_failed = len(failures)
        return result


def load_scoring(
    project: Project,
    version: ModelVersion,
    spec: DeploymentSpec | None,
    *,
    trust: bool,
    force: bool,
) -> tuple[ModelRuntime, Pipeline | None, PiiScrubber | None]:
    """``version``'s runtime, the steps it runs behind (``spec``'s, or those of the deployment
    that runs the model behind steps) and the pii scrubber of the log (None when inactive):
    what a batch scorer needs, loaded as the server loads it."""
    runtime = project.registry.load(version, trust=trust, force=force)
    spec = (
        spec if spec is not None else steps_deployment(project.spec.deployment_specs, version.name)
    )
    pipeline = (
        PipelineBuilder.for_project(project, trust=trust, force=force).build(spec, version)
        if spec is not None and spec.steps
        else None
    )
    scrubber = PiiScrubber(
        pipeline.features if pipeline is not None else version.features,
        mode=project.spec.logging.pii,
        key=load_pii_key(project.directory, project.environ),
    )
    return runtime, pipeline, scrubber if scrubber.active else None
