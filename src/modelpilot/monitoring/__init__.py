"""Monitoring: live metrics (Prometheus), time series, drift in the service, alerts."""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelpilot.monitoring._leader import MonitorLeader
    from modelpilot.monitoring._metrics import CONTENT_TYPE, InputStats, ServingMetrics
    from modelpilot.monitoring._monitor import Monitor
    from modelpilot.monitoring._timeseries import (
        Point,
        TimeSeriesStore,
        format_labels,
        parse_labels,
    )

__all__ = [
    "CONTENT_TYPE",
    "InputStats",
    "Monitor",
    "MonitorLeader",
    "Point",
    "ServingMetrics",
    "TimeSeriesStore",
    "format_labels",
    "parse_labels",
]

# Each name is imported on first use (PEP 562): reading time series should not pay for the
# monitor's drift engine.
_SOURCES = {
    "_metrics": ("CONTENT_TYPE", "InputStats", "ServingMetrics"),
    "_leader": ("MonitorLeader",),
    "_monitor": ("Monitor",),
    "_timeseries": ("Point", "TimeSeriesStore", "format_labels", "parse_labels"),
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
