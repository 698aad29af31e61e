"""Monitoring: live metrics (Prometheus), time series, drift in the service, alerts."""

from typing import TYPE_CHECKING

from modelpilot._lazy import lazy_exports

if TYPE_CHECKING:
    from modelpilot.monitoring._drift_check import DriftCheck, DriftChecker
    from modelpilot.monitoring._input_stats import InputStats
    from modelpilot.monitoring._leader import MonitorLeader
    from modelpilot.monitoring._metrics import CONTENT_TYPE, ServingMetrics
    from modelpilot.monitoring._monitor import Monitor
    from modelpilot.monitoring._timeseries import (
        ROLLUP_S,
        Point,
        TimeSeriesStore,
        format_labels,
        parse_labels,
    )

__all__ = [
    "CONTENT_TYPE",
    "ROLLUP_S",
    "DriftCheck",
    "DriftChecker",
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
    "_drift_check": ("DriftCheck", "DriftChecker"),
    "_input_stats": ("InputStats",),
    "_metrics": ("CONTENT_TYPE", "ServingMetrics"),
    "_leader": ("MonitorLeader",),
    "_monitor": ("Monitor",),
    "_timeseries": ("ROLLUP_S", "Point", "TimeSeriesStore", "format_labels", "parse_labels"),
}

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name
    __getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
