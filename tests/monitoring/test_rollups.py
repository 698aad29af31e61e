"""Roll-ups of the time series: finished 10-minute spans folded once, charts of long windows
read from them the same averages the points give, on every database backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelpilot.monitoring import ROLLUP_S, Point, TimeSeriesStore
from modelpilot.store import create_database

START = 1_699_999_200.0  # a whole hour: the spans, the hours and the first point line up
DAYS = 3


@pytest.fixture
def series(database_url: str) -> Iterator[TimeSeriesStore]:
    store = TimeSeriesStore(create_database(database_url))
    minutes = DAYS * 1440
    store.write(
        [Point("latency_p99_ms", "houses", float(i % 5), START + 60.0 * i) for i in range(minutes)]
        + [Point("latency_p99_ms", "flats", None, START + 60.0 * i) for i in range(60)]
        + [
            Point("drift_score", "houses", 0.1 * (i % 3), START + 600.0 * i, "feature=size")
            for i in range(DAYS * 144)
        ]
    )
    yield store
    store.engine.dispose()


def _shape(points: list[Point]) -> list[tuple[str, str, str, float, float | None]]:
    return [
        (p.name, p.deployment, p.labels, p.ts, None if p.value is None else round(p.value, 9))
        for p in points
    ]


def test_a_long_window_reads_the_same_averages_from_the_roll_ups(series: TimeSeriesStore) -> None:
    end = START + DAYS * 86400.0  # 72 buckets of an hour: whole spans each
    names = ["latency_p99_ms", "drift_score"]
    from_points = series.bucketed(names, start=START, end=end, buckets=72)
    # The last half hour is not folded yet: the chart reads it from the points.
    assert series.roll_up(end - 1800, max_span_s=DAYS * 86400.0) == end - 1800
    from_rollups = series.bucketed(names, start=START, end=end, buckets=72)
    assert _shape(from_rollups) == _shape(from_points)
    latency = [p for p in from_rollups if p.deployment == "houses" and p.name == "latency_p99_ms"]
    assert len(latency) == 72 and all(p.value == pytest.approx(2.0) for p in latency)
    # A series of only missing values stays missing: a gap, not a zero.
    assert [p.value for p in from_rollups if p.deployment == "flats"] == [None]


def test_spans_are_folded_once_oldest_first_a_day_per_call(series: TimeSeriesStore) -> None:
    now = START + DAYS * 86400.0 + 10.0
    ends = [series.roll_up(now) for _ in range(DAYS + 2)]
    day = 86400.0
    assert ends == [START + day, START + 2 * day, START + 3 * day, START + 3 * day, START + 3 * day]
    # Folding again changes nothing; a chart of hours still reads the points.
    recent = series.bucketed(["latency_p99_ms"], start=now - 3600, end=now, buckets=600)
    minutes = [i for i in range(DAYS * 1440) if now - 3600 <= START + 60.0 * i <= now]
    assert [p.ts for p in recent] == [START + 60.0 * i for i in minutes]


def test_pruning_forgets_old_roll_ups_too(series: TimeSeriesStore) -> None:
    now = START + DAYS * 86400.0
    series.roll_up(now, max_span_s=DAYS * 86400.0)
    series.prune(START + 86400.0)
    kept = series.bucketed(["drift_score"], start=START, end=now, buckets=10)
    assert kept and min(p.ts for p in kept) >= START + 86400.0 - ROLLUP_S


def test_hours_are_folded_from_the_spans_and_count_the_same_values(
    series: TimeSeriesStore,
) -> None:
    from sqlalchemy import func, select

    from modelpilot.store._tables import metric_rollups as rollups

    series.roll_up(START + DAYS * 86400.0, max_span_s=DAYS * 86400.0)
    query = (
        select(rollups.c.span, func.count(), func.sum(rollups.c.n))
        .where(rollups.c.name == "latency_p99_ms", rollups.c.deployment == "houses")
        .group_by(rollups.c.span)
    )
    with series.engine.connect() as connection:
        levels = {span: (rows, n) for span, rows, n in connection.execute(query)}
    assert levels == {600.0: (DAYS * 144, DAYS * 1440), 3600.0: (DAYS * 24, DAYS * 1440)}
    # A window that starts inside an hour reads that half hour from the 10-minute spans.
    head = [Point("request_rate", "houses", 7.0, START + 60.0 * i) for i in range(30, 60)]
    tail = [Point("request_rate", "houses", 1.0, START + 86400.0 + 60.0 * i) for i in range(60)]
    series.write(head + tail)
    with series.engine.begin() as connection:  # fold them anew, as if they had been there
        connection.execute(rollups.delete())
    series.roll_up(START + DAYS * 86400.0, max_span_s=DAYS * 86400.0)
    means = series.bucketed(
        ["request_rate"], start=START + 1800.0, end=START + DAYS * 86400.0, buckets=36
    )
    assert [p.value for p in means] == [7.0, 1.0]
