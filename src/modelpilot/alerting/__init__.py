"""Alerting: rules on the monitor's time series, alerts with states, notifiers and actions."""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Each name is imported on first use (PEP 562): listing alerts should not pay for the monitor, the
# engine and its notifiers.
_SOURCES = {
    "_actions": ("ActionHandler", "rollback_canary"),
    "_alert": ("Alert", "AlertState"),
    "_engine": ("AlertEngine",),
    "_notifiers": (
        "CommandNotifier",
        "LogNotifier",
        "Notifier",
        "WebhookNotifier",
        "alert_environ",
        "build_notifiers",
    ),
    "_rules": ("aggregate", "alert_rules", "breaches", "default_rules"),
    "_store": ("AlertStore",),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name

    def __getattr__(name: str) -> Any:
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value  # later look-ups find it without coming here
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
