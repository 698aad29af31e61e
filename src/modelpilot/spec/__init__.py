"""Scoping: the project file that declares task, schema, key metrics and objectives."""

from modelpilot.spec._automation import (
    DEGREES,
    AutomationSettings,
    Degree,
    LadderStep,
    RetrainSettings,
)
from modelpilot.spec._base import METRICS, REGRESSION_METRICS, CheckName, Task
from modelpilot.spec._loader import PROJECT_FILE, find_project_dir, load_project, parse_project
from modelpilot.spec._model import ProjectSpec
from modelpilot.spec._monitoring import (
    ALERT_METRICS,
    AlertRuleSpec,
    AlertSettings,
    MonitoringSettings,
    NotifierSpec,
)
from modelpilot.spec._rollout import GateSpec, RolloutSettings
from modelpilot.spec._schema import DataChecks, FeatureSpec, KeyMetric, ServiceObjectives
from modelpilot.spec._serving import (
    BatchCheckSettings,
    DeltaLogSettings,
    DeploymentSpec,
    LoggingSettings,
    ServingSettings,
    StepSpec,
    StoreSettings,
)
from modelpilot.spec._template import (
    propose_key_metrics,
    render_project,
    replace_section,
    write_features,
)

__all__ = [
    "ALERT_METRICS",
    "DEGREES",
    "METRICS",
    "PROJECT_FILE",
    "REGRESSION_METRICS",
    "AlertRuleSpec",
    "AlertSettings",
    "AutomationSettings",
    "BatchCheckSettings",
    "CheckName",
    "DataChecks",
    "Degree",
    "DeltaLogSettings",
    "DeploymentSpec",
    "FeatureSpec",
    "GateSpec",
    "KeyMetric",
    "LadderStep",
    "LoggingSettings",
    "MonitoringSettings",
    "NotifierSpec",
    "ProjectSpec",
    "RetrainSettings",
    "RolloutSettings",
    "ServiceObjectives",
    "ServingSettings",
    "StepSpec",
    "StoreSettings",
    "Task",
    "find_project_dir",
    "load_project",
    "parse_project",
    "propose_key_metrics",
    "render_project",
    "replace_section",
    "write_features",
]
