"""Degrees of automation, the ladder between them, and retraining."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from modelpilot.spec._base import StrictModel

Degree = Literal["human", "shadow", "assist", "partial", "full"]
DEGREES: tuple[Degree, ...] = ("human", "shadow", "assist", "partial", "full")


class LadderStep(StrictModel):
    """Move a deployment from one degree of automation to the next when people agree enough."""

    from_degree: Degree = Field(alias="from")
    to: Degree
    min_agreement: float = Field(default=0.95, gt=0, le=1)
    min_cases: int = Field(default=500, ge=1)


def _default_ladder() -> list[LadderStep]:
    return [
        LadderStep.model_validate({"from": "shadow", "to": "assist"}),
        LadderStep.model_validate({"from": "assist", "to": "partial"}),
        LadderStep.model_validate({"from": "partial", "to": "full", "min_agreement": 0.97}),
    ]


class AutomationSettings(StrictModel):
    """How much the model decides on its own (the seed's degrees of automation)."""

    degree: Degree = "full"
    threshold: float = Field(default=0.8, ge=0, le=1)
    regression_confidence: Literal["typicality", "ensemble"] = "typicality"
    agreement_tolerance: float = Field(default=0.1, ge=0)
    ladder: Literal["off", "propose", "auto"] = "propose"
    steps: list[LadderStep] = Field(default_factory=_default_ladder)
    lower_on_alerts: bool = True
    review_max_age_s: float = Field(default=86400.0, gt=0)


class RetrainSettings(StrictModel):
    """The retraining loop: what trains a new version, when, and what happens to it.

    ``retry_after_s`` and ``max_retries``: the retry rule. When the last run did not fix
    production (its candidate rejected or rolled back, the run failed, or the promoted candidate
    still misses the target) and production's key metric still misses its target on the labels
    that arrived since, another run may start ``retry_after_s`` after that run, before
    ``cooldown_s`` is over, at most ``max_retries`` times in a row (``docs/automation.md``).
    """

    command: str | None = None
    function: str | None = None
    window_s: float = Field(default=30 * 86400.0, gt=0)
    min_new_labels: int = Field(default=200, ge=0)
    cooldown_s: float = Field(default=6 * 3600.0, ge=0)
    retry_after_s: float = Field(default=1800.0, ge=0)
    max_retries: int = Field(default=2, ge=0)
    max_concurrent: int = Field(default=1, ge=1)
    timeout_s: float = Field(default=3600.0, gt=0)
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1)
    deploy: Literal["none", "shadow", "canary", "shadow-canary"] = "canary"
    auto: bool = False
    schedule_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_trainer(self) -> RetrainSettings:
        if self.command and self.function:
            raise ValueError("give either retrain.command or retrain.function, not both")
        return self
