"""Alert rules from the project file: parsing, validation messages, and the generated defaults."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from modelpilot.alerting import alert_rules, default_rules
from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.errors import ConfigError
from modelpilot.spec import ProjectSpec, parse_project, render_project


def project_text(alerts: dict[str, Any] | None = None, **extra: Any) -> str:
    """The commented house-price project file, with an ``alerts`` section (and others) set."""
    data = yaml.safe_load(
        render_project(
            project="houses",
            task="regression",
            target="price",
            features=HOUSE_FEATURES,
            key_metrics=["mae <= 25000", "r2 >= 0.8"],
        )
    )
    if alerts is not None:
        data["alerts"] = alerts
    data.update(extra)
    return yaml.safe_dump(data, sort_keys=False)


def by_name(spec: ProjectSpec) -> dict[str, Any]:
    return {rule.name: rule for rule in alert_rules(spec)}


def test_the_rendered_project_file_has_the_default_rules_and_a_log_notifier() -> None:
    spec = parse_project(render_project(project="houses", task="regression", target="price"))
    assert spec.alerts.defaults is True
    assert [n.kind for n in spec.alerts.notifiers] == ["log"]
    assert [r.name for r in alert_rules(spec)] == [
        "latency_p99",
        "error_rate",
        "key_metric_mae",
        "key_metric_r2",
        "drift_importance",
        "concept_drift",
        "labels_skipped",
        "shadow_agreement",
    ]


def test_defaults_follow_the_objectives_key_metrics_and_drift_settings() -> None:
    text = project_text(
        service_objectives={"latency_p99_ms": 250, "error_rate": 0.02, "throughput_rps": 10},
        monitoring={"interval_s": 5, "label_window": 300, "drift": {"importance_share": 0.4}},
    )
    rules = {rule.name: rule for rule in default_rules(parse_project(text))}
    latency = rules["latency_p99"]
    assert (latency.metric, latency.comparison, latency.threshold) == ("latency_p99_ms", ">", 250)
    assert (latency.for_s, latency.clear_for_s, latency.clear_at) == (300, 300, 200)
    errors = rules["error_rate"]
    assert (errors.threshold, errors.for_s, errors.severity) == (0.02, 300, "critical")
    # A key metric's alert fires on the opposite of its target, over its label window.
    mae, r2 = rules["key_metric_mae"], rules["key_metric_r2"]
    assert (mae.metric, mae.labels, mae.comparison, mae.threshold) == (
        "key_metric",
        {"metric": "mae"},
        ">",
        25000,
    )
    assert (r2.labels, r2.comparison, r2.threshold, r2.aggregate) == (
        {"metric": "r2"},
        "<",
        0.8,
        "last",
    )
    assert "300 labels" in r2.annotations["summary"]
    drift = rules["drift_importance"]
    assert (drift.metric, drift.comparison, drift.threshold) == (
        "drift_importance_share",
        ">=",
        0.4,
    )
    assert "drift_share" not in rules  # drift of features the model ignores pages nobody
    assert (rules["concept_drift"].metric, rules["concept_drift"].threshold) == (
        "concept_drift",
        1.0,
    )
    assert all(rule.actions == [] for rule in rules.values())  # acting is the user's choice


def test_the_shadow_agreement_default_follows_the_agreement_gate() -> None:
    gates = [{"metric": "agreement", "threshold": 0.95, "min_samples": 100}]
    rules = by_name(parse_project(project_text(rollout={"gates": gates})))
    agreement = rules["shadow_agreement"]
    assert (agreement.metric, agreement.comparison, agreement.threshold) == (
        "shadow_agreement",
        "<",
        0.95,
    )
    assert (agreement.aggregate, agreement.for_s, agreement.severity) == ("last", 0, "warning")
    assert "95%" in agreement.annotations["summary"]
    # Without an agreement gate, agreement is not something the project asked for.
    gates = [{"metric": "error_rate", "threshold": 0.02}]
    assert "shadow_agreement" not in by_name(parse_project(project_text(rollout={"gates": gates})))


def test_a_rule_may_watch_the_shadow_agreement_of_one_deployment() -> None:
    rule = {
        "name": "shadow_disagrees",
        "metric": "shadow_agreement",
        "deployment": "houses",
        "comparison": "<",
        "threshold": 0.9,
        "aggregate": "last",
        "actions": ["rollback_canary"],
    }
    parsed = by_name(parse_project(project_text({"defaults": False, "rules": [rule]})))
    assert [(r.metric, r.deployment, r.comparison, r.threshold) for r in parsed.values()] == [
        ("shadow_agreement", "houses", "<", 0.9)
    ]


def test_a_user_rule_replaces_the_default_of_the_same_name_and_others_are_added() -> None:
    text = project_text(
        {
            "rules": [
                {
                    "name": "latency_p99",
                    "metric": "latency_p99_ms",
                    "threshold": 400,
                    "aggregate": "max",
                    "window_s": 120,
                    "for_s": 60,
                    "severity": "critical",
                    "actions": ["rollback_canary"],
                },
                {
                    "name": "size_missing",
                    "metric": "missing_rate",
                    "labels": {"feature": "size_sqft"},
                    "comparison": ">=",
                    "threshold": 0.2,
                    "clear_threshold": 0.05,
                    "clear_for_s": 600,
                    "annotations": {"team": "data"},
                },
            ],
            "notifiers": [
                {"kind": "webhook", "url": "https://hooks.example.com/x", "retries": 5},
                {"kind": "command", "command": "page-oncall --team ml", "timeout_s": 3},
            ],
            "action_cooldown_s": 600,
        }
    )
    spec = parse_project(text)
    rules = by_name(spec)
    assert list(rules)[:2] == ["latency_p99", "error_rate"]  # replaced in place
    assert list(rules)[-1] == "size_missing"
    latency = rules["latency_p99"]
    assert (latency.threshold, latency.aggregate, latency.actions) == (
        400,
        "max",
        ["rollback_canary"],
    )
    assert latency.clear_at == 400  # no clear_threshold: the threshold itself
    missing = rules["size_missing"]
    assert (missing.labels, missing.clear_at, missing.annotations) == (
        {"feature": "size_sqft"},
        0.05,
        {"team": "data"},
    )
    webhook, command = spec.alerts.notifiers
    assert (webhook.url, webhook.retries, webhook.timeout_s) == (
        "https://hooks.example.com/x",
        5,
        5,
    )
    assert (command.command, command.timeout_s) == ("page-oncall --team ml", 3)
    assert spec.alerts.action_cooldown_s == 600


def test_without_defaults_only_the_users_rules_remain() -> None:
    text = project_text(
        {"defaults": False, "rules": [{"name": "busy", "metric": "cpu_percent", "threshold": 90}]}
    )
    assert [r.name for r in alert_rules(parse_project(text))] == ["busy"]


@pytest.mark.parametrize(
    ("alerts", "message"),
    [
        (
            {"rules": [{"name": "x", "metric": "latency_p99", "threshold": 1}]},
            r"unknown metric 'latency_p99'; alert rules watch .*latency_p99_ms",
        ),
        (
            {"rules": [{"name": "x", "metric": "agreement", "comparison": "<", "threshold": 1}]},
            r"unknown metric 'agreement'; alert rules watch .*, shadow_agreement, ",
        ),
        (
            {
                "rules": [
                    {"name": "x", "metric": "error_rate", "threshold": 0.1, "clear_threshold": 0.2}
                ]
            },
            r"clear_threshold must be at or below the threshold for comparison '>'.*"
            r"got clear_threshold 0.2 and threshold 0.1",
        ),
        (
            {
                "rules": [
                    {
                        "name": "x",
                        "metric": "key_metric",
                        "comparison": "<",
                        "threshold": 0.8,
                        "clear_threshold": 0.7,
                    }
                ]
            },
            r"clear_threshold must be at or above the threshold for comparison '<'",
        ),
        (
            {
                "rules": [
                    {"name": "x", "metric": "error_rate", "threshold": 0.1},
                    {"name": "x", "metric": "error_rate", "threshold": 0.2},
                ]
            },
            r"alert rule names must be unique; repeated: x",
        ),
        (
            {
                "rules": [
                    {"name": "x", "metric": "error_rate", "threshold": 0.1, "actions": ["restart"]}
                ]
            },
            r"alerts\.rules\[0\]\.actions\[0\]: expected one of 'rollback_canary', "
            r"'lower_automation' or 'retrain', got 'restart'",
        ),
        (
            {"rules": [{"name": "x", "metric": "error_rate", "threshold": 0.1, "for": 60}]},
            r"alerts\.rules\[0\]\.for: unknown key",
        ),
        ({"notifiers": [{"kind": "webhook"}]}, r"a webhook notifier needs url: http\(s\)://"),
        ({"notifiers": [{"kind": "command"}]}, r"a command notifier needs command:"),
        (
            {"notifiers": [{"kind": "log", "url": "https://x"}]},
            r"url is only allowed on webhook notifiers, not log",
        ),
    ],
)
def test_mistakes_in_the_alerts_section_are_reported_with_what_to_do(
    alerts: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_project(project_text(alerts))
