"""Degrees of automation, the human review queue, the ladder, and the retraining loop."""

from typing import TYPE_CHECKING

from modelpilot._lazy import lazy_exports

if TYPE_CHECKING:
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

# Each name is imported on first use (PEP 562): working the review queue should not pay for the
# retraining loop.
_SOURCES = {
    "_confidence": ("ensemble_confidence", "margin_confidence", "typicality_confidence"),
    "_ladder": ("AutomationState", "Ladder", "lower_degree"),
    "_retrain": ("RetrainLoop", "RetrainRun"),
    "_reviews": ("ReviewItem", "ReviewQueue", "agrees"),
}

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name
    __getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
