"""Degrees of automation, the human review queue, the ladder, and the retraining loop."""

import importlib
from typing import TYPE_CHECKING, Any

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
