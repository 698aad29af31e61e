"""Alerting: rules on the monitor's time series, alerts with states, notifiers and actions."""

from modelpilot.alerting._actions import ActionHandler, rollback_canary
from modelpilot.alerting._alert import Alert, AlertState
from modelpilot.alerting._engine import AlertEngine
from modelpilot.alerting._notifiers import (
    CommandNotifier,
    LogNotifier,
    Notifier,
    WebhookNotifier,
    alert_environ,
    build_notifiers,
)
from modelpilot.alerting._rules import aggregate, alert_rules, breaches, default_rules
from modelpilot.alerting._store import AlertStore

__all__ = [
    "ActionHandler",
    "Alert",
    "AlertEngine",
    "AlertState",
    "AlertStore",
    "CommandNotifier",
    "LogNotifier",
    "Notifier",
    "WebhookNotifier",
    "aggregate",
    "alert_environ",
    "alert_rules",
    "breaches",
    "build_notifiers",
    "default_rules",
    "rollback_canary",
]
