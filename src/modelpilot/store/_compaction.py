"""Merging the prediction log's small segments into large ones.

The online writer commits what gathered every ``flush_interval_ms`` as one segment per model
version: at 100 requests a second that is ~5 rows a segment, 1.7 million segments a day. Each
segment costs a row in ``prediction_segments`` and a decode when a window is read, so reading
a day of such a log is dominated by per-segment work (``benchmarks/log_throughput.py``
measures it). Compaction rewrites runs of consecutive small segments of the same model,
version, source and scoring run as one segment of up to ``target_rows`` rows and points their
prediction ids at it. Rows, their order and every reader's answers stay the same.

Each run is merged in its own short transaction, so the log writer waits at most one merge.
A run that changed meanwhile (another compactor, a retention job) is left for next time.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import OperationalError

from modelpilot.store._leases import Lease
from modelpilot.store._logstore import CompactionResult, LogStats, Progress
from modelpilot.store._segments import decode as _decode
from modelpilot.store._segments import encode as _encode
from modelpilot.store._tables import prediction_ids, prediction_segments

__all__ = ["compact_segments", "log_stats"]

logger = logging.getLogger("modelpilot.store")

_S = prediction_segments.c


def log_stats(engine: Engine) -> LogStats:
    """Rows, segments and stored bytes of the prediction log.

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> log_stats(create_database("sqlite://"))
    LogStats(rows=0, segments=0, payload_bytes=0, conflicting_rows=0)
    """
    query = select(
        func.coalesce(func.sum(_S.n_rows), 0),
        func.count(),
        func.coalesce(func.sum(func.length(_S.payload)), 0),
    )
    with engine.connect() as connection:
        rows, segments, size = connection.execute(query).one()
    return LogStats(int(rows), int(segments), int(size))


def compact_segments(
    engine: Engine,
    *,
    older_than: float,
    target_rows: int = 10_000,
    max_runs: int | None = None,
    fence: Lease | None = None,
    progress: Progress | None = None,
) -> CompactionResult:
    """Merge runs of small segments whose rows are all older than ``older_than`` (a timestamp).

    Segments of one model, version, source and batch id, consecutive in the log, are merged
    while the result holds at most ``target_rows`` rows; ``max_runs`` bounds the work of one
    call (None: all). ``fence``: the lease of the replica that compacts for all; each merge
    checks it (:meth:`Lease.check`) and a lost lease stops the run with ``LeaseLost``.
    ``progress`` is told ``(runs done, runs)`` after each run.

    Examples
    --------
    >>> from modelpilot.store import PredictionLog, PredictionRecord, create_database
    >>> engine = create_database("sqlite://")
    >>> log = PredictionLog(engine)
    >>> for i in range(5):
    ...     record = PredictionRecord(f"p{i}", float(i), "m", 1, {"x": i}, {"prediction": i})
    ...     _ = log.append([record])
    >>> compact_segments(engine, older_than=100.0)
    CompactionResult(segments_merged=5, segments_written=1, rows=5, runs_skipped=0, ...)
    >>> log.window(model="m")["x"].tolist(), log_stats(engine).segments
    ([0, 1, 2, 3, 4], 1)
    """
    if target_rows < 2:
        raise ValueError(f"target_rows must be at least 2, got {target_rows}")
    query = (
        select(_S.seq, _S.model, _S.version, _S.source, _S.batch_id, _S.n_rows)
        .where(_S.ts_max < older_than, _S.n_rows < target_rows)
        .order_by(_S.model, _S.version, _S.source, _S.batch_id, _S.seq)
    )
    with engine.connect() as connection:
        candidates = connection.execute(query).all()
    merged = written = rows = skipped = 0
    runs = _runs(candidates, target_rows)
    total = len(runs) if max_runs is None else min(len(runs), max_runs)
    for run in runs:
        if max_runs is not None and written + skipped >= max_runs:
            break
        done = _merge(engine, run, fence)
        if done is None:
            skipped += 1
        else:
            merged += len(run)
            written += 1
            rows += done
        if progress is not None:
            progress(written + skipped, total)
    return CompactionResult(merged, written, rows, skipped)


def _runs(candidates: Sequence[Any], target_rows: int) -> list[list[int]]:
    """Runs of at least two consecutive segments of one key, each run at most target rows."""
    runs: list[list[int]] = []
    current: list[int] = []
    key: tuple[Any, ...] | None = None
    size = 0
    for seq, model, version, source, batch_id, n_rows in candidates:
        this = (model, version, source, batch_id)
        if this != key or size + n_rows > target_rows:
            if len(current) > 1:
                runs.append(current)
            current, key, size = [], this, 0
        current.append(int(seq))
        size += int(n_rows)
    if len(current) > 1:
        runs.append(current)
    return runs


def _merge(engine: Engine, run: list[int], fence: Lease | None = None) -> int | None:
    """Merge the segments ``run`` into the first of them; their row count, or None if skipped.

    The merged payload is built outside any write transaction (decoding thousands of small
    segments takes a while); the write transaction only checks that the run is unchanged
    (segments are never modified, only merged or deleted) and swaps it, so the log writer
    waits milliseconds, not the whole merge.
    """
    first, rest = run[0], run[1:]
    with engine.connect() as connection:
        found = connection.execute(
            select(_S.seq, _S.payload, _S.ts_min, _S.ts_max, _S.n_rows)
            .where(_S.seq.in_(run))
            .order_by(_S.seq)
        ).all()
    if [int(row.seq) for row in found] != run:
        return None  # merged or deleted meanwhile
    try:
        # One record batch: a stream of thousands of tiny ones decodes ~50x slower.
        table = pa.concat_tables(
            [_decode(row.payload) for row in found], promote_options="permissive"
        ).combine_chunks()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        logger.info("segments %d-%d keep apart: %s", first, run[-1], exc)
        return None
    payload = _encode(table)
    expected = {int(row.seq): int(row.n_rows) for row in found}
    try:
        with engine.begin() as connection:
            if fence is not None:
                fence.check(connection)
            still = connection.execute(
                select(_S.seq, _S.n_rows)
                .where(_S.seq.in_(run))
                .with_for_update()  # PostgreSQL: a concurrent compactor waits, then skips
            ).all()
            if {int(row.seq): int(row.n_rows) for row in still} != expected:
                return None
            connection.execute(
                update(prediction_segments)
                .where(_S.seq == first)
                .values(
                    payload=payload,
                    n_rows=table.num_rows,
                    ts_min=min(float(row.ts_min) for row in found),
                    ts_max=max(float(row.ts_max) for row in found),
                )
            )
            connection.execute(
                update(prediction_ids)
                .where(prediction_ids.c.segment.in_(rest))
                .values(segment=first)
            )
            connection.execute(delete(prediction_segments).where(_S.seq.in_(rest)))
    except OperationalError as exc:  # SQLite: another writer took the database meanwhile
        logger.info("segments %d-%d not merged this time: %s", first, run[-1], exc)
        return None
    return int(table.num_rows)
