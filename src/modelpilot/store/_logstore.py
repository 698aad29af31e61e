"""What every reader and writer of the prediction log calls: one protocol, two backends.

:class:`~modelpilot.store.PredictionLog` keeps the log in the metadata database (Arrow
segments in SQLite or PostgreSQL); :class:`~modelpilot.store.DeltaPredictionLog` keeps it as
Delta Lake tables on a local disk or object storage (``logging.backend: delta``). The project
file picks one (:func:`~modelpilot.store.open_prediction_log`); drift windows, concept drift,
canary analysis, retraining exports, the review queue, ``modelpilot log`` and the log writer
see only this protocol, and ``tests/store/test_prediction_log.py`` runs the same checks on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pandas as pd

from modelpilot.store._labels import FeedbackItem, FeedbackResult
from modelpilot.store._leases import Lease
from modelpilot.store._segments import PredictionBatch, PredictionRecord
from modelpilot.types import Clock

__all__ = ["CompactionResult", "LogScan", "LogStats", "PredictionStore", "Progress"]

#: Told ``(done, total)`` as a long operation goes (a CLI draws a bar with it).
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CompactionResult:
    """What one compaction did: ``segments_merged`` small segments became ``segments_written``
    (on Delta: small files rewritten into larger ones; ``files_removed`` by the vacuum)."""

    segments_merged: int = 0
    segments_written: int = 0
    rows: int = 0
    runs_skipped: int = 0
    files_removed: int = 0


@dataclass(frozen=True)
class LogScan:
    """A time window of the log read a chunk at a time (bounded memory), for exports.

    ``total_rows`` is known before the first chunk is read: the rows of the segments (Delta:
    the rows matching the filter) the scan will read, an upper bound of the rows it yields
    (rows of a segment outside the window are dropped). Each chunk comes with the rows read to
    make it, so ``sum(read) == total_rows`` when the scan ends: progress a bar can count.
    Chunks are frames in :meth:`PredictionStore.window`'s shape, oldest segment (Delta: day)
    first; two chunks may hold different input or output columns (the model's features
    changed within the window).
    """

    total_rows: int
    chunks: Iterator[tuple[pd.DataFrame, int]]


@dataclass(frozen=True)
class LogStats:
    """The prediction log's size: rows, segments (Delta: data files), and the rows a segment
    holds on average."""

    rows: int
    segments: int
    payload_bytes: int
    #: Delta: spooled predictions the table refused for their columns' types, kept aside in
    #: the spool's ``conflicts/`` directories (see ``Spool``); always 0 on SQL.
    conflicting_rows: int = 0

    @property
    def rows_per_segment(self) -> float:
        return self.rows / self.segments if self.segments else 0.0


@runtime_checkable
class PredictionStore(Protocol):
    """The prediction log as its readers and writers use it (both backends answer it).

    Examples
    --------
    >>> from modelpilot.store import PredictionLog, create_database
    >>> isinstance(PredictionLog(create_database("sqlite://")), PredictionStore)
    True
    """

    @property
    def clock(self) -> Clock:
        """The log's clock (feedback is stamped with it)."""
        ...

    def append(
        self, items: PredictionBatch | Sequence[PredictionBatch | PredictionRecord]
    ) -> int: ...

    def count(self, *, model: str | None = None, source: str | None = None) -> int: ...

    def window(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        start: float | None = None,
        end: float | None = None,
        source: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame: ...

    def scan(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        start: float | None = None,
        end: float | None = None,
        source: str | None = None,
        chunk_rows: int = 100_000,
    ) -> LogScan:
        """:meth:`window` a chunk of about ``chunk_rows`` rows at a time."""
        ...

    def get(self, ids: Sequence[str]) -> pd.DataFrame: ...

    def exists(self, ids: Sequence[str]) -> set[str]: ...

    def versions_of(self, ids: Sequence[str]) -> dict[str, tuple[str, int]]: ...

    def latest(
        self,
        n: int,
        *,
        model: str | None = None,
        version: int | None = None,
        source: str | None = None,
    ) -> pd.DataFrame: ...

    def add_feedback(self, items: Sequence[FeedbackItem]) -> list[FeedbackResult]: ...

    def labels_since(
        self, since: float, *, model: str | None = None, limit: int = 100_000
    ) -> pd.DataFrame: ...

    def label_coverage(
        self, *, model: str, start: float, source: str = "online"
    ) -> tuple[int, int]: ...

    def labeled(
        self,
        *,
        model: str | None = None,
        start: float | None = None,
        end: float | None = None,
        version: int | None = None,
        source: str | None = None,
    ) -> pd.DataFrame: ...

    def attach_labels(self, frame: pd.DataFrame) -> pd.DataFrame: ...

    def stats(self) -> LogStats:
        """Rows, segments (or files) and stored bytes."""
        ...

    def compact(
        self,
        *,
        older_than: float,
        target_rows: int,
        fence: Lease | None = None,
        progress: Progress | None = None,
    ) -> CompactionResult:
        """Merge small segments (Delta: OPTIMIZE, then VACUUM) of rows older than
        ``older_than``; the server's leader runs it every ``logging.compact_interval_s``, with
        its lease as ``fence``. ``progress`` is told ``(done, total)`` after each merge (Delta:
        each step)."""
        ...

    def start(self) -> None:
        """The log writer starts: a backend that spools appends starts committing them."""
        ...

    def stop(self, timeout: float = 30.0) -> bool:
        """The log writer stopped: commit what is spooled; whether everything was."""
        ...
