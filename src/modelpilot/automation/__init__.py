"""Degrees of automation, the human review queue, the ladder, and the retraining loop."""

from modelpilot.automation._confidence import (
    ensemble_confidence,
    margin_confidence,
    typicality_confidence,
)
from modelpilot.automation._ladder import AutomationState, Ladder, lower_degree
from modelpilot.automation._retrain import RetrainLoop, RetrainRun
from modelpilot.automation._reviews import ReviewItem, ReviewQueue, agrees

__all__ = [
    "AutomationState",
    "Ladder",
    "RetrainLoop",
    "RetrainRun",
    "ReviewItem",
    "ReviewQueue",
    "agrees",
    "ensemble_confidence",
    "lower_degree",
    "margin_confidence",
    "typicality_confidence",
]
