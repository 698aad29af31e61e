"""What travels through the micro-batcher: a request's instances in, its answers or failure out."""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelpilot.store import MatrixColumns

__all__ = ["BatchFailed", "BatchJob", "JobResult", "LogPolicy"]


class LogPolicy(enum.Enum):
    """Who writes a job's predictions (or its failure) to the prediction log.

    ``SCORER``: the model thread, with the rest of its micro-batch; for answers that are final
    as the model gave them (full automation). ``CALLER``: the caller, through the
    :class:`~modelpilot.inference.PredictionRecorder`, once the answers are final (people decide
    some of them) or as a shadow's copy.
    """

    SCORER = "scorer"
    CALLER = "caller"


@dataclass(slots=True)
class BatchJob:
    """One request's validated instances, waiting in the micro-batcher.

    ``rows`` (all-numeric rows in feature order, the fast path) or ``columns`` (validated
    columns of any types) holds them.
    """

    count: int
    rows: list[list[float | int]] | None = None
    columns: dict[str, list[Any]] | None = None
    deployment: str = ""
    policy: LogPolicy = LogPolicy.CALLER
    submitted: float = field(default_factory=time.perf_counter)

    def records(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """The instances as records (for the review queue, and for a shadow's copy)."""
        if self.rows is not None:
            # Floats, as validate_records gives them (a JSON 3 is the number 3.0).
            return [dict(zip(names, map(float, row), strict=True)) for row in self.rows]
        columns = self.columns or {}
        return [{name: columns[name][i] for name in names} for i in range(self.count)]

    def input_columns(self, names: Sequence[str]) -> Mapping[str, Any]:
        """The instances as columns, the form the prediction log stores."""
        if self.rows is not None:
            matrix = np.array(self.rows, dtype=np.float64).reshape(-1, len(names))
            return MatrixColumns(matrix, names)
        columns = self.columns or {}
        return {name: columns[name] for name in names}


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


class BatchFailed(Exception):
    """The model (or a pipeline step) raised on one request's instances."""

    def __init__(self, ids: list[str], cause: BaseException, *, latency_ms: float = 0.0) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.ids = ids
        self.cause = cause
        self.latency_ms = latency_ms
