"""Fleet-wide traffic: each replica's counts per interval in the database, summed by the leader.

Requests, latencies and input checks are counted on the request path, in memory, per process
(``_request_stats.py``, ``InputStats``). With N replicas the monitor's leader sees only its own
share of them. So every replica writes what it counted in each ``monitoring.interval_s`` as one
row of ``traffic_intervals`` (:class:`TrafficReporter`, from every replica's control loop, and
once more when the replica stops), and the monitor's leader sums the rows it has not summed yet
(:class:`TrafficLedger`): one conditional update marks them summed and returns them, fenced by
the leader's lease, so each row is counted exactly once even across a hand-over. Summed rows
are kept an hour, then pruned: the table holds about ``replicas * 3600 / interval_s`` rows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Engine, delete, insert, update

from modelpilot.monitoring._metrics import ServingMetrics
from modelpilot.monitoring._sketch import merge_sketches
from modelpilot.store import check_fence
from modelpilot.store._tables import traffic_intervals
from modelpilot.types import Clock

__all__ = ["FleetTraffic", "TrafficLedger", "TrafficReporter", "TrafficTotals"]

#: How long summed rows are kept.
RETENTION_S = 3600.0
_INPUT_KEYS = ("values", "missing", "out_of_range", "unseen")


@dataclass
class TrafficTotals:
    """Counts of some span of traffic: one replica's interval, or the fleet's sum.

    ``requests`` by (deployment, version, outcome); ``sketches`` the latency sketch of each
    deployment; ``inputs`` per deployment, as :meth:`InputStats.snapshot` has them.
    """

    requests: dict[tuple[str, str, str], int] = field(default_factory=dict)
    sketches: dict[str, dict[int, int]] = field(default_factory=dict)
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    started_at: float = math.inf
    ended_at: float = -math.inf

    @property
    def empty(self) -> bool:
        return not self.requests and not any(i.get("requests") for i in self.inputs.values())

    @property
    def span(self) -> float:
        """Seconds from the first row's start to the last row's end (0 when empty)."""
        return max(0.0, self.ended_at - self.started_at)

    def minus(self, before: TrafficTotals) -> TrafficTotals:
        """What was counted since ``before`` (both cumulative)."""
        requests = {
            k: v - before.requests.get(k, 0)
            for k, v in self.requests.items()
            if v != before.requests.get(k, 0)
        }
        sketches: dict[str, dict[int, int]] = {}
        for name, sketch in self.sketches.items():
            old_sketch = before.sketches.get(name, {})
            fresh = {
                b: n - old_sketch.get(b, 0) for b, n in sketch.items() if n != old_sketch.get(b, 0)
            }
            if fresh:
                sketches[name] = fresh
        inputs: dict[str, dict[str, Any]] = {}
        for name, counted in self.inputs.items():
            old: dict[str, Any] = before.inputs.get(name, {})
            delta: dict[str, Any] = {
                key: {
                    f: n - old.get(key, {}).get(f, 0)
                    for f, n in counted[key].items()
                    if n != old.get(key, {}).get(f, 0)
                }
                for key in _INPUT_KEYS
            }
            delta["instances"] = counted["instances"] - old.get("instances", 0)
            delta["requests"] = counted["requests"] - old.get("requests", 0)
            if delta["requests"]:
                inputs[name] = delta
        return TrafficTotals(requests, sketches, inputs)

    def add(self, other: TrafficTotals) -> None:
        for labels, count in other.requests.items():
            self.requests[labels] = self.requests.get(labels, 0) + count
        for name, sketch in other.sketches.items():
            self.sketches[name] = merge_sketches([self.sketches.get(name, {}), sketch])
        for name, delta in other.inputs.items():
            mine = self.inputs.setdefault(
                name, {**{k: {} for k in _INPUT_KEYS}, "instances": 0, "requests": 0}
            )
            for key in _INPUT_KEYS:
                for feature, n in delta[key].items():
                    mine[key][feature] = mine[key].get(feature, 0) + n
            mine["instances"] += delta["instances"]
            mine["requests"] += delta["requests"]
        self.started_at = min(self.started_at, other.started_at)
        self.ended_at = max(self.ended_at, other.ended_at)

    def to_json(self) -> str:
        return orjson.dumps(
            {
                "requests": [[*key, n] for key, n in self.requests.items()],
                "sketches": {k: [[b, n] for b, n in v.items()] for k, v in self.sketches.items()},
                "inputs": self.inputs,
            }
        ).decode()

    @classmethod
    def from_row(cls, payload: str, started_at: float, ended_at: float) -> TrafficTotals:
        data = orjson.loads(payload)
        return cls(
            {(d, v, o): int(n) for d, v, o, n in data["requests"]},
            {k: {int(b): int(n) for b, n in v} for k, v in data["sketches"].items()},
            data["inputs"],
            started_at,
            ended_at,
        )

    def deployment(self, name: str) -> dict[str, int]:
        """Requests of deployment ``name`` by outcome."""
        out: dict[str, int] = {}
        for (deployment, _, outcome), n in self.requests.items():
            if deployment == name:
                out[outcome] = out.get(outcome, 0) + n
        return out

    def versions(self, name: str) -> dict[str, int]:
        """Requests of deployment ``name`` answered by each version (errors before a version
        answered have none and are left out)."""
        out: dict[str, int] = {}
        for (deployment, version, _), n in self.requests.items():
            if deployment == name and version:
                out[version] = out.get(version, 0) + n
        return out


def _current(metrics: ServingMetrics) -> TrafficTotals:
    requests, sketches = metrics.request_stats.totals()
    with metrics.lock:
        inputs = {name: stats.snapshot() for name, stats in metrics.inputs.items()}
    return TrafficTotals(requests, sketches, inputs)


class TrafficReporter:
    """Writes this replica's traffic of each interval as one ``traffic_intervals`` row.

    :meth:`flush` is called every control-loop tick; it writes when an interval boundary
    (a multiple of ``interval_s`` on the clock) has passed since the last write, and only if
    something was counted. ``flush(force=True)`` writes at once: the last one, at a stop.

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> engine, now = create_database("sqlite://"), [95.0]
    >>> metrics = ServingMetrics(process=False)
    >>> reporter = TrafficReporter(engine, metrics, "replica-a", interval_s=10,
    ...                            clock=lambda: now[0])
    >>> metrics.observe_request("houses", "1", "ok", 0.004, instances=1)
    >>> now[0] = 99.0
    >>> reporter.flush()  # the interval [90, 100) is not over
    False
    >>> now[0] = 100.5
    >>> reporter.flush(), TrafficLedger(engine, clock=lambda: now[0]).consume().total.requests
    (True, {('houses', '1', 'ok'): 1})
    """

    def __init__(
        self,
        engine: Engine,
        metrics: ServingMetrics,
        replica: str,
        *,
        interval_s: float,
        clock: Clock = time.time,
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.replica = replica
        self.interval_s = interval_s
        self.clock = clock
        self._written = TrafficTotals()
        self._since = clock()

    def flush(self, *, force: bool = False) -> bool:
        """Write what was counted since the last write, if due; whether a row was written."""
        now = self.clock()
        boundary = math.floor(now / self.interval_s)
        if not force and boundary <= math.floor(self._since / self.interval_s):
            return False
        current = _current(self.metrics)
        delta = current.minus(self._written)
        if not delta.empty:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(traffic_intervals).values(
                        replica=self.replica,
                        started_at=self._since,
                        ended_at=now,
                        consumed_at=None,
                        payload=delta.to_json(),
                    )
                )
        # Only once written: after a failed write the counts go in the next row.
        self._written, self._since = current, now
        return not delta.empty


class TrafficLedger:
    """The monitor leader's side: sums the rows no leader has summed yet."""

    def __init__(self, engine: Engine, *, clock: Clock = time.time) -> None:
        self.engine = engine
        self.clock = clock

    def consume(self) -> FleetTraffic:
        """Mark every unsummed row summed and return them (fenced by the caller's lease: a
        leader that lost it sums nothing)."""
        now = self.clock()
        with self.engine.begin() as connection:
            check_fence(connection)
            rows = connection.execute(
                update(traffic_intervals)
                .where(traffic_intervals.c.consumed_at.is_(None))
                .values(consumed_at=now)
                .returning(
                    traffic_intervals.c.replica,
                    traffic_intervals.c.payload,
                    traffic_intervals.c.started_at,
                    traffic_intervals.c.ended_at,
                )
            ).all()
        fleet = FleetTraffic()
        for row in rows:
            part = TrafficTotals.from_row(row.payload, row.started_at, row.ended_at)
            fleet.total.add(part)
            fleet.replicas.setdefault(row.replica, TrafficTotals()).add(part)
        return fleet

    def prune(self, *, older_than: float | None = None) -> int:
        """Delete summed rows that ended before ``older_than`` (an hour ago by default)."""
        cutoff = self.clock() - RETENTION_S if older_than is None else older_than
        with self.engine.begin() as connection:
            return int(
                connection.execute(
                    delete(traffic_intervals).where(
                        traffic_intervals.c.consumed_at.is_not(None),
                        traffic_intervals.c.ended_at < cutoff,
                    )
                ).rowcount
            )


@dataclass
class FleetTraffic:
    """Rows the leader summed: their ``total`` and each replica's part."""

    total: TrafficTotals = field(default_factory=TrafficTotals)
    replicas: dict[str, TrafficTotals] = field(default_factory=dict)

    def request_rate(self, deployment: str, *, min_span: float) -> float:
        """Requests per second of ``deployment`` across the fleet: each replica's count over
        the time its rows cover (at least ``min_span``), added up. Replicas write at their
        own moments; one span for all would stretch with their offsets."""
        return sum(
            sum(part.deployment(deployment).values()) / max(part.span, min_span)
            for part in self.replicas.values()
        )


def outcome_rates(outcomes: Mapping[str, int]) -> tuple[int, float, float]:
    """``(requests, error rate, client error rate)`` of a deployment's outcome counts; the
    error rate counts server and model errors (client errors are not the service's).

    Examples
    --------
    >>> outcome_rates({"ok": 6, "client_error": 1, "model_error": 1})
    (8, 0.125, 0.125)
    """
    count = sum(outcomes.values())
    if not count:
        return 0, 0.0, 0.0
    errors = outcomes.get("server_error", 0) + outcomes.get("model_error", 0)
    return count, errors / count, outcomes.get("client_error", 0) / count
