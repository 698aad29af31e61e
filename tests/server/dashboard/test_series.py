"""The chart queries without a server: parsing, grouping by label set, thinning, gaps."""

from __future__ import annotations

import math

import pytest

from modelpilot.monitoring import Point, TimeSeriesStore
from modelpilot.server.dashboard import BadSeriesQuery, SeriesQuery, series_payload
from modelpilot.store import create_database


@pytest.fixture
def store() -> TimeSeriesStore:
    return TimeSeriesStore(create_database("sqlite://"))


def test_a_query_reads_names_deployment_labels_window_and_points() -> None:
    query = SeriesQuery.from_params(
        {
            "name": "latency_p50_ms, latency_p99_ms",
            "deployment": "houses",
            "labels": "feature=size,method=ks",
            "since": "900",
            "points": "200",
        }
    )
    assert query == SeriesQuery(
        ("latency_p50_ms", "latency_p99_ms"),
        "houses",
        {"feature": "size", "method": "ks"},
        900.0,
        200,
    )


def test_an_empty_deployment_selects_the_process_wide_series() -> None:
    assert SeriesQuery.from_params({"name": "memory_rss_bytes", "deployment": ""}).deployment == ""


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({}, r"'name' must be one or more metric names .* got ''"),
        ({"name": "a,b c"}, r"'name' must be .* got 'a,b c'"),
        ({"name": "x", "since": "0"}, r"'since' must be seconds in \(0, 86400\], got '0'"),
        ({"name": "x", "since": "90000"}, r"'since' must be seconds in \(0, 86400\]"),
        ({"name": "x", "since": "nan"}, r"'since' must be a finite number, got 'nan'"),
        ({"name": "x", "labels": "=v"}, r"'labels' must be k=v pairs separated by commas"),
        ({"name": "x", "points": "2.5"}, r"'points' must be a whole number from 2 to 10000"),
    ],
)
def test_a_bad_query_names_the_parameter_and_what_it_allows(
    params: dict[str, str], match: str
) -> None:
    with pytest.raises(BadSeriesQuery, match=match) as caught:
        SeriesQuery.from_params(params, max_since=86400)
    assert caught.value.http_status == 400


def test_series_are_grouped_by_deployment_and_label_set_within_the_window(
    store: TimeSeriesStore,
) -> None:
    store.write(
        [
            Point("drift_score", d, float(i), 100.0 + i, f"feature={f}")
            for i in range(10)
            for d in ("houses", "flats")
            for f in ("age", "size")
        ]
        + [Point("request_rate", "houses", 5.0, 105.0)]
    )
    payload = series_payload(
        store, SeriesQuery(("drift_score", "request_rate"), "houses", since=5.0), now=110.0
    )
    assert payload["now"] == 110.0 and payload["since"] == 5.0
    summary = [
        (s["name"], s["deployment"], s["labels"], [p["ts"] for p in s["points"]])
        for s in payload["series"]
    ]
    assert summary == [
        ("drift_score", "houses", {"feature": "age"}, [105.0, 106.0, 107.0, 108.0, 109.0]),
        ("drift_score", "houses", {"feature": "size"}, [105.0, 106.0, 107.0, 108.0, 109.0]),
        ("request_rate", "houses", {}, [105.0]),
    ]


def test_without_a_deployment_every_deployment_is_returned(store: TimeSeriesStore) -> None:
    store.write([Point("request_rate", d, 1.0, 100.0) for d in ("houses", "flats", "")])
    payload = series_payload(store, SeriesQuery(("request_rate",)), now=101.0)
    assert [s["deployment"] for s in payload["series"]] == ["", "flats", "houses"]


def test_a_long_series_is_averaged_into_at_most_max_points_buckets(
    store: TimeSeriesStore,
) -> None:
    store.write([Point("request_rate", "houses", float(i % 2), 1000.0 + i) for i in range(1000)])
    query = SeriesQuery(("request_rate",), "houses", since=1000.0, max_points=100)
    points = series_payload(store, query, now=2000.0)["series"][0]["points"]
    assert len(points) == 100
    assert all(p["value"] == pytest.approx(0.5) for p in points)
    assert [p["ts"] for p in points] == sorted(p["ts"] for p in points)


def test_unknown_values_stay_gaps_and_never_become_nan_in_json(store: TimeSeriesStore) -> None:
    store.write(
        [
            Point("key_metric", "houses", None, 100.0, "metric=mae"),
            Point("key_metric", "houses", math.nan, 101.0, "metric=mae"),
            Point("key_metric", "houses", 12.5, 102.0, "metric=mae"),
        ]
    )
    points = series_payload(store, SeriesQuery(("key_metric",)), now=103.0)["series"][0]["points"]
    assert [p["value"] for p in points] == [None, None, 12.5]


def test_a_young_series_in_a_long_window_keeps_every_point(store: TimeSeriesStore) -> None:
    # A minute of data in a 30-day window: spread over the chart, not one averaged dot.
    now = 40 * 86400.0
    store.write([Point("request_rate", "houses", float(i), now - 60 + i) for i in range(60)])
    query = SeriesQuery(("request_rate",), "houses", since=30 * 86400.0, max_points=300)
    points = series_payload(store, query, now=now)["series"][0]["points"]
    assert [p["value"] for p in points] == [float(i) for i in range(60)]


def test_thirty_days_of_samples_cost_a_chart_max_points(store: TimeSeriesStore) -> None:
    now = 31 * 86400.0
    start = now - 30 * 86400.0
    # Every two minutes (benchmarks/dashboard_paint.py measures 10-second ones).
    store.write(
        [
            Point("latency_p99_ms", "houses", 100.0 + (i % 3), start + 120.0 * i)
            for i in range(30 * 720)
        ]
        + [Point("latency_p99_ms", "houses", None, start + 120.0 * i + 5) for i in range(100)]
    )
    query = SeriesQuery(("latency_p99_ms",), "houses", since=30 * 86400.0, max_points=300)
    points = series_payload(store, query, now=now)["series"][0]["points"]
    assert 299 <= len(points) <= 301
    assert all(p["value"] == pytest.approx(101.0, abs=0.02) for p in points)
    stamps = [p["ts"] for p in points]
    assert stamps == sorted(stamps) and start <= stamps[0] and stamps[-1] <= now


def test_a_bucket_of_only_missing_values_stays_a_gap(store: TimeSeriesStore) -> None:
    store.write(
        [Point("key_metric", "houses", 1.0, float(t)) for t in range(0, 10)]
        + [Point("key_metric", "houses", None, float(t)) for t in range(10, 20)]
        + [Point("key_metric", "houses", 3.0, float(t)) for t in range(20, 30)]
    )
    query = SeriesQuery(("key_metric",), "houses", since=30.0, max_points=3)
    points = series_payload(store, query, now=30.0)["series"][0]["points"]
    assert [p["value"] for p in points] == [1.0, None, 3.0]
