"""Alerting: rules on the monitor's time series, alerts with states, notifiers and actions."""

from typing import TYPE_CHECKING

from modelpilot._lazy import lazy_exports

if TYPE_CHECKING:
    from modelpilot.alerting._actions import ActionHandler, rollback_canary
    from modelpilot.alerting._alert import Alert, AlertState
    from modelpilot.alerting._engine import AlertEngine
    from modelpilot.alerting._handling import AlertHandling, Freshness
    from modelpilot.alerting._notifiers import (
        CommandNotifier,
        LogNotifier,
        Notifier,
        WebhookNotifier,
        alert_environ,
        build_notifiers,
    )
    from modelpilot.alerting._rules import aggregate, alert_rules, breaches, default_rules
    from modelpilot.alerting._store import AlertStore, Silence

__all__ = [
    "ActionHandler",
    "Alert",
    "AlertEngine",
    "AlertHandling",
    "AlertState",
    "AlertStore",
    "CommandNotifier",
    "Freshness",
    "LogNotifier",
    "Notifier",
    "Silence",
    "WebhookNotifier",
    "aggregate",
    "alert_environ",
    "alert_rules",
    "breaches",
    "build_notifiers",
    "default_rules",
    "rollback_canary",
]

# Each name is imported on first use (PEP 562): listing alerts should not pay for the monitor, the
# engine and its notifiers.
_SOURCES = {
    "_actions": ("ActionHandler", "rollback_canary"),
    "_alert": ("Alert", "AlertState"),
    "_engine": ("AlertEngine",),
    "_handling": ("AlertHandling", "Freshness"),
    "_notifiers": (
        "CommandNotifier",
        "LogNotifier",
        "Notifier",
        "WebhookNotifier",
        "alert_environ",
        "build_notifiers",
    ),
    "_rules": ("aggregate", "alert_rules", "breaches", "default_rules"),
    "_store": ("AlertStore", "Silence"),
}

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name
    __getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
