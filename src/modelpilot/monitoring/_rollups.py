"""Roll-ups of the time series, and the bucketed reads that use them.

A chart needs a few hundred points a series. Over hours, the database averages the points
into buckets. Over days that is still every point read: 260,000 a series for 30 days of
10-second samples. So each series is also kept folded, in table ``metric_rollups``: every
finished 10-minute span (count and sum of its known values, its newest time), and every
finished hour folded from those. A chart reads the coarsest level whose span fits in one of
its buckets, the finer level where the coarser has no row yet, then the points after the
newest roll-up: 720 rows a series for 30 days. The monitor folds once a minute
(``TimeSeriesStore.roll_up``); nothing else writes here.

The levels line up in time (an hour is six whole spans), so the averages are the points' own
wherever a bucket holds whole spans.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Float, func, insert, literal, select
from sqlalchemy.exc import IntegrityError

from modelpilot.store import floor_int
from modelpilot.store._tables import metric_points, metric_rollups

__all__ = ["ROLLUP_S", "SPANS", "fold", "read_buckets"]

#: The finest roll-up: a chart reads roll-ups once its buckets are at least this wide.
ROLLUP_S = 600.0
#: Every level, finest first; each is folded from the one before (the first from the points).
SPANS = (ROLLUP_S, 3600.0)

Row = tuple[str, str, str, float, float | None]  # name, deployment, labels, newest ts, mean
_Key = tuple[str, str, str, int]  # name, deployment, labels, bucket


def fold(engine: Engine, now: float, *, max_span_s: float) -> float | None:
    """Fold what finished before ``now``, at most ``max_span_s`` per level; returns the end of
    the finest level folded so far (None: nothing to fold, or another process did)."""
    finest: float | None = None
    try:
        with engine.begin() as connection:
            available: float | None = math.floor(now / SPANS[0]) * SPANS[0]
            for level, span in enumerate(SPANS):
                if available is None:
                    break
                # A coarser level folds only what the finer one holds.
                available = _fold_level(connection, level, span, available, max_span_s)
                if level == 0:
                    finest = available
    except IntegrityError:  # another process folded these spans meanwhile: theirs stand
        return None
    return finest


def _fold_level(
    connection: Connection, level: int, span: float, available: float, max_span_s: float
) -> float | None:
    """Fold level ``level`` up to the time ``available`` (what its source holds, finished);
    returns how far the level is folded (None: its source is empty)."""
    rollups = metric_rollups.c
    if level == 0:
        points = metric_points.c
        source: Any = points
        ts, last = points.ts, points.ts
        count: Any = func.count(points.value)
        total: Any = func.sum(points.value)
        finer: list[Any] = []
    else:
        source = rollups
        ts, last = rollups.start, rollups.last_ts
        count, total = func.sum(rollups.n), func.sum(rollups.total)
        finer = [rollups.span == SPANS[level - 1]]
    done = connection.execute(select(func.max(rollups.start)).where(rollups.span == span)).scalar()
    if done is None:
        oldest = connection.execute(select(func.min(ts)).where(*finer)).scalar()
        if oldest is None:
            return None
        begin = math.floor(float(oldest) / span) * span
    else:
        begin = float(done) + span
    stop = min(math.floor(available / span) * span, begin + max_span_s)
    if stop <= begin:
        return begin
    start = (floor_int(ts / span) * span).label("start")
    connection.execute(
        insert(metric_rollups).from_select(
            ["span", "start", "name", "deployment", "labels", "n", "total", "last_ts"],
            select(
                literal(span, Float()),
                start,
                source.name,
                source.deployment,
                source.labels,
                count,
                total,
                func.max(last),
            )
            .where(ts >= begin, ts < stop, *finer)
            .group_by(start, source.name, source.deployment, source.labels),
        )
    )
    return stop


def _levels(
    connection: Connection, names: Sequence[str], deployment: str | None, start: float
) -> dict[float, tuple[float, float]]:
    """Per span, the first and last roll-up start of these series in the window."""
    rollups = metric_rollups.c
    query = select(rollups.span, func.min(rollups.start), func.max(rollups.start)).where(
        rollups.name.in_(list(names)), rollups.start >= start
    )
    if deployment is not None:
        query = query.where(rollups.deployment == deployment)
    rows = connection.execute(query.group_by(rollups.span)).all()
    return {float(span): (float(low), float(high)) for span, low, high in rows}


def read_buckets(
    connection: Connection,
    names: Sequence[str],
    *,
    start: float,
    end: float,
    buckets: int,
    deployment: str | None = None,
) -> list[Row]:
    """Each series of ``names`` in ``[start, end]`` as at most ``buckets`` means, oldest
    first, from the roll-ups that fit and the points after them."""
    points, rollups = metric_points.c, metric_rollups.c
    where = [points.name.in_(list(names)), points.ts >= start, points.ts <= end]
    if deployment is not None:
        where.append(points.deployment == deployment)
    levels = _levels(connection, names, deployment, start)
    first: Any = min((low for low, _ in levels.values()), default=None)
    usable = [
        span
        for span in sorted(levels, reverse=True)
        if first is not None and (end - first) / max(buckets, 1) >= span
    ]
    if not usable:  # a short window (or nothing folded yet): the points alone
        first = connection.execute(select(func.min(points.ts)).where(*where)).scalar()
    if first is None:
        return []
    first = float(first)
    width = max((end - first) / max(buckets, 1), 1e-6)
    if usable:
        # Buckets of whole roll-ups: a grid on the coarsest span read, so none straddles two.
        step = usable[0]
        first = math.floor(first / step) * step
        width = math.ceil((end - first) / max(buckets, 1) / step) * step
    sums: dict[_Key, list[float]] = {}
    covered: tuple[float, float] | None = None  # what a coarser level read: [low, high)
    for span in usable:  # coarsest first; a finer level fills in around it
        low, high = levels[span]
        # Two ranges rather than one OR, so that each one is a range of the index.
        ranges = [(start, None)] if covered is None else [(start, covered[0]), (covered[1], None)]
        for begin, stop in ranges:
            folded = [
                rollups.name.in_(list(names)),
                rollups.span == span,
                rollups.start >= begin,
            ]
            if stop is not None:
                folded.append(rollups.start < stop)
            if deployment is not None:
                folded.append(rollups.deployment == deployment)
            bucket = floor_int((rollups.start - first) / width)
            measures = (func.sum(rollups.n), func.sum(rollups.total), func.max(rollups.last_ts))
            _add(sums, connection.execute(_per_bucket(rollups, bucket, measures, folded)))
        covered = (
            (low, high + span)
            if covered is None
            else (min(covered[0], low), max(covered[1], high + span))
        )
    if covered is not None:
        where.append(points.ts >= covered[1])
    bucket = floor_int((points.ts - first) / width)
    counted = (func.count(points.value), func.sum(points.value), func.max(points.ts))
    _add(sums, connection.execute(_per_bucket(points, bucket, counted, where)))
    return [
        (key[0], key[1], key[2], last, total / n if n else None)
        for key, (n, total, last) in sorted(sums.items())
    ]


def _per_bucket(source: Any, bucket: Any, measures: tuple[Any, ...], where: list[Any]) -> Any:
    """``(name, deployment, labels, bucket, count, sum, newest)`` per series and bucket."""
    series = (source.name, source.deployment, source.labels)
    return select(*series, bucket, *measures).where(*where).group_by(*series, bucket)


def _add(sums: dict[_Key, list[float]], rows: Any) -> None:
    """Add ``(name, deployment, labels, bucket, count, sum, newest)`` rows to ``sums``."""
    for name, dep, labels, index, n, total, last in rows:
        entry = sums.setdefault((name, dep, labels, int(index)), [0.0, 0.0, -math.inf])
        entry[0] += int(n or 0)
        entry[1] += float(total or 0.0)
        entry[2] = max(entry[2], float(last))
