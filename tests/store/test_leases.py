"""Leases and fencing on every backend: one holder at a time, a new epoch at each hand-over,
the database's clock on PostgreSQL, and a leader's writes refused once it lost its lease."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select

from fake_clock import FakeClock
from modelpilot.alerting import Alert, AlertStore
from modelpilot.rollout import RolloutStore
from modelpilot.store import (
    LeaseLost,
    LeaseTable,
    PredictionLog,
    PredictionRecord,
    compact_segments,
    create_database,
    fenced,
    log_stats,
)
from modelpilot.store._tables import prediction_segments


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_one_holder_until_expiry_then_a_new_epoch(engine: Engine, clock: FakeClock) -> None:
    table = LeaseTable(engine, clock=clock, database_time=False)
    first = table.take("controller", "a", ttl=5.0)
    assert first is not None and first.epoch == 1
    assert table.take("controller", "b", ttl=5.0) is None
    clock.advance(4)
    renewed = table.take("controller", "a", ttl=5.0)
    assert renewed is not None and renewed.epoch == 1  # a renewal keeps the epoch
    clock.advance(6)  # a stopped renewing: b takes over, the epoch moves on
    taken = table.take("controller", "b", ttl=5.0)
    assert taken is not None and taken.epoch == 2
    assert table.take("controller", "a", ttl=5.0) is None
    assert table.release("controller", "b")
    again = table.take("controller", "a", ttl=5.0)  # given up: taken at once
    assert again is not None and again.epoch == 3


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_postgresql_leases_follow_the_database_clock_not_the_replicas(
    database_url: str, clock: FakeClock
) -> None:
    """Two replicas whose clocks are an hour apart: on PostgreSQL neither can steal the
    other's lease, because expiry is written and compared in the database's time. (SQLite
    is one machine: the process clock is its only clock.)"""
    engine = create_database(database_url)
    try:
        ahead = FakeClock(clock() + 3600)
        a = LeaseTable(engine, clock=clock)
        b = LeaseTable(engine, clock=ahead)
        assert a.database_time and b.database_time
        lease = a.take("monitor", "a", ttl=30.0)
        assert lease is not None
        assert b.take("monitor", "b", ttl=30.0) is None  # an hour ahead, and still refused
        database_now = a.read_now()
        assert lease.expires_at == pytest.approx(database_now + 30.0, abs=5.0)
    finally:
        engine.dispose()


def test_a_leader_that_lost_its_lease_cannot_step_a_rollout(
    engine: Engine, clock: FakeClock
) -> None:
    a = RolloutStore(engine, clock=clock, database_time=False)
    b = RolloutStore(engine, clock=clock, database_time=False)
    a.ensure("houses", "houses", 1, "server")
    record = a.start(
        "houses", strategy="canary", candidate=2, primary=1, config={}, actor="alice", reason=""
    )
    stale = a.take_lease("rollout-controller", "a", ttl=5.0)
    clock.advance(10)  # a stalled (SIGSTOP) past its lease; b took over
    assert b.take_lease("rollout-controller", "b", ttl=5.0) is not None
    record.step = 1
    with fenced(stale), pytest.raises(LeaseLost, match=r"no longer held \(b holds epoch 2\)"):
        a.update(record)
    with fenced(stale), pytest.raises(LeaseLost):
        a.finish(record, "promoted", "woke up late", actor="controller")
    assert a.get(record.id).step == 0 and a.get(record.id).status == "running"
    # Outside a leader's job (an admin's request) nothing is fenced.
    a.update(record)
    assert a.get(record.id).step == 1


def test_alert_states_of_a_stale_monitor_leader_are_not_saved(
    engine: Engine, clock: FakeClock
) -> None:
    leases = LeaseTable(engine, clock=clock, database_time=False)
    stale = leases.take("monitor", "a", ttl=10.0)
    clock.advance(11)
    assert leases.take("monitor", "b", ttl=10.0) is not None
    store = AlertStore(engine)
    alert = Alert(
        rule="slow",
        deployment="houses",
        labels="",
        state="firing",
        severity="warning",
        value=180.0,
        threshold=100.0,
        started_at=clock(),
    )
    with fenced(stale), pytest.raises(LeaseLost):
        store.save(alert)
    assert store.open() == []


def test_compaction_by_a_stale_leader_merges_nothing(engine: Engine, clock: FakeClock) -> None:
    log = PredictionLog(engine)
    for i in range(6):
        log.append([PredictionRecord(f"p{i}", float(i), "m", 1, {"x": i}, {"prediction": i})])
    leases = LeaseTable(engine, clock=clock, database_time=False)
    stale = leases.take("rollout-controller", "a", ttl=5.0)
    assert stale is not None
    clock.advance(6)
    current = leases.take("rollout-controller", "b", ttl=5.0)
    with pytest.raises(LeaseLost):
        compact_segments(engine, older_than=100.0, fence=stale)
    assert log_stats(engine).segments == 6
    result = compact_segments(engine, older_than=100.0, fence=current)
    assert (result.segments_merged, log_stats(engine).segments) == (6, 1)
    with engine.connect() as connection:
        assert connection.execute(select(prediction_segments.c.n_rows)).scalars().all() == [6]
    assert log.window(model="m")["x"].tolist() == list(range(6))
