"""The dashboard: deployments, rollouts, charts over time and alerts, at ``/`` of the server."""

from modelpilot.server.dashboard._routes import dashboard_routes, describe_project
from modelpilot.server.dashboard._series import (
    BadSeriesQuery,
    SeriesQuery,
    SeriesTooLarge,
    series_payload,
)

__all__ = [
    "BadSeriesQuery",
    "SeriesQuery",
    "SeriesTooLarge",
    "dashboard_routes",
    "describe_project",
    "series_payload",
]
