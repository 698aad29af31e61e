"""Per-request metrics of the prediction routes, kept as plain numbers and exposed at scrape time.

prometheus-client's labelled metrics take a lock and a few method calls per update. The
prediction path made five such updates per request (in flight up and down, the request
counter, the latency and size histograms): about a sixth of the event loop's time per
request at 64 connections (cProfile of ``modelpilot serve`` under ``benchmarks/serving.py``'s
load). Here one update is one lock and a few integer additions; a collector turns the
numbers into the same Prometheus families (counter, histograms, gauge) when scraped.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Iterable, Sequence

from prometheus_client import utils as _prometheus_utils
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from modelpilot.monitoring._sketch import bucket_of

__all__ = ["RequestStats"]


def _le(bound: float) -> str:
    """A bucket bound as prometheus-client's histograms write it (``0.005``, ``+Inf``)."""
    return str(_prometheus_utils.floatToGoString(bound))  # type: ignore[no-untyped-call]


class _Buckets:
    """One histogram's counts per bucket (not cumulative; the last one is +Inf) and sum."""

    __slots__ = ("counts", "total")

    def __init__(self, n_bounds: int) -> None:
        self.counts = [0] * (n_bounds + 1)
        self.total = 0.0


class RequestStats:
    """Counts, latencies and sizes of prediction requests, per deployment.

    Examples
    --------
    >>> stats = RequestStats(latency_buckets=(0.01, 0.1), size_buckets=(1, 10))
    >>> stats.started("houses")
    >>> stats.finished("houses", "1", "ok", 0.004, instances=2, started=True)
    >>> counter, latency, sizes, in_flight = stats.collect()
    >>> [(s.name, s.labels, s.value) for s in counter.samples]
    [('modelpilot_requests_total', {'deployment': 'houses', 'version': '1', 'outcome': 'ok'}, 1.0)]
    >>> [(s.labels["le"], s.value) for s in latency.samples if s.name.endswith("_bucket")]
    [('0.01', 1.0), ('0.1', 1.0), ('+Inf', 1.0)]
    >>> in_flight.samples[0].value
    0.0
    """

    def __init__(self, *, latency_buckets: Sequence[float], size_buckets: Sequence[float]) -> None:
        self.latency_bounds = tuple(float(b) for b in latency_buckets)
        self.size_bounds = tuple(float(b) for b in size_buckets)
        self.lock = threading.Lock()
        self.counts: dict[tuple[str, str, str], int] = {}
        self.latency: dict[str, _Buckets] = {}
        self.sizes: dict[str, _Buckets] = {}
        self.in_flight: dict[str, int] = {}
        # Latencies per deployment in a log-bucketed sketch (``_sketch.py``): what the fleet's
        # percentiles are summed from. Cumulative, as the counters; the traffic reporter
        # writes each interval's difference.
        self.sketches: dict[str, dict[int, int]] = {}

    def started(self, deployment: str) -> None:
        with self.lock:
            self.in_flight[deployment] = self.in_flight.get(deployment, 0) + 1

    def finished(
        self,
        deployment: str,
        version: str,
        outcome: str,
        seconds: float,
        *,
        instances: int,
        started: bool = False,
    ) -> None:
        key = (deployment, version, outcome)
        with self.lock:
            if started:
                self.in_flight[deployment] = self.in_flight.get(deployment, 0) - 1
            self.counts[key] = self.counts.get(key, 0) + 1
            latency = self.latency.get(deployment)
            if latency is None:
                latency = self.latency[deployment] = _Buckets(len(self.latency_bounds))
            latency.counts[bisect_left(self.latency_bounds, seconds)] += 1
            latency.total += seconds
            sketch = self.sketches.get(deployment)
            if sketch is None:
                sketch = self.sketches[deployment] = {}
            bucket = bucket_of(seconds)
            sketch[bucket] = sketch.get(bucket, 0) + 1
            sizes = self.sizes.get(deployment)
            if sizes is None:
                sizes = self.sizes[deployment] = _Buckets(len(self.size_bounds))
            sizes.counts[bisect_left(self.size_bounds, instances)] += 1
            sizes.total += instances

    def totals(self) -> tuple[dict[tuple[str, str, str], int], dict[str, dict[int, int]]]:
        """Copies of the request counts (by deployment, version, outcome) and latency
        sketches (by deployment) so far: what the traffic reporter takes differences of."""
        with self.lock:
            return dict(self.counts), {k: dict(v) for k, v in self.sketches.items()}

    # ---- scrape time --------------------------------------------------------------------
    def requests_family(self) -> CounterMetricFamily:
        family = CounterMetricFamily(
            "modelpilot_requests",
            "Prediction requests by outcome (ok, client_error, server_error, model_error).",
            labels=["deployment", "version", "outcome"],
        )
        with self.lock:
            counts = dict(self.counts)
        for labels, count in counts.items():
            family.add_metric(list(labels), float(count))
        return family

    def collect(self) -> Iterable[Metric]:
        latency = HistogramMetricFamily(
            "modelpilot_request_duration_seconds",
            "Prediction request latency.",
            labels=["deployment"],
        )
        sizes = HistogramMetricFamily(
            "modelpilot_request_instances",
            "Instances per prediction request.",
            labels=["deployment"],
        )
        in_flight = GaugeMetricFamily(
            "modelpilot_requests_in_flight",
            "Prediction requests being processed.",
            labels=["deployment"],
        )
        with self.lock:
            snapshot = [
                (
                    latency,
                    self.latency_bounds,
                    {k: (list(v.counts), v.total) for k, v in self.latency.items()},
                ),
                (
                    sizes,
                    self.size_bounds,
                    {k: (list(v.counts), v.total) for k, v in self.sizes.items()},
                ),
            ]
            flying = dict(self.in_flight)
        for family, bounds, per_deployment in snapshot:
            for deployment, (counts, total) in per_deployment.items():
                cumulative, buckets = 0, []
                for bound, count in zip((*bounds, float("inf")), counts, strict=True):
                    cumulative += count
                    buckets.append((_le(bound), float(cumulative)))
                family.add_metric([deployment], buckets, total)
        for deployment, count in flying.items():
            in_flight.add_metric([deployment], float(count))
        return [self.requests_family(), latency, sizes, in_flight]
