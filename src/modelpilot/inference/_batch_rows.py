"""The parts of batch scoring that handle rows: the output files written under temporary
names, the rejects and their reasons, and the bisection that finds the rows a model (or a
step) raises on (``_batch.py`` runs them chunk by chunk)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from modelpilot.data import file_format
from modelpilot.inference._outputs import ModelOutput
from modelpilot.inference._pipeline import MODEL_STEP, StepFailed
from modelpilot.inference._recorder import failure_text
from modelpilot.registry import ModelVersion
from modelpilot.store import LogRows, PredictionBatch, join_rows

__all__ = [
    "TableWriter",
    "failure_batch",
    "failure_reason",
    "predict_rows",
    "rejects_frame",
    "validation_reasons",
]


class TableWriter:
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


def validation_reasons(problems: list[dict[str, Any]]) -> dict[int, list[str]]:
    reasons: dict[int, list[str]] = {}
    for problem in problems:
        reasons.setdefault(problem["row"], []).append(
            f"{problem['field']}: expected {problem['expected']}, got {problem['got']!r}"
        )
    return reasons


def rejects_frame(
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
        except Exception as exc:  # see predict_rows: only the model call is in here
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


def predict_rows(
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


def failure_reason(error: Exception) -> tuple[str, str]:
    """The key counted in ``ScoringResult.reasons``, and the rejected row's reason.

    Examples
    --------
    >>> failure_reason(StepFailed("houses", "clean", KeyError("condition")))
    ('step clean', "step clean: KeyError: 'condition'")
    >>> failure_reason(StepFailed("houses", "model", ValueError("a NaN")))
    ('model', 'model: ValueError: a NaN')
    >>> failure_reason(ValueError("a NaN"))  # a model without steps
    ('model', 'model: ValueError: a NaN')
    """
    where = "model"
    cause: BaseException = error
    if isinstance(error, StepFailed):
        cause = error.cause
        if error.step != MODEL_STEP:
            where = f"step {error.step}"
    return where, f"{where}: {type(cause).__name__}: {cause}"


def failure_batch(
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
