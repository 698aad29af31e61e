"""Time series for charts: which points a query asks for, grouped by label set, thinned out.

``GET /v1/metrics/series`` answers with this module's :func:`series_payload`. A chart needs a
few hundred points, not every 10-second sample of a month: each series is averaged into at most
``max_points`` equal time buckets, in the database (``TimeSeriesStore.bucketed``), so a 30-day
window costs the browser, and nearly the server, what an hour does.
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
# A request's bounds: the database averages each series into at most 'points' buckets, so
# what it reads into memory is names x label sets x points; the answer is capped as a whole.
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
            f"this query asks for {what} (limits: {MAX_NAMES} names, {MAX_POINTS:,} points "
            "answered, 'points' up to 10000 per series); "
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
    groups: dict[tuple[str, str, str], list[Point]] = {}
    points = store.bucketed(
        query.names, deployment=query.deployment, start=start, end=now, buckets=query.max_points
    )
    for point in points:
        groups.setdefault((point.name, point.deployment, point.labels), []).append(point)
    series: list[dict[str, Any]] = []
    answered = 0
    for name in query.names:  # in the order asked for, then by deployment and labels
        for (_, deployment, text), group in sorted(
            (k, v) for k, v in groups.items() if k[0] == name
        ):
            labels = parse_labels(text)
            if any(labels.get(k) != v for k, v in query.labels.items()):
                continue
            answered += len(group)
            if answered > MAX_POINTS:
                raise SeriesTooLarge(f"more than {MAX_POINTS:,} points in the answer")
            series.append(
                {
                    "name": name,
                    "deployment": deployment,
                    "labels": labels,
                    "points": [
                        {"ts": p.ts, "value": _finite(p.value), "labels": labels} for p in group
                    ],
                }
            )
    return {
        "now": now,
        "since": query.since,
        "labels": query.labels,
        "series": series,
    }


def _finite(value: float | None) -> float | None:
    # JSON has no NaN or infinity; a chart draws a gap where the value is unknown.
    return value if value is not None and math.isfinite(value) else None
