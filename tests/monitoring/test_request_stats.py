"""RequestStats: request metrics kept as plain numbers must expose what prometheus-client would.

The same observations go to a ``RequestStats`` and to prometheus-client's own ``Counter``,
``Histogram`` and ``Gauge`` with the same names, labels and buckets; both registries are
rendered and parsed back, and every sample must match: counts, cumulative buckets (a value on a
bound falls in that bound's bucket), sums, and the in-flight gauge. prometheus-client's
``_created`` series are left out: RequestStats does not write them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelpilot.monitoring._request_stats import RequestStats

LATENCY_BUCKETS = (0.001, 0.005, 0.025, 0.1, 0.5, 2.5)
SIZE_BUCKETS = (1, 2, 8, 64, 1000)
DEPLOYMENTS = ("houses", "flaky", "(unknown)")
OUTCOMES = ("ok", "client_error", "server_error", "model_error")

Exposition = dict[str, tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]]


@dataclass(frozen=True)
class Started:
    deployment: str


@dataclass(frozen=True)
class Finished:
    deployment: str
    version: str
    outcome: str
    seconds: float
    instances: int
    started: bool


class Reference:
    """The same metrics made of prometheus-client's own classes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "modelpilot_requests",
            "Prediction requests by outcome (ok, client_error, server_error, model_error).",
            ["deployment", "version", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelpilot_request_duration_seconds",
            "Prediction request latency.",
            ["deployment"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.sizes = Histogram(
            "modelpilot_request_instances",
            "Instances per prediction request.",
            ["deployment"],
            buckets=SIZE_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "modelpilot_requests_in_flight",
            "Prediction requests being processed.",
            ["deployment"],
            registry=self.registry,
        )

    def apply(self, event: Started | Finished) -> None:
        if isinstance(event, Started):
            self.in_flight.labels(event.deployment).inc()
            return
        if event.started:
            self.in_flight.labels(event.deployment).dec()
        self.requests.labels(event.deployment, event.version, event.outcome).inc()
        self.latency.labels(event.deployment).observe(event.seconds)
        self.sizes.labels(event.deployment).observe(event.instances)


def _apply(stats: RequestStats, event: Started | Finished) -> None:
    if isinstance(event, Started):
        stats.started(event.deployment)
        return
    stats.finished(
        event.deployment,
        event.version,
        event.outcome,
        event.seconds,
        instances=event.instances,
        started=event.started,
    )


def _parse(registry: CollectorRegistry) -> Exposition:
    """family name -> (type, {(sample name, labels): value}), without ``_created`` samples."""
    families: Exposition = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        if family.name.endswith("_created"):  # the text parser reads them as gauges of their own
            continue
        samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for s in family.samples
            if not s.name.endswith("_created")
        }
        families[family.name] = (family.type, samples)
    return families


def _expositions(events: Sequence[Started | Finished]) -> tuple[Exposition, Exposition]:
    stats = RequestStats(latency_buckets=LATENCY_BUCKETS, size_buckets=SIZE_BUCKETS)
    reference = Reference()
    for event in events:
        _apply(stats, event)
        reference.apply(event)
    ours = CollectorRegistry()
    ours.register(stats)
    return _parse(ours), _parse(reference.registry)


deployments = st.sampled_from(DEPLOYMENTS)
events = st.one_of(
    st.builds(Started, deployments),
    st.builds(
        Finished,
        deployments,
        st.sampled_from(("", "1", "2")),
        st.sampled_from(OUTCOMES),
        # On a bucket's bound, between bounds, past the last one.
        st.one_of(
            st.sampled_from(LATENCY_BUCKETS),
            st.floats(min_value=0.0, max_value=10.0, allow_nan=False),
        ),
        st.one_of(st.sampled_from(SIZE_BUCKETS), st.integers(min_value=0, max_value=5000)),
        st.booleans(),
    ),
)


@settings(max_examples=150, deadline=None, database=None)
@given(st.lists(events, max_size=40))
def test_the_exposition_is_what_prometheus_client_writes_for_the_same_requests(
    history: list[Started | Finished],
) -> None:
    ours, reference = _expositions(history)
    assert ours == reference


def test_values_on_a_bound_fall_in_that_bounds_bucket() -> None:
    # A fixed case, readable on its own: 0.005 s counts in le="0.005", 2 instances in le="2.0".
    ours, reference = _expositions(
        [
            Started("houses"),
            Finished("houses", "1", "ok", 0.005, 2, True),
            Finished("houses", "1", "client_error", 3.0, 0, False),
        ]
    )
    assert ours == reference
    latency = ours["modelpilot_request_duration_seconds"][1]
    bucket = "modelpilot_request_duration_seconds_bucket"
    assert latency[(bucket, frozenset({("deployment", "houses"), ("le", "0.001")}))] == 0
    assert latency[(bucket, frozenset({("deployment", "houses"), ("le", "0.005")}))] == 1
    assert latency[(bucket, frozenset({("deployment", "houses"), ("le", "+Inf")}))] == 2
    sizes = ours["modelpilot_request_instances"][1]
    bucket = "modelpilot_request_instances_bucket"
    assert sizes[(bucket, frozenset({("deployment", "houses"), ("le", "1.0")}))] == 1  # the 0
    assert sizes[(bucket, frozenset({("deployment", "houses"), ("le", "2.0")}))] == 2
    assert ours["modelpilot_requests_in_flight"][1] == {
        ("modelpilot_requests_in_flight", frozenset({("deployment", "houses")})): 0.0
    }
