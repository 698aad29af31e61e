"""Scoping: the project file that declares task, schema, key metrics and objectives."""

from modelpilot.spec._loader import PROJECT_FILE, find_project_dir, load_project, parse_project
from modelpilot.spec._model import (
    METRICS,
    REGRESSION_METRICS,
    DataChecks,
    DeploymentSpec,
    FeatureSpec,
    GateSpec,
    KeyMetric,
    LoggingSettings,
    MonitoringSettings,
    ProjectSpec,
    RolloutSettings,
    ServiceObjectives,
    ServingSettings,
    StoreSettings,
)
from modelpilot.spec._template import render_project, write_features

__all__ = [
    "METRICS",
    "PROJECT_FILE",
    "REGRESSION_METRICS",
    "DataChecks",
    "DeploymentSpec",
    "FeatureSpec",
    "GateSpec",
    "KeyMetric",
    "LoggingSettings",
    "MonitoringSettings",
    "ProjectSpec",
    "RolloutSettings",
    "ServiceObjectives",
    "ServingSettings",
    "StoreSettings",
    "find_project_dir",
    "load_project",
    "parse_project",
    "render_project",
    "write_features",
]
