"""Time series of the monitor's measurements, in the metadata database.

Prometheus keeps series for a team that runs it; modelpilot keeps its own few thousand points a
day as well, so the dashboard, the alert rules and the retraining loop work on one machine with
nothing else installed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Engine, Integer, cast, delete, func, insert, select

from modelpilot.store._tables import metric_points
from modelpilot.types import Clock

__all__ = ["Point", "SeriesEndedListener", "TimeSeriesStore", "format_labels", "parse_labels"]


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
        many points as an hour. Averaged in the database: the rows never leave it. A span of
        only missing values stays missing.

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
        c = metric_points.c
        where = [c.name.in_(list(names)), c.ts >= start, c.ts <= end]
        if deployment is not None:
            where.append(c.deployment == deployment)
        with self.engine.connect() as connection:
            first = connection.execute(select(func.min(c.ts)).where(*where)).scalar()
            if first is None:
                return []
            width = max((end - float(first)) / max(buckets, 1), 1e-6)
            bucket = cast((c.ts - float(first)) / width, Integer).label("bucket")
            rows = connection.execute(
                select(c.name, c.deployment, c.labels, func.max(c.ts), func.avg(c.value))
                .where(*where)
                .group_by(c.name, c.deployment, c.labels, bucket)
                .order_by(c.name, c.deployment, c.labels, bucket)
            ).all()
        return [
            Point(name, dep, None if value is None else float(value), float(ts), labels)
            for name, dep, labels, ts, value in rows
        ]

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
