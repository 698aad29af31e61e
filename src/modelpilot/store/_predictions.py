"""The prediction log: every prediction modelpilot makes, and the labels that arrive later.

Layout (see ``docs/architecture.md``): each appended batch becomes one *segment* row holding its
rows as a compressed Arrow IPC blob (ids, times, latencies, input columns, output columns), and
each prediction gets one small ``prediction_ids`` row pointing at its segment. Why:

- one transaction per batch, so "answered means logged" (durable serving) is a single commit,
  identical on SQLite and PostgreSQL, with no files beside the database to keep consistent;
- appends cost one tiny index row per prediction, not a wide JSON row plus time indexes
  (measured here: about 2.5x the throughput of JSON rows, ``benchmarks/log_throughput.py``);
- a time window reads back columnar: a few blobs decoded by Arrow instead of a JSON parse per
  row, which is what drift checks on large windows need;
- feedback is checked against prediction ids with a primary-key look-up.

The segments' format lives in ``_segments.py``, the labels in ``_labels.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, Select, bindparam, func, insert, select
from sqlalchemy.exc import DBAPIError

from modelpilot.store._compaction import compact_segments, log_stats
from modelpilot.store._labels import FeedbackItem, FeedbackResult, SqlLabels
from modelpilot.store._leases import Lease
from modelpilot.store._logstore import CompactionResult, LogScan, LogStats, Progress
from modelpilot.store._segments import (
    SEGMENT_COLUMNS,
    PredictionBatch,
    PredictionRecord,
    as_batches,
    encode,
    new_ids,
    segments_frame,
)
from modelpilot.store._tables import prediction_ids, prediction_segments
from modelpilot.types import Clock

__all__ = [
    "FeedbackItem",
    "FeedbackResult",
    "PredictionBatch",
    "PredictionLog",
    "PredictionRecord",
    "new_ids",
]


@dataclass
class PredictionLog(SqlLabels):
    """The prediction log in the metadata database: append predictions and feedback, read time
    windows back as DataFrames (the :class:`~modelpilot.store.PredictionStore` of
    ``logging.backend: sql``, the default).

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> log = PredictionLog(create_database("sqlite://"))
    >>> rec = PredictionRecord(id="a1", ts=10.0, model="m", version=1,
    ...                        inputs={"x": 1.5}, outputs={"prediction": 3.0})
    >>> log.append([rec])
    1
    >>> log.window(model="m")[["id", "x", "prediction"]].to_dict("records")
    [{'id': 'a1', 'x': 1.5, 'prediction': 3.0}]
    >>> [r.accepted for r in log.add_feedback([FeedbackItem("a1", 3.5), FeedbackItem("zz", 1)])]
    [True, False]
    """

    engine: Engine
    clock: Clock = field(default=time.time)

    def __post_init__(self) -> None:
        style = self.engine.dialect.paramstyle
        mark = "?" if style == "qmark" else "%s"
        self._ids_sql = f"INSERT INTO prediction_ids (id, segment) VALUES ({mark}, {mark})"
        self._copy = (
            self.engine.dialect.name == "postgresql" and self.engine.dialect.driver == "psycopg"
        )

    def append(self, items: PredictionBatch | Sequence[PredictionBatch | PredictionRecord]) -> int:
        """Write batches (or records, grouped into batches) in one transaction; returns rows."""
        batches = as_batches([items] if isinstance(items, PredictionBatch) else items)
        if not batches:
            return 0
        written = 0
        with self.engine.begin() as connection:
            for batch in batches:
                n = len(batch)
                if n == 0:
                    continue
                ts = np.asarray(batch.ts, dtype=np.float64)
                inserted = connection.execute(
                    insert(prediction_segments).values(
                        model=batch.model,
                        version=batch.version,
                        source=batch.source,
                        batch_id=batch.batch_id,
                        ts_min=float(ts.min()),
                        ts_max=float(ts.max()),
                        n_rows=n,
                        payload=encode(batch.to_arrow()),
                    )
                )
                seq = int(inserted.inserted_primary_key[0])  # type: ignore[index]
                if batch.source != "shadow":
                    # Shadow rows share their primary's id: only the primary's is indexed.
                    self._insert_ids(connection, batch.ids, seq)
                written += n
        return written

    def _insert_ids(self, connection: Any, ids: Sequence[str], seq: int) -> None:
        if self._copy:
            # PostgreSQL: COPY is several times faster than executemany for many small rows.
            statement = "COPY prediction_ids (id, segment) FROM STDIN"
            cursor = connection.connection.driver_connection.cursor()
            try:
                with cursor.copy(statement) as copy:
                    for pid in ids:
                        copy.write_row((pid, seq))
            except self.engine.dialect.loaded_dbapi.Error as exc:
                # The raw cursor bypasses SQLAlchemy: wrap its error as SQLAlchemy would, so a
                # duplicate id is an IntegrityError on every backend.
                raise DBAPIError.instance(
                    statement, None, exc, self.engine.dialect.loaded_dbapi.Error
                ) from None
            finally:
                cursor.close()
            return
        # Straight to the driver's executemany: no per-row SQLAlchemy processing.
        connection.exec_driver_sql(self._ids_sql, [(pid, seq) for pid in ids])

    def count(self, *, model: str | None = None, source: str | None = None) -> int:
        query = select(func.coalesce(func.sum(prediction_segments.c.n_rows), 0))
        if model is not None:
            query = query.where(prediction_segments.c.model == model)
        if source is not None:
            query = query.where(prediction_segments.c.source == source)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def window(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        start: float | None = None,
        end: float | None = None,
        source: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Predictions with ``start <= ts < end`` as one DataFrame, oldest first.

        Columns: ``id, ts, model, version, source, batch_id, latency_ms``, then the input
        features by name, then the outputs (``prediction``, ``proba_<class>``, ``confidence``).
        ``ts`` is seconds since the epoch (UTC); ``limit`` keeps the oldest rows.

        Examples
        --------
        >>> from modelpilot.store import create_database
        >>> log = PredictionLog(create_database("sqlite://"))
        >>> _ = log.append([PredictionRecord(f"p{i}", 100.0 + i, "houses", 1, {"size": 50 + i},
        ...                                  {"prediction": 1000.0 * i}) for i in range(5)])
        >>> log.window(model="houses", start=102.0)[["id", "size", "prediction"]]
           id  size  prediction
        0  p2    52      2000.0
        1  p3    53      3000.0
        2  p4    54      4000.0
        """
        query = _segments_in(select(*SEGMENT_COLUMNS), model, version, start, end, source).order_by(
            prediction_segments.c.seq
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return segments_frame(rows, start=start, end=end, limit=limit)

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
        """:meth:`window` a few segments at a time: their sizes are read first (one small
        query), then each chunk's payloads.

        Examples
        --------
        >>> from modelpilot.store import create_database
        >>> log = PredictionLog(create_database("sqlite://"))
        >>> for i in range(3):
        ...     _ = log.append([PredictionRecord(f"p{i}", 1.0 + i, "m", 1, {"x": i}, {"y": i})])
        >>> scan = log.scan(model="m", chunk_rows=2)
        >>> scan.total_rows, [(frame["id"].tolist(), read) for frame, read in scan.chunks]
        (3, [(['p0', 'p1'], 2), (['p2'], 1)])
        """
        sizes = _segments_in(
            select(prediction_segments.c.seq, prediction_segments.c.n_rows),
            model,
            version,
            start,
            end,
            source,
        ).order_by(prediction_segments.c.seq)
        with self.engine.connect() as connection:
            segments = [(int(seq), int(n)) for seq, n in connection.execute(sizes).all()]
        groups: list[list[tuple[int, int]]] = [[]]
        held = 0  # rows of the last group (a log of 1-row segments has ~100,000 a group)
        for segment in segments:
            if groups[-1] and held + segment[1] > chunk_rows:
                groups.append([])
                held = 0
            groups[-1].append(segment)
            held += segment[1]

        def chunks() -> Iterator[tuple[pd.DataFrame, int]]:
            for group in groups:
                if not group:
                    continue
                query = (
                    select(*SEGMENT_COLUMNS)
                    .where(prediction_segments.c.seq.in_([seq for seq, _ in group]))
                    .order_by(prediction_segments.c.seq)
                )
                with self.engine.connect() as connection:
                    rows = connection.execute(query).all()
                frame = segments_frame(rows, start=start, end=end, limit=None)
                yield frame, sum(n for _, n in group)

        return LogScan(sum(n for _, n in segments), chunks())

    def get(self, ids: Sequence[str]) -> pd.DataFrame:
        """The logged rows of ``ids`` (unknown ids are absent from the result)."""
        segments = self._segments_of(ids)
        if not segments:
            return segments_frame([], start=None, end=None, limit=None)
        query = select(*SEGMENT_COLUMNS).where(
            prediction_segments.c.seq.in_(sorted(set(segments.values())))
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        frame = segments_frame(rows, start=None, end=None, limit=None)
        return frame[frame["id"].isin(set(ids))].reset_index(drop=True)

    def _segments_of(self, ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        stmt = select(prediction_ids.c.id, prediction_ids.c.segment).where(
            prediction_ids.c.id.in_(bindparam("ids", expanding=True))
        )
        with self.engine.connect() as connection:
            for begin in range(0, len(ids), 500):
                chunk = list(ids[begin : begin + 500])
                found.update({pid: seg for pid, seg in connection.execute(stmt, {"ids": chunk})})
        return found

    def exists(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are logged predictions."""
        return set(self._segments_of(ids))

    def versions_of(self, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        """The model and version that made each logged prediction of ``ids``."""
        segments = self._segments_of(ids)
        stmt = select(
            prediction_segments.c.seq, prediction_segments.c.model, prediction_segments.c.version
        ).where(prediction_segments.c.seq.in_(bindparam("seqs", expanding=True)))
        wanted = sorted(set(segments.values()))
        made: dict[int, tuple[str, int]] = {}
        with self.engine.connect() as connection:
            for begin in range(0, len(wanted), 500):
                chunk = wanted[begin : begin + 500]
                made.update(
                    {seq: (m, v) for seq, m, v in connection.execute(stmt, {"seqs": chunk})}
                )
        return {pid: made[seq] for pid, seq in segments.items() if seq in made}

    def latest(
        self,
        n: int,
        *,
        model: str | None = None,
        version: int | None = None,
        source: str | None = None,
    ) -> pd.DataFrame:
        """The newest ``n`` predictions, oldest first, reading segments from the newest back
        until there are enough (a look at the end of a large log reads only its end).

        Examples
        --------
        >>> from modelpilot.store import create_database
        >>> log = PredictionLog(create_database("sqlite://"))
        >>> for i in range(4):
        ...     _ = log.append([PredictionRecord(f"p{i}", float(i), "m", 1, {"x": i}, {"y": i})])
        >>> log.latest(2)["id"].tolist()
        ['p2', 'p3']
        """
        query = select(*SEGMENT_COLUMNS, prediction_segments.c.n_rows).order_by(
            prediction_segments.c.ts_max.desc(), prediction_segments.c.seq.desc()
        )
        if model is not None:
            query = query.where(prediction_segments.c.model == model)
        if version is not None:
            query = query.where(prediction_segments.c.version == version)
        if source is not None:
            query = query.where(prediction_segments.c.source == source)
        rows: list[Any] = []
        total = 0
        with self.engine.connect() as connection:
            for row in connection.execute(query):
                rows.append(row[:5])
                total += int(row[5])
                if total >= n:
                    break
        frame = segments_frame(rows[::-1], start=None, end=None, limit=None)
        return frame.tail(n).reset_index(drop=True)

    def stats(self) -> LogStats:
        """Rows, segments and stored bytes (:func:`~modelpilot.store.log_stats`)."""
        return log_stats(self.engine)

    def compact(
        self,
        *,
        older_than: float,
        target_rows: int,
        fence: Lease | None = None,
        progress: Progress | None = None,
    ) -> CompactionResult:
        """Merge small segments (:func:`~modelpilot.store.compact_segments`)."""
        return compact_segments(
            self.engine,
            older_than=older_than,
            target_rows=target_rows,
            fence=fence,
            progress=progress,
        )

    def start(self) -> None:
        """Nothing to start: every append is its own transaction."""

    def stop(self, timeout: float = 30.0) -> bool:
        """Nothing is spooled: every append was committed when it returned."""
        return True


def _segments_in(
    query: Select[Any],
    model: str | None,
    version: int | None,
    start: float | None,
    end: float | None,
    source: str | None,
) -> Select[Any]:
    """``query`` kept to the segments that may hold rows of the window."""
    c = prediction_segments.c
    if model is not None:
        query = query.where(c.model == model)
    if version is not None:
        query = query.where(c.version == version)
    if start is not None:
        query = query.where(c.ts_max >= start)
    if end is not None:
        query = query.where(c.ts_min < end)
    if source is not None:
        query = query.where(c.source == source)
    return query
