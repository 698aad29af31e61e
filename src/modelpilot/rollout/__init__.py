"""Deployment patterns without Kubernetes: shadow, canary with gates, blue-green, rolling."""

from modelpilot.rollout._analysis import GateResult, StepWindow, analyze, compare_shadow
from modelpilot.rollout._controller import STRATEGIES, RolloutController
from modelpilot.rollout._routers import CanaryRouter, ShadowRouter, bucket_of
from modelpilot.rollout._sequential import SequentialResult, msprt
from modelpilot.rollout._smoke import SmokeFailed, smoke_records, smoke_test
from modelpilot.rollout._store import DeploymentState, RolloutRecord, RolloutStore

__all__ = [
    "STRATEGIES",
    "CanaryRouter",
    "DeploymentState",
    "GateResult",
    "RolloutController",
    "RolloutRecord",
    "RolloutStore",
    "SequentialResult",
    "ShadowRouter",
    "SmokeFailed",
    "StepWindow",
    "analyze",
    "bucket_of",
    "compare_shadow",
    "msprt",
    "smoke_records",
    "smoke_test",
]
