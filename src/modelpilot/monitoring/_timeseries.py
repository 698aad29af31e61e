"""Time series of the monitor's measurements, in the metadata database.

Prometheus keeps series for a team that runs it; modelpilot keeps its own few thousand points a
day as well, so the dashboard, the alert rules and the retraining loop work on one machine with
nothing else installed. Finished 10-minute spans are also kept folded (``roll_up``): a chart of
30 days reads those, a chart of hours the points.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, delete, insert, select

from modelpilot.monitoring._rollups import ROLLUP_S, fold, read_buckets
from modelpilot.store import check_fence
from modelpilot.store._tables import metric_points, metric_rollups
from modelpilot.types import Clock

__all__ = [
    "ROLLUP_S",
    "Point",
    "SeriesEndedListener",
    "TimeSeriesStore",
    "format_labels",
    "parse_labels",
]


def format_labels(labels: Mapping[str, str] | None) -> str:
    """The canonical label string.

    Examples
    --------
    >>> format_labels({"feature": "size", "method": "ks"})
    'feature=size,method=ks'
    >>> parse_labels("feature=size,method=ks")
    {'feature': 'size', 'method': 'ks'}
    """
    if not labels:
        return ""
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def parse_labels(text: str) -> dict[str, str]:
    if not text:
        return {}
    return dict(part.split("=", 1) for part in text.split(","))


@dataclass(frozen=True)
class Point:
    name: str
    deployment: str
    value: float | None
    ts: float
    labels: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "deployment": self.deployment,
            "value": self.value,
            "ts": self.ts,
            "labels": parse_labels(self.labels),
        }


class TimeSeriesStore:
    """Append and query metric points.

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> series = TimeSeriesStore(create_database("sqlite://"))
    >>> series.write([Point("latency_p99_ms", "houses", 12.5, ts=100.0)])
    >>> [(p.ts, p.value) for p in series.query("latency_p99_ms", deployment="houses")]
    [(100.0, 12.5)]
    """

    def __init__(self, engine: Engine, *, clock: Clock = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def write(self, points: Sequence[Point]) -> None:
        if not points:
            return
        with self.engine.begin() as connection:
            check_fence(connection)  # the monitor's leader writes: once, whoever leads
            connection.execute(
                insert(metric_points),
                [
                    {
                        "ts": p.ts,
                        "name": p.name,
                        "deployment": p.deployment,
                        "labels": p.labels,
                        "value": p.value,
                    }
                    for p in points
                ],
            )

    def query(
        self,
        name: str,
        *,
        deployment: str | None = None,
        labels: Mapping[str, str] | str | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = 10_000,
    ) -> list[Point]:
        """Points of one metric, oldest first (the newest ``limit`` when there are more)."""
        query = select(metric_points).where(metric_points.c.name == name)
        if deployment is not None:
            query = query.where(metric_points.c.deployment == deployment)
        if labels is not None:
            text = labels if isinstance(labels, str) else format_labels(labels)
            query = query.where(metric_points.c.labels == text)
        if start is not None:
            query = query.where(metric_points.c.ts >= start)
        if end is not None:
            query = query.where(metric_points.c.ts < end)
        query = query.order_by(metric_points.c.ts.desc()).limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [Point(r.name, r.deployment, r.value, r.ts, r.labels) for r in reversed(rows)]

    def bucketed(
        self,
        names: Sequence[str],
        *,
        start: float,
        end: float,
        buckets: int,
        deployment: str | None = None,
    ) -> list[Point]:
        """The points of ``names`` in ``[start, end]``, averaged per series over at most
        ``buckets`` equal spans of time, each stamped with its newest point's time.

        The spans divide the time the data covers (from its first point on), so a young
        series is drawn at full detail, and a month of 10-second samples costs a chart as
        many points as an hour. Averaged in the database, from the roll-ups (``roll_up``)
        where the spans are wide enough and from the points after them (``_rollups.py``).
        A span of only missing values stays missing.

        Examples
        --------
        >>> from modelpilot.store import create_database
        >>> series = TimeSeriesStore(create_database("sqlite://"))
        >>> series.write([Point("latency_p99_ms", "houses", float(i), ts=float(i))
        ...               for i in range(10)])
        >>> [(p.ts, p.value) for p in series.bucketed(["latency_p99_ms"], start=0.0,
        ...                                           end=10.0, buckets=2)]
        [(4.0, 2.0), (9.0, 7.0)]
        """
        with self.engine.connect() as connection:
            return [
                Point(name, dep, value, ts, labels)
                for name, dep, labels, ts, value in read_buckets(
                    connection, names, start=start, end=end, buckets=buckets, deployment=deployment
                )
            ]

    def roll_up(self, now: float, *, max_span_s: float = 86400.0) -> float | None:
        """Fold the points of the finished 10-minute spans (and then hours) into roll-ups,
        oldest first, at most ``max_span_s`` of them per call (a first call on a month of
        points catches up over 30 calls instead of holding the database for a minute).
        Returns the end of the time folded so far (None: no point yet, or another process
        folded these spans meanwhile).

        Examples
        --------
        >>> from modelpilot.store import create_database
        >>> series = TimeSeriesStore(create_database("sqlite://"))
        >>> series.write([Point("request_rate", "houses", float(i % 2), ts=60.0 * i)
        ...               for i in range(30)])
        >>> series.roll_up(now=1800.0)  # the spans [0, 600), [600, 1200), [1200, 1800)
        1800.0
        >>> [(p.ts, p.value) for p in series.bucketed(["request_rate"], start=0.0,
        ...                                           end=1800.0, buckets=3)]
        [(540.0, 0.5), (1140.0, 0.5), (1740.0, 0.5)]
        """
        return fold(self.engine, now, max_span_s=max_span_s)

    def latest(self, name: str, *, deployment: str | None = None) -> list[Point]:
        """The newest point of each label set of one metric."""
        newest: dict[tuple[str, str], Point] = {}
        start = self.clock() - 3600
        for point in self.query(name, deployment=deployment, start=start):
            newest[(point.deployment, point.labels)] = point
        return list(newest.values())

    def names(self) -> list[str]:
        with self.engine.connect() as connection:
            return sorted(connection.execute(select(metric_points.c.name).distinct()).scalars())

    def prune(self, older_than: float) -> int:
        with self.engine.begin() as connection:
            connection.execute(delete(metric_rollups).where(metric_rollups.c.start < older_than))
            return int(
                connection.execute(
                    delete(metric_points).where(metric_points.c.ts < older_than)
                ).rowcount
            )


class SeriesEndedListener(Protocol):
    """Told that ``metric``'s series of ``deployment`` ended for good, but the one labelled
    ``keep``: ``modelpilot.alerting.AlertEngine.resolve_absent``."""

    def __call__(
        self, metric: str, deployment: str, reason: str, *, keep: str | None = None
    ) -> object: ...
