"""The monitor's traffic points: requests, errors, latency, each version's share and the
inputs' quality, summed over every replica (``_traffic.py`` sums them)."""

from __future__ import annotations

from modelpilot.monitoring._sketch import sketch_quantile
from modelpilot.monitoring._timeseries import Point, format_labels
from modelpilot.monitoring._traffic import FleetTraffic, TrafficTotals, outcome_rates

__all__ = ["input_points", "traffic_points"]


def traffic_points(name: str, fleet: FleetTraffic, now: float, elapsed: float) -> list[Point]:
    """Requests, errors, latency and each version's share, summed over every replica."""
    totals = fleet.total
    count, error_rate, client_error_rate = outcome_rates(totals.deployment(name))
    points = [
        Point("request_count", name, float(count), now),
        Point("request_rate", name, fleet.request_rate(name, min_span=elapsed), now),
        Point("error_rate", name, error_rate, now),
        Point("client_error_rate", name, client_error_rate, now),
    ]
    answered = totals.versions(name)
    for version, n in sorted(answered.items()):
        labels = format_labels({"version": version})
        points.append(Point("version_share", name, n / sum(answered.values()), now, labels))
    sketch = totals.sketches.get(name)
    if sketch and count:
        for q, metric in (
            (0.5, "latency_p50_ms"),
            (0.95, "latency_p95_ms"),
            (0.99, "latency_p99_ms"),
        ):
            value = sketch_quantile(sketch, q)
            if value is not None:
                points.append(Point(metric, name, value * 1000, now))
    return points


def input_points(name: str, totals: TrafficTotals, now: float) -> list[Point]:
    """Instances per request and each feature's missing, out-of-range and unseen shares,
    summed over every replica."""
    counted = totals.inputs.get(name)
    if not counted or not counted["requests"]:
        return []
    points = [Point("instances_per_request", name, counted["instances"] / counted["requests"], now)]
    for feature, values in counted["values"].items():
        if not values:
            continue
        labels = format_labels({"feature": feature})
        for key, metric in (
            ("missing", "missing_rate"),
            ("out_of_range", "out_of_range_rate"),
            ("unseen", "unseen_rate"),
        ):
            points.append(Point(metric, name, counted[key].get(feature, 0) / values, now, labels))
    return points
