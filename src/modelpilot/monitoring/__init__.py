"""Monitoring: live metrics (Prometheus), time series, drift in the service, alerts."""

from modelpilot.monitoring._metrics import CONTENT_TYPE, InputStats, ServingMetrics
from modelpilot.monitoring._monitor import Monitor
from modelpilot.monitoring._timeseries import Point, TimeSeriesStore, format_labels, parse_labels

__all__ = [
    "CONTENT_TYPE",
    "InputStats",
    "Monitor",
    "Point",
    "ServingMetrics",
    "TimeSeriesStore",
    "format_labels",
    "parse_labels",
]
