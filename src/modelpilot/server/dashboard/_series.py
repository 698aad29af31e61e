"""Time series for charts: which points a query asks for, grouped by label set, thinned out.

``GET /v1/metrics/series`` answers with this module's :func:`series_payload`. A chart needs a
few hundred points, not every 10-second sample of a day: past ``max_points`` a series is
averaged into equal time buckets, so a day-long window costs the browser what an hour does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelpilot.errors import ModelpilotError
from modelpilot.monitoring import Point, TimeSeriesStore, parse_labels

__all__ = [
    "MAX_NAMES",
    "MAX_POINTS",
    "BadSeriesQuery",
    "SeriesQuery",
    "SeriesTooLarge",
    "series_payload",
]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Enough rows for a day of 10-second samples of a dozen label sets; more would make one
# dashboard poll a noticeable load on the metadata database. It bounds a whole request (all
# its names together), as MAX_POINTS bounds the answer: a query past either is refused.
_ROW_LIMIT = 100_000
MAX_NAMES = 20
MAX_POINTS = 50_000


class BadSeriesQuery(ModelpilotError):
    """A query parameter of ``/v1/metrics/series`` is missing or malformed."""

    kind = "bad_request"

    def __init__(self, parameter: str, expected: str, got: object) -> None:
        self.parameter = parameter
        super().__init__(
            f"the query parameter {parameter!r} must be {expected}, got {got!r}; for example "
            "/v1/metrics/series?name=latency_p99_ms&deployment=houses&since=900"
        )


class SeriesTooLarge(ModelpilotError):
    """A series query would read or answer more than a request may."""

    http_status = 422
    kind = "query_too_large"

    def __init__(self, what: str) -> None:
        super().__init__(
            f"this query asks for {what} (limits: {MAX_NAMES} names, {_ROW_LIMIT:,} stored "
            f"points read, {MAX_POINTS:,} points answered, 'points' up to 10000 per series); "
            "ask for fewer names, a shorter 'since', a 'deployment' or 'labels', or fewer 'points'"
        )


@dataclass(frozen=True)
class SeriesQuery:
    """What ``/v1/metrics/series`` was asked for.

    Examples
    --------
    >>> query = SeriesQuery.from_params(
    ...     {"name": "drift_score,drift_detected", "labels": "feature=size", "since": "600"}
    ... )
    >>> query.names, query.labels, query.since, query.deployment
    (('drift_score', 'drift_detected'), {'feature': 'size'}, 600.0, None)
    >>> SeriesQuery.from_params({"name": "latency_p99_ms", "since": "-5"})
    Traceback (most recent call last):
    ...
    modelpilot.server.dashboard._series.BadSeriesQuery: the query parameter 'since' must be ...
    """

    names: tuple[str, ...]
    deployment: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    since: float = 3600.0
    max_points: int = 600

    @classmethod
    def from_params(
        cls, params: Mapping[str, str], *, max_since: float = 366 * 86400.0
    ) -> SeriesQuery:
        raw_names = params.get("name", "")
        # Each name once, in the order asked: a repeated name is the same series.
        names = tuple(dict.fromkeys(n.strip() for n in raw_names.split(",") if n.strip()))
        if not names or not all(_NAME.match(n) for n in names):
            raise BadSeriesQuery(
                "name",
                "one or more metric names separated by commas (GET /v1/metrics/names lists them)",
                raw_names if len(raw_names) <= 200 else f"{raw_names[:200]}...",
            )
        if len(names) > MAX_NAMES:
            raise SeriesTooLarge(f"{len(names)} different metric names")
        labels: dict[str, str] = {}
        raw_labels = params.get("labels", "")
        if raw_labels:
            if any("=" not in part or not part.split("=", 1)[0] for part in raw_labels.split(",")):
                raise BadSeriesQuery("labels", "k=v pairs separated by commas", raw_labels)
            labels = parse_labels(raw_labels)
        since = _number(params, "since", 3600.0)
        if not 0 < since <= max_since:
            raise BadSeriesQuery("since", f"seconds in (0, {max_since:g}]", params.get("since"))
        max_points = _number(params, "points", 600.0)
        if not (max_points.is_integer() and 2 <= max_points <= 10_000):
            raise BadSeriesQuery("points", "a whole number from 2 to 10000", params.get("points"))
        return cls(names, params.get("deployment"), labels, since, int(max_points))


def _number(params: Mapping[str, str], key: str, default: float) -> float:
    raw = params.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadSeriesQuery(key, "a number", raw) from None
    if not math.isfinite(value):
        raise BadSeriesQuery(key, "a finite number", raw)
    return value


def series_payload(store: TimeSeriesStore, query: SeriesQuery, *, now: float) -> dict[str, Any]:
    """The points of the query's metrics in ``[now - since, now]``, one series per label set.

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> store = TimeSeriesStore(create_database("sqlite://"))
    >>> store.write([Point("drift_score", "houses", 0.1 * i, 100.0 + i, f"feature={f}")
    ...              for i in range(3) for f in ("age", "size")])
    >>> payload = series_payload(store, SeriesQuery(("drift_score",), labels={"feature": "size"}),
    ...                          now=110.0)
    >>> [(s["labels"], [p["value"] for p in s["points"]]) for s in payload["series"]]
    [({'feature': 'size'}, [0.0, 0.1, 0.2])]
    """
    start = now - query.since
    series: list[dict[str, Any]] = []
    rows = answered = 0
    for name in query.names:
        groups: dict[tuple[str, str], list[Point]] = {}
        budget = _ROW_LIMIT - rows + 1  # one more than allowed: to know it was exceeded
        for point in store.query(name, deployment=query.deployment, start=start, limit=budget):
            groups.setdefault((point.deployment, point.labels), []).append(point)
            rows += 1
        if rows > _ROW_LIMIT:
            raise SeriesTooLarge(f"more than {_ROW_LIMIT:,} stored points to read")
        for (deployment, text), points in sorted(groups.items()):
            labels = parse_labels(text)
            if any(labels.get(k) != v for k, v in query.labels.items()):
                continue
            thinned = _thin(points, query.max_points, start, now)
            answered += len(thinned)
            if answered > MAX_POINTS:
                raise SeriesTooLarge(f"more than {MAX_POINTS:,} points in the answer")
            series.append(
                {
                    "name": name,
                    "deployment": deployment,
                    "labels": labels,
                    "points": [
                        {"ts": ts, "value": value, "labels": labels} for ts, value in thinned
                    ],
                }
            )
    return {
        "now": now,
        "since": query.since,
        "labels": query.labels,
        "series": series,
    }


def _thin(
    points: list[Point], max_points: int, start: float, end: float
) -> list[tuple[float, float | None]]:
    """At most ``max_points`` (ts, value) pairs: the points, or the means of time buckets."""
    if len(points) <= max_points:
        return [(p.ts, _finite(p.value)) for p in points]
    width = (end - start) / max_points or 1.0
    buckets: dict[int, list[Point]] = {}
    for point in points:
        index = min(max_points - 1, max(0, int((point.ts - start) / width)))
        buckets.setdefault(index, []).append(point)
    thinned: list[tuple[float, float | None]] = []
    for index in sorted(buckets):
        bucket = buckets[index]
        values = [v for v in (_finite(p.value) for p in bucket) if v is not None]
        # A gap stays a gap: a bucket of only missing values is missing, not zero.
        mean = sum(values) / len(values) if values else None
        thinned.append((bucket[-1].ts, mean))
    return thinned


def _finite(value: float | None) -> float | None:
    # JSON has no NaN or infinity; a chart draws a gap where the value is unknown.
    return value if value is not None and math.isfinite(value) else None
