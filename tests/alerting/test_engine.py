"""The alert engine's states on a fake clock: pending, firing, resolved, hysteresis, one alert
per series, the firing gauge, and state that survives a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from alerting_helpers import DEPLOYMENT, RecordingNotifier, feed

from fake_clock import FakeClock
from modelpilot.alerting import AlertEngine, AlertStore
from modelpilot.monitoring import Point, ServingMetrics, format_labels
from modelpilot.spec import AlertRuleSpec
from modelpilot.store import create_database


def slow_rule(**overrides: object) -> AlertRuleSpec:
    """p99 above 100 ms; each point is its own window (points every 10 s, window 10 s)."""
    settings: dict[str, object] = {
        "name": "slow",
        "metric": "latency_p99_ms",
        "threshold": 100.0,
        "window_s": 10.0,
        "for_s": 30.0,
    }
    settings.update(overrides)
    return AlertRuleSpec.model_validate(settings)


def engine_with(
    clock: FakeClock, *rules: AlertRuleSpec, store: AlertStore | None = None
) -> tuple[AlertEngine, RecordingNotifier]:
    notifier = RecordingNotifier()
    engine = AlertEngine(list(rules), clock=clock, notifiers=[notifier], store=store)
    return engine, notifier


def states(engine: AlertEngine) -> list[tuple[str, str, str]]:
    return [(a.rule, a.labels, a.state) for a in engine.active()]


def test_an_alert_is_pending_until_the_condition_held_for_s_then_fires_once(
    clock: FakeClock,
) -> None:
    engine, notifier = engine_with(clock, slow_rule())
    start = clock() + 10
    assert feed(engine, clock, "latency_p99_ms", [150, 160, 170]) == []
    assert states(engine) == [("slow", "", "pending")]
    fired = feed(engine, clock, "latency_p99_ms", [180])  # 30 s after the first breach
    assert [(a.rule, a.state, a.value) for a in fired] == [("slow", "firing", 180)]
    (alert,) = engine.active()
    assert (alert.started_at, alert.fired_at, alert.deployment) == (start, start + 30, DEPLOYMENT)
    # Staying above the threshold for an hour notifies nobody again.
    assert feed(engine, clock, "latency_p99_ms", [200] * 360) == []
    assert notifier.statuses() == [("slow", "firing")]
    event = notifier.events[0]
    assert (event["metric"], event["comparison"], event["threshold"], event["state"]) == (
        "latency_p99_ms",
        ">",
        100.0,
        "firing",
    )


def test_a_pending_alert_whose_condition_stops_is_forgotten_without_a_notification(
    clock: FakeClock,
) -> None:
    engine, notifier = engine_with(clock, slow_rule())
    feed(engine, clock, "latency_p99_ms", [150, 160, 90])  # 20 s of breach, then fine
    assert engine.active() == []
    feed(engine, clock, "latency_p99_ms", [150, 160, 170])  # a fresh start: 20 s again
    assert states(engine) == [("slow", "", "pending")]
    assert notifier.events == []
    assert engine.recent() == []


def test_the_window_aggregate_decides_not_single_points(clock: FakeClock) -> None:
    rule = slow_rule(window_s=60.0, aggregate="mean", for_s=0.0)
    engine, _ = engine_with(clock, rule)
    # One spike of 400 among 50s: the mean of the last minute stays under 100 ...
    feed(engine, clock, "latency_p99_ms", [50, 50, 50, 50, 50])
    assert feed(engine, clock, "latency_p99_ms", [300]) == []
    assert engine.active() == []
    # ... a sustained rise does not.
    fired = feed(engine, clock, "latency_p99_ms", [300])
    assert [a.value for a in fired] == pytest.approx([(50 * 4 + 300 * 2) / 6])
    # The max of the window fires on the spike alone.
    spiky, _ = engine_with(clock, slow_rule(name="spiky", window_s=60.0, aggregate="max", for_s=0))
    assert [a.rule for a in feed(spiky, clock, "latency_p99_ms", [50, 400])] == ["spiky"]


def test_hysteresis_a_flapping_metric_notifies_once_then_resolves_once(clock: FakeClock) -> None:
    rule = slow_rule(for_s=0.0, clear_threshold=80.0, clear_for_s=60.0)
    engine, notifier = engine_with(clock, rule)
    # Twenty minutes of a metric hovering around its threshold: above, below, above, ...
    feed(engine, clock, "latency_p99_ms", [120, 95] * 60)
    # Short dips past the clear threshold (shorter than clear_for_s) do not resolve it either.
    feed(engine, clock, "latency_p99_ms", [70, 70, 120, 70, 70, 70, 70, 110] * 5)
    assert notifier.statuses() == [("slow", "firing")]
    assert states(engine) == [("slow", "", "firing")]
    # A full minute below 80: resolved, once.
    resolved = feed(engine, clock, "latency_p99_ms", [70] * 7)
    assert [(a.state, a.resolved_at) for a in resolved] == [("resolved", clock())]
    assert notifier.statuses() == [("slow", "firing"), ("slow", "resolved")]
    assert engine.active() == []
    assert [(a.rule, a.state) for a in engine.recent()] == [("slow", "resolved")]


def test_without_hysteresis_the_same_flapping_series_notifies_over_and_over(
    clock: FakeClock,
) -> None:
    """The counterpart of the test above: what clear_threshold and clear_for_s prevent."""
    engine, notifier = engine_with(clock, slow_rule(for_s=0.0))
    feed(engine, clock, "latency_p99_ms", [120, 95] * 60)
    assert len(notifier.events) == 120


def test_a_resolved_alert_that_breaches_again_is_a_new_alert(clock: FakeClock) -> None:
    engine, notifier = engine_with(clock, slow_rule(for_s=0.0))
    feed(engine, clock, "latency_p99_ms", [150, 50, 150])
    assert notifier.statuses() == [("slow", "firing"), ("slow", "resolved"), ("slow", "firing")]
    assert len(engine.active()) == 1 and len(engine.recent()) == 1


def test_one_alert_per_deployment_and_label_set_filtered_by_the_rules_labels(
    clock: FakeClock,
) -> None:
    rule = AlertRuleSpec(
        name="missing", metric="missing_rate", threshold=0.1, window_s=10, labels={}
    )
    only_size = AlertRuleSpec(
        name="size_missing",
        metric="missing_rate",
        threshold=0.1,
        window_s=10,
        labels={"feature": "size"},
        deployment="houses",
    )
    engine, notifier = engine_with(clock, rule, only_size)
    clock.advance(10)
    now = clock()
    engine.evaluate(
        [
            Point("missing_rate", "houses", 0.5, now, format_labels({"feature": "size"})),
            Point("missing_rate", "houses", 0.3, now, format_labels({"feature": "rooms"})),
            Point("missing_rate", "houses", 0.01, now, format_labels({"feature": "age"})),
            Point("missing_rate", "flats", 0.4, now, format_labels({"feature": "size"})),
        ]
    )
    fired = sorted((e["rule"], e["deployment"], e["labels"]["feature"]) for e in notifier.events)
    assert fired == [
        ("missing", "flats", "size"),
        ("missing", "houses", "rooms"),
        ("missing", "houses", "size"),
        ("size_missing", "houses", "size"),
    ]


def test_a_series_that_stops_reporting_keeps_its_alert_state(clock: FakeClock) -> None:
    engine, notifier = engine_with(clock, slow_rule(for_s=0.0))
    feed(engine, clock, "latency_p99_ms", [150])
    clock.advance(3600)  # no traffic, no latency points
    engine.evaluate([Point("error_rate", DEPLOYMENT, 0.0, clock())])
    assert states(engine) == [("slow", "", "firing")]
    assert feed(engine, clock, "latency_p99_ms", [40])[0].state == "resolved"
    assert notifier.statuses() == [("slow", "firing"), ("slow", "resolved")]


def test_points_without_a_value_are_ignored(clock: FakeClock) -> None:
    engine, notifier = engine_with(clock, slow_rule(for_s=0.0))
    clock.advance(10)
    assert engine.evaluate([Point("latency_p99_ms", DEPLOYMENT, None, clock())]) == []
    assert engine.evaluate([Point("latency_p99_ms", DEPLOYMENT, float("nan"), clock())]) == []
    assert engine.active() == [] and notifier.events == []


def test_the_firing_gauge_counts_firing_alerts_per_rule_and_severity(clock: FakeClock) -> None:
    metrics = ServingMetrics(process=False)
    rule = AlertRuleSpec(
        name="drifted",
        metric="drift_detected",
        comparison=">=",
        threshold=1,
        window_s=10,
        severity="critical",
    )
    engine = AlertEngine([rule], clock=clock, firing_gauge=metrics.alerts_firing)

    def firing() -> float | None:
        return metrics.registry.get_sample_value(
            "modelpilot_alerts_firing", {"rule": "drifted", "severity": "critical"}
        )

    assert firing() == 0.0
    clock.advance(10)
    engine.evaluate(
        [
            Point("drift_detected", DEPLOYMENT, 1.0, clock(), "feature=size"),
            Point("drift_detected", DEPLOYMENT, 1.0, clock(), "feature=rooms"),
            Point("drift_detected", DEPLOYMENT, 0.0, clock(), "feature=age"),
        ]
    )
    assert firing() == 2.0
    clock.advance(10)
    engine.evaluate([Point("drift_detected", DEPLOYMENT, 0.0, clock(), "feature=size")])
    assert firing() == 1.0


def test_rule_names_must_be_unique() -> None:
    with pytest.raises(ValueError, match="alert rule names must be unique; repeated: slow"):
        AlertEngine([slow_rule(), slow_rule(threshold=5)])


# ---- persistence ---------------------------------------------------------------------------------
@pytest.fixture
def store(tmp_path: Path) -> AlertStore:
    return AlertStore(create_database(f"sqlite:///{tmp_path / 'metadata.db'}"))


def test_a_firing_alert_survives_a_restart_and_is_not_notified_again(
    clock: FakeClock, store: AlertStore
) -> None:
    rule = slow_rule(clear_threshold=80.0, clear_for_s=60.0)
    before, first = engine_with(clock, rule, store=store)
    feed(before, clock, "latency_p99_ms", [150] * 4)
    (fired,) = before.active()
    assert first.statuses() == [("slow", "firing")]
    # Part of the way to resolving when the process stops.
    feed(before, clock, "latency_p99_ms", [50] * 3)
    del before

    after, second = engine_with(clock, rule, store=AlertStore(store.engine))
    (reloaded,) = after.active()
    assert (reloaded.id, reloaded.state, reloaded.started_at, reloaded.fired_at) == (
        fired.id,
        "firing",
        fired.started_at,
        fired.fired_at,
    )
    feed(after, clock, "latency_p99_ms", [150] * 10)  # still firing: nobody is told again
    assert second.events == []
    resolved = feed(after, clock, "latency_p99_ms", [50] * 7)
    assert [(a.id, a.state) for a in resolved] == [(fired.id, "resolved")]
    assert second.statuses() == [("slow", "resolved")]
    assert store.open() == []
    assert [a.id for a in store.resolved()] == [fired.id]


def test_a_pending_alert_keeps_its_start_across_a_restart(
    clock: FakeClock, store: AlertStore
) -> None:
    before, _ = engine_with(clock, slow_rule(), store=store)
    feed(before, clock, "latency_p99_ms", [150, 150])  # pending for 10 s of the 30
    after, notifier = engine_with(clock, slow_rule(), store=AlertStore(store.engine))
    assert states(after) == [("slow", "", "pending")]
    feed(after, clock, "latency_p99_ms", [150, 150])  # 30 s since the first breach
    assert notifier.statuses() == [("slow", "firing")]


def test_an_open_alert_whose_rule_was_removed_is_resolved_on_start(
    clock: FakeClock, store: AlertStore
) -> None:
    before, _ = engine_with(clock, slow_rule(for_s=0.0), store=store)
    feed(before, clock, "latency_p99_ms", [150])
    other = AlertRuleSpec(name="errors", metric="error_rate", threshold=0.1)
    after, _ = engine_with(clock, other, store=AlertStore(store.engine))
    assert after.active() == []
    (gone,) = store.resolved()
    assert gone.rule == "slow"
    assert gone.details["resolved_reason"] == "its rule is no longer in the project file"
