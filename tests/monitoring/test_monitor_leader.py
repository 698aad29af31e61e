"""Two worker processes, one monitor: the ``monitor`` lease with an injected clock.

Each "worker" here is what a server process builds (its own ``ServingMetrics``, ``Monitor`` and
``AlertEngine`` on the one project database) with a notifier that records; the clock is a
number the test moves, so the lease's hand-over takes no waiting.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from fake_clock import FakeClock
from live_server import DEPLOYMENT
from modelpilot.alerting import AlertEngine, AlertStore
from modelpilot.inference import DeploymentManager
from modelpilot.monitoring import Monitor, MonitorLeader, ServingMetrics
from modelpilot.project import Project
from modelpilot.rollout import RolloutStore
from modelpilot.spec import AlertRuleSpec
from project_helpers import register, write_project

INTERVAL = 10.0  # monitoring.interval_s of the project file's template
TTL = 10.0  # MonitorLeader's default lease


@dataclass
class RecordingNotifier:
    events: list[dict[str, Any]] = field(default_factory=list)

    def notify(self, event: Any) -> None:
        self.events.append(dict(event))

    def close(self, timeout: float = 5.0) -> None:
        return None

    def statuses(self) -> list[tuple[str, str]]:
        return [(e["rule"], e["status"]) for e in self.events]


@dataclass
class Worker:
    """What one server process holds: its metrics, monitor, alert engine and lease."""

    metrics: ServingMetrics
    monitor: Monitor
    alerts: AlertEngine
    notifier: RecordingNotifier
    leader: MonitorLeader

    def requests(self, n: int) -> None:
        for _ in range(n):
            self.metrics.observe_request(DEPLOYMENT, "1", "ok", 0.01, instances=1)


RULES = [
    AlertRuleSpec(name="busy", metric="request_rate", threshold=0.5, window_s=15),
    AlertRuleSpec(name="memory", metric="memory_rss_bytes", threshold=1, severity="info"),
]


@pytest.fixture(scope="module")
def registered(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Path:
    directory = write_project(tmp_path_factory.mktemp("leader") / "project")
    house_data[1].to_parquet(directory / "holdout.parquet")
    register(directory, house_model_file, production=True)
    return directory


@pytest.fixture
def workers(registered: Path, tmp_path: Path) -> Iterator[tuple[Worker, Worker, FakeClock, Any]]:
    """Two workers on one copy of the project; (a, b, clock, the project)."""
    project = Project.open(shutil.copytree(registered, tmp_path / "project"), environ={})
    clock = FakeClock(project.registry.resolve(f"{DEPLOYMENT}@production").created_at + 60)
    manager = DeploymentManager(
        project.registry, project.spec.deployment_specs, settings=project.spec.serving
    )
    manager.load_all(clock=clock)
    built = []
    for worker_id in ("worker-a", "worker-b"):
        metrics = ServingMetrics(process=False)
        monitor = Monitor(project, metrics, manager, clock=clock, replica=worker_id)
        notifier = RecordingNotifier()
        alerts = AlertEngine(
            RULES,
            store=AlertStore(project.engine),
            notifiers=[notifier],
            clock=clock,
            firing_gauge=metrics.alerts_firing,
        )
        monitor.listeners.append(alerts.on_points)
        store = RolloutStore(project.engine, clock=clock)
        leader = MonitorLeader(monitor, store, worker_id, alerts=alerts, ttl=TTL)
        built.append(Worker(metrics, monitor, alerts, notifier, leader))
    yield built[0], built[1], clock, project
    manager.close()
    project.engine.dispose()


def test_one_worker_records_while_both_tick(
    workers: tuple[Worker, Worker, FakeClock, Any],
) -> None:
    a, b, clock, _ = workers
    assert [a.leader.tick(), b.leader.tick()] == [True, False]
    for _ in range(3):
        a.requests(10)
        b.requests(10)
        clock.advance(INTERVAL)
        b.monitor.traffic.flush()  # every worker's control loop writes its interval's counts
        assert [a.leader.tick(), b.leader.tick()] == [True, False]

    # One point per interval, from the holder alone, and one notification of each alert.
    series = a.monitor.series.query("memory_rss_bytes")
    assert [p.ts for p in series] == [clock() - 2 * INTERVAL, clock() - INTERVAL, clock()]
    assert [p.value for p in a.monitor.series.query("request_rate", deployment=DEPLOYMENT)] == [
        2.0,
        2.0,
        2.0,
    ]  # 10 requests per 10 s... of each worker: the holder sums both
    assert [p.value for p in a.monitor.series.query("request_count", deployment=DEPLOYMENT)] == [
        20,
        20,
        20,
    ]
    assert sorted(a.notifier.statuses()) == [("busy", "firing"), ("memory", "firing")]
    assert b.notifier.events == []
    # The follower shows the holder's alerts (GET /v1/alerts, the firing gauge).
    assert sorted(x.rule for x in b.alerts.active()) == ["busy", "memory"]
    gauge = b.metrics.registry.get_sample_value(
        "modelpilot_alerts_firing", {"rule": "memory", "severity": "info"}
    )
    assert gauge == 1.0


def test_the_next_worker_takes_over_without_notifying_again(
    workers: tuple[Worker, Worker, FakeClock, Any],
) -> None:
    a, b, clock, _ = workers
    a.leader.tick()
    a.requests(10)
    clock.advance(INTERVAL)
    assert a.leader.tick() and not b.leader.tick()
    assert sorted(a.notifier.statuses()) == [("busy", "firing"), ("memory", "firing")]

    # Worker a dies: it stops renewing its lease. Until the lease runs out b only follows.
    b.requests(500)  # b's own traffic while nobody recorded: summed once b records
    clock.advance(TTL / 2)
    assert not b.leader.tick()
    clock.advance(TTL / 2 + 1)
    assert b.leader.tick() and b.leader.leading
    clock.advance(INTERVAL)
    b.requests(10)
    assert b.leader.tick()

    counts = [p.value for p in b.monitor.series.query("request_count", deployment=DEPLOYMENT)]
    assert counts == [10, 510]  # every request once, across the hand-over
    rates = [p.value for p in b.monitor.series.query("request_rate", deployment=DEPLOYMENT)]
    # b's rows cover the 31 s from its start: its rate is over that time, not one interval.
    assert rates == [1.0, pytest.approx(510 / (INTERVAL + TTL + 1 + INTERVAL))]
    # Both alerts still fire: b reloaded them from the database, so nobody is told twice.
    assert b.notifier.events == []
    assert {(x.rule, x.state) for x in b.alerts.active()} == {
        ("busy", "firing"),
        ("memory", "firing"),
    }
    # When the traffic stops, b (and only b) says the busy alert resolved, once.
    for _ in range(3):
        clock.advance(INTERVAL)
        b.leader.tick()
    assert b.notifier.statuses() == [("busy", "resolved")]
    assert sorted(a.notifier.statuses()) == [("busy", "firing"), ("memory", "firing")]

    # Had a only stalled, not died: it ticks again, finds b holding the lease, and follows.
    assert not a.leader.tick()
    assert [x.rule for x in a.alerts.active()] == ["memory"]


def test_a_holder_that_keeps_ticking_keeps_the_lease(
    workers: tuple[Worker, Worker, FakeClock, Any],
) -> None:
    a, b, clock, _ = workers
    for _ in range(5):  # far longer than the lease, renewed at every tick
        assert [a.leader.tick(), b.leader.tick()] == [True, False]
        clock.advance(TTL * 0.9)
    assert a.leader.leading and not b.leader.leading
