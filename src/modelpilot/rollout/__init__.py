"""Deployment patterns without Kubernetes: direct, shadow, canary with gates, shadow-canary,
blue-green and rolling, one object per strategy (``RolloutStrategy``), run by the controller."""

from modelpilot.rollout._analysis import GATE_KINDS, GateResult, StepWindow, analyze, compare_shadow
from modelpilot.rollout._controller import RolloutController
from modelpilot.rollout._measures import agreement_of, prediction_shift
from modelpilot.rollout._ranking import Decision, decide
from modelpilot.rollout._routers import CanaryRouter, ShadowRouter, bucket_of
from modelpilot.rollout._sequential import SequentialResult, msprt
from modelpilot.rollout._smoke import SmokeFailed, smoke_records, smoke_test
from modelpilot.rollout._store import DeploymentState, RolloutRecord, RolloutStore
from modelpilot.rollout._strategies import STRATEGIES, strategy_named, strategy_of
from modelpilot.rollout._strategy import RolloutContext, RolloutStrategy

__all__ = [
    "GATE_KINDS",
    "STRATEGIES",
    "CanaryRouter",
    "Decision",
    "DeploymentState",
    "GateResult",
    "RolloutContext",
    "RolloutController",
    "RolloutRecord",
    "RolloutStore",
    "RolloutStrategy",
    "SequentialResult",
    "ShadowRouter",
    "SmokeFailed",
    "StepWindow",
    "agreement_of",
    "analyze",
    "bucket_of",
    "compare_shadow",
    "decide",
    "msprt",
    "prediction_shift",
    "smoke_records",
    "smoke_test",
    "strategy_named",
    "strategy_of",
]
