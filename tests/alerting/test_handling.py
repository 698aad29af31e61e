"""What people do with an alert (acknowledge, silence for a while, lift the silence) and the
stale mark of an alert whose data stopped arriving: on a real database, with a fake clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alerting_helpers import RecordingNotifier, feed

from fake_clock import FakeClock
from live_server import DEPLOYMENT
from modelpilot.alerting import AlertEngine, AlertStore
from modelpilot.errors import ConflictError, ModelpilotError, NotFoundError
from modelpilot.monitoring import Point
from modelpilot.spec import AlertRuleSpec
from modelpilot.store import create_database

SLOW = AlertRuleSpec(name="slow", metric="latency_p99_ms", threshold=100, aggregate="last")


class Audit:
    def __init__(self) -> None:
        self.entries: list[tuple[str, str, str, dict[str, Any]]] = []

    def __call__(self, actor: str, action: str, target: str, details: Any) -> None:
        self.entries.append((actor, action, target, dict(details)))


@pytest.fixture
def store(tmp_path: Path) -> AlertStore:
    return AlertStore(create_database(f"sqlite:///{tmp_path / 'metadata.db'}"))


def _engine(
    store: AlertStore, clock: FakeClock, notifier: RecordingNotifier, audit: Audit
) -> AlertEngine:
    return AlertEngine([SLOW], store=store, notifiers=[notifier], audit=audit, clock=clock)


def _firing(
    store: AlertStore, clock: FakeClock
) -> tuple[AlertEngine, Any, RecordingNotifier, Audit]:
    """An engine whose alert fires (a p99 of 250 ms against 100), with what it told and
    audited; ``engine.handling`` is there."""
    audit, notifier = Audit(), RecordingNotifier()
    engine = _engine(store, clock, notifier, audit)
    feed(engine, clock, "latency_p99_ms", [250.0])
    [alert] = engine.active()
    assert engine.handling is not None
    return engine, alert, notifier, audit


def test_an_acknowledgement_is_kept_audited_and_seen_by_every_process(
    store: AlertStore, clock: FakeClock
) -> None:
    leader, alert, _, audit = _firing(store, clock)
    assert leader.handling is not None
    leader.handling.acknowledge(alert.id, actor="ann")
    clock.advance(10)
    leader.handling.acknowledge(alert.id, actor="bob")  # the first acknowledgement stands
    # The leader goes on saving its copy of the alert at every evaluation...
    feed(leader, clock, "latency_p99_ms", [260.0, 270.0])
    # ...and every process, the leader too, shows who is on it.
    follower = _engine(store, clock, RecordingNotifier(), Audit())
    for engine in (leader, follower):
        [shown] = engine.snapshot()["active"]
        assert shown["acknowledged_by"] == "ann", engine
    assert [(a, act, t) for a, act, t, _ in audit.entries] == [
        ("ann", "alert.acknowledge", DEPLOYMENT)
    ]
    assert audit.entries[0][3]["rule"] == "slow"


def test_acknowledging_a_resolved_or_unknown_alert_says_why_not(
    store: AlertStore, clock: FakeClock
) -> None:
    engine = _engine(store, clock, RecordingNotifier(), Audit())
    feed(engine, clock, "latency_p99_ms", [250.0, 50.0])
    [resolved] = engine.recent()
    assert engine.handling is not None
    with pytest.raises(ConflictError, match=r"alert \d+ \(slow\) resolved already"):
        engine.handling.acknowledge(resolved.id, actor="ann")
    with pytest.raises(NotFoundError, match="alert '999' was not found"):
        engine.handling.acknowledge(999, actor="ann")


def test_a_silence_mutes_the_series_until_it_ends_even_when_it_fires_again(
    store: AlertStore, clock: FakeClock
) -> None:
    engine, alert, notifier, audit = _firing(store, clock)
    assert notifier.statuses() == [("slow", "firing")]
    assert engine.handling is not None
    silence = engine.handling.silence(alert.id, duration_s=600, actor="ann", reason="known")
    assert silence.ends_at == clock() + 600
    # Resolved and fired again within the silence: nobody is told; the alert still shows.
    feed(engine, clock, "latency_p99_ms", [50.0, 250.0])
    assert notifier.statuses() == [("slow", "firing")]
    [again] = engine.snapshot()["active"]
    assert again["silenced_until"] == silence.ends_at and again["silenced_by"] == "ann"
    # Once the silence is over, the next change is notified again.
    clock.advance(600)
    feed(engine, clock, "latency_p99_ms", [50.0])
    assert notifier.statuses() == [("slow", "firing"), ("slow", "resolved")]
    assert [action for _, action, _, _ in audit.entries] == ["alert.silence"]


def test_a_silence_of_zero_seconds_lifts_it_and_a_long_one_is_refused(
    store: AlertStore, clock: FakeClock
) -> None:
    engine, alert, notifier, audit = _firing(store, clock)
    assert engine.handling is not None
    engine.handling.silence(alert.id, duration_s=3600, actor="ann", reason="")
    engine.handling.silence(alert.id, duration_s=0, actor="ann", reason="fixed")
    assert engine.snapshot()["silences"] == []
    feed(engine, clock, "latency_p99_ms", [50.0])
    assert notifier.statuses() == [("slow", "firing"), ("slow", "resolved")]
    assert [action for _, action, _, _ in audit.entries] == ["alert.silence", "alert.unsilence"]
    with pytest.raises(ModelpilotError, match=r"a silence lasts from 0 .* to 2.592e\+06"):
        engine.handling.silence(alert.id, duration_s=90 * 86400, actor="ann", reason="")


def test_an_alert_whose_values_stop_arriving_is_stale(store: AlertStore, clock: FakeClock) -> None:
    engine = _engine(store, clock, RecordingNotifier(), Audit())
    feed(engine, clock, "latency_p99_ms", [250.0, 260.0, 270.0])  # a value every 10 s
    [alert] = engine.snapshot()["active"]
    assert alert["stale"] is None
    clock.advance(29)  # not quite three intervals
    assert engine.snapshot()["active"][0]["stale"] is None
    clock.advance(2)
    stale = engine.snapshot()["active"][0]["stale"]
    assert stale["since"] == alert["last_value_at"]
    assert stale["reason"].startswith("no new latency_p99_ms value for 0.5 min")
    feed(engine, clock, "latency_p99_ms", [280.0])  # a value again: fresh
    assert engine.snapshot()["active"][0]["stale"] is None


def test_an_alert_of_a_deployment_without_requests_is_stale(
    store: AlertStore, clock: FakeClock
) -> None:
    # The key metric point repeats the last labels' value at every tick: only the requests
    # say that nothing new is measured.
    rule = AlertRuleSpec(name="mae", metric="key_metric", threshold=25000, aggregate="last")
    engine = AlertEngine([rule], store=store, clock=clock)

    def tick(requests: float) -> None:
        clock.advance(10)
        engine.evaluate(
            [
                Point("key_metric", DEPLOYMENT, 30000.0, clock(), "metric=mae"),
                Point("request_rate", DEPLOYMENT, requests, clock()),
            ]
        )

    for requests in (5.0, 5.0, 0.0, 0.0, 0.0):
        tick(requests)
    assert engine.snapshot()["active"][0]["stale"] is None  # idle for 20 s of a 30 s limit
    tick(0.0)
    tick(0.0)
    stale = engine.snapshot()["active"][0]["stale"]
    assert stale["reason"] == f"no requests to {DEPLOYMENT} for 0.7 min: nothing new is measured"
    tick(3.0)
    assert engine.snapshot()["active"][0]["stale"] is None
