"""How deployments proceed and are judged: the rollout settings and their gates."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from modelpilot.spec._base import StrictModel

GateMetric = Literal[
    "error_rate",
    "latency_p99",
    "prediction_shift",
    "agreement",
    "key_metric",
    "estimated_key_metric",
]


class GateSpec(StrictModel):
    """One check of a rollout step's analysis, candidate against primary.

    ``threshold`` by metric: ``error_rate`` — the largest allowed increase of the candidate's
    error rate over the primary's (absolute, e.g. 0.02); ``latency_p99`` — the largest allowed
    ratio of p99 latencies (e.g. 2.0); ``prediction_shift`` — the largest allowed distance
    between the two prediction distributions (Kolmogorov-Smirnov statistic for regression,
    total variation of class shares for classification); ``agreement`` — the smallest share of
    mirrored requests on which both answer alike (same class; regression: within 10%);
    ``key_metric`` — the sequential test's significance level for "the candidate is worse" (or
    better); ``estimated_key_metric`` — the largest allowed drop of the candidate's key metric
    estimated from calibrated probabilities below the primary's (classifiers; e.g. 0.05).

    Gates are of three kinds: ``error_rate`` and ``latency_p99`` are *guards* (they always
    veto), ``key_metric`` is the *evidence* of labels, and ``agreement``, ``prediction_shift``
    and ``estimated_key_metric`` are *proxies*: when the labels show the candidate better, a
    proxy cannot veto it; when they show it worse, it is rolled back whatever the proxies say.
    ``slack`` (``latency_p99`` only) is an absolute difference in milliseconds below which the
    ratio is not held against the candidate: a p99 of 4 ms against 1.5 ms is noise, not a
    regression.
    """

    metric: GateMetric
    threshold: float = Field(gt=0)
    min_samples: int = Field(default=50, ge=1)
    slack: float = Field(default=0.0, ge=0)


def _default_gates() -> list[GateSpec]:
    return [
        GateSpec(metric="error_rate", threshold=0.02, min_samples=50),
        GateSpec(metric="latency_p99", threshold=2.0, min_samples=50, slack=10.0),
        GateSpec(metric="prediction_shift", threshold=0.2, min_samples=50),
        GateSpec(metric="agreement", threshold=0.8, min_samples=30),
        GateSpec(metric="key_metric", threshold=0.05, min_samples=30),
    ]


class RolloutSettings(StrictModel):
    """How canary, shadow, blue-green and rolling deployments proceed and are judged."""

    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0], min_length=1)
    step_interval_s: float = Field(default=600.0, gt=0)
    analysis_interval_s: float = Field(default=10.0, gt=0)
    failure_limit: int = Field(default=2, ge=1)
    gates: list[GateSpec] = Field(default_factory=_default_gates)
    mirror_fraction: float = Field(default=1.0, ge=0, le=1)
    blue_green_window_s: float = Field(default=600.0, ge=0)
    shadow_s: float = Field(default=600.0, gt=0)
    smoke_requests: int = Field(default=20, ge=1, le=10_000)

    def gate(self, metric: str) -> GateSpec | None:
        """The gate on ``metric``; None when the gates leave it out.

        Examples
        --------
        >>> RolloutSettings().gate("agreement")
        GateSpec(metric='agreement', threshold=0.8, min_samples=30, slack=0.0)
        >>> RolloutSettings(gates=[]).gate("agreement") is None
        True
        """
        return next((gate for gate in self.gates if gate.metric == metric), None)

    @property
    def agreement_min_samples(self) -> int:
        """The compared predictions a shadow's agreement needs before an alert rule sees it:
        the ``agreement`` gate's ``min_samples``, the default gate's when the gates leave
        agreement out.

        Examples
        --------
        >>> RolloutSettings(gates=[{"metric": "agreement", "threshold": 0.9, "min_samples": 80}]
        ...     ).agreement_min_samples, RolloutSettings(gates=[]).agreement_min_samples
        (80, 30)
        """
        gate = self.gate("agreement") or next(
            gate for gate in _default_gates() if gate.metric == "agreement"
        )
        return gate.min_samples

    @field_validator("steps")
    @classmethod
    def _check_steps(cls, steps: list[float]) -> list[float]:
        if any(not 0 < s <= 100 for s in steps) or steps != sorted(steps) or steps[-1] != 100:
            raise ValueError(
                f"steps must be increasing traffic percentages in (0, 100] ending at 100, "
                f"got {steps}"
            )
        return steps
