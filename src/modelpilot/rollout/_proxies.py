"""The proxy gates: what stands in for quality while a canary's labels are missing.

``agreement`` (the share of mirrored requests both versions answer alike), ``prediction_shift``
(the distance between their predictions) and ``estimated_key_metric`` (the key metric each
version is expected to reach, estimated from its calibrated probabilities without labels).

A candidate from a retraining run comes with what its run measured offline on the newest
labelled rows (``expected``): after a change of concept, a good new model *must* answer
differently from the old one, so the agreement and shift gates judge against that measurement,
within its sampling error, rather than against thresholds meant for like-for-like replacements.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Protocol

import pandas as pd

from modelpilot.rollout._measures import (
    GateResult,
    StepWindow,
    agreement_of,
    insufficient,
    is_classification,
    ok_predictions,
    prediction_shift,
)
from modelpilot.spec import METRICS, GateSpec

__all__ = [
    "EXPECTATION_MARGIN",
    "PerformanceEstimate",
    "agreement_gate",
    "estimate_gate",
    "expected_bound",
    "shift_gate",
]

#: The least distance from an offline expectation that counts against a candidate, whatever
#: the sample sizes: a few points of agreement either way are not a different model.
EXPECTATION_MARGIN = 0.05


class PerformanceEstimate(Protocol):
    """What the ``estimated_key_metric`` gate uses of a version's performance estimator
    (``modelpilot.registry.PerformanceEstimator``)."""

    @property
    def trusted(self) -> bool: ...

    @property
    def reason(self) -> str: ...

    def estimate(self, frame: pd.DataFrame) -> dict[str, float]: ...


def expected_bound(
    expected: Mapping[str, Any], samples: int, *, lower: bool
) -> tuple[float, float]:
    """The bound an offline expectation puts on a proxy measured on ``samples`` requests:
    ``(bound, margin)``, the expectation minus (``lower``) or plus its margin.

    The margin is three standard errors of the difference between the two measurements (the
    offline one on ``expected["rows"]`` rows and the online one), at least
    :data:`EXPECTATION_MARGIN`. For a share (agreement) the standard error is that of two
    proportions; for a distance (shift) the two-sample Kolmogorov-Smirnov scale.

    Examples
    --------
    >>> bound, margin = expected_bound({"value": 0.6, "rows": 400}, 100, lower=True)
    >>> round(bound, 3), round(margin, 3)
    (0.436, 0.164)
    >>> expected_bound({"value": 0.3, "rows": 5000}, 5000, lower=False)
    (0.35, 0.05)
    """
    value, rows = float(expected["value"]), max(int(expected.get("rows", 0)), 1)
    spread = 1 / max(samples, 1) + 1 / rows
    if lower:
        # 0.05 keeps a floor under p(1-p): an offline agreement of 1.0 is not exact either.
        se = math.sqrt(max(value * (1 - value), 0.05) * spread)
        margin = max(EXPECTATION_MARGIN, 3 * se)
        return value - margin, margin
    margin = max(EXPECTATION_MARGIN, 1.36 * math.sqrt(spread))
    return value + margin, margin


def _expectation_note(expected: Mapping[str, Any], margin: float) -> str:
    source = expected.get("source") or "the retraining run"
    return f"; {float(expected['value']):.3g} expected from {source} (margin {margin:.2g})"


def agreement_gate(
    gate: GateSpec, window: StepWindow, task: str | None, expected: Mapping[str, Any] | None
) -> GateResult:
    """``agreement``: the share of mirrored requests both versions answer alike, at least the
    gate's threshold, or near what a retraining run measured offline."""
    n = len(window.pairs)
    if n < gate.min_samples:
        return insufficient(gate, n, f"{n} of {gate.min_samples} mirrored requests")
    rate = float(agreement_of(window.pairs["candidate"], window.pairs["primary"], task).mean())
    detail = "share of identical answers" if is_classification(task) else "share within 10%"
    threshold = gate.threshold
    if expected is not None:
        bound, margin = expected_bound(expected, n, lower=True)
        threshold = min(threshold, bound)
        detail += _expectation_note(expected, margin)
    status = "pass" if rate >= threshold else "fail"
    return GateResult(gate.metric, status, rate, threshold, n, detail, "proxy")


def shift_gate(
    gate: GateSpec, window: StepWindow, task: str | None, expected: Mapping[str, Any] | None
) -> GateResult:
    """``prediction_shift``: the distance between the two versions' predictions, at most the
    gate's threshold, or near what a retraining run measured offline."""
    # Paired when the primary also scored the candidate's requests: the same inputs, so a
    # shift is the model's, not a different slice of users.
    if len(window.pairs) >= gate.min_samples:
        a, b, how = window.pairs["candidate"], window.pairs["primary"], "same requests"
    else:
        a, b = ok_predictions(window.candidate), ok_predictions(window.primary)
        how = "all requests"
    n = min(len(a), len(b))
    if n < gate.min_samples:
        return insufficient(gate, n, f"{n} of {gate.min_samples} predictions")
    distance = prediction_shift(a, b, task)
    name = "total variation" if is_classification(task) else "KS statistic"
    detail = f"{name} ({how})"
    threshold = gate.threshold
    if expected is not None:
        bound, margin = expected_bound(expected, n, lower=False)
        threshold = max(threshold, bound)
        detail += _expectation_note(expected, margin)
    status = "pass" if distance <= threshold else "fail"
    return GateResult(gate.metric, status, distance, threshold, n, detail, "proxy")


def unavailable(gate: GateSpec, detail: str) -> GateResult:
    """A gate that cannot judge this rollout at all (more data would not help): it neither
    passes nor holds the step."""
    return GateResult(gate.metric, "unavailable", None, gate.threshold, 0, detail, "proxy")


def estimate_gate(
    gate: GateSpec,
    window: StepWindow,
    estimators: tuple[PerformanceEstimate | None, PerformanceEstimate | None] | None,
) -> GateResult:
    """``estimated_key_metric``: the candidate's key metric estimated from its calibrated
    probabilities (no labels needed) may fall at most ``threshold`` below the primary's, both
    estimated on the requests of the step (a metric where lower is better: rise above)."""
    candidate, primary = estimators or (None, None)
    if candidate is None or primary is None:
        who = "candidate" if candidate is None else "primary"
        return unavailable(gate, f"no performance estimate for the {who}")
    for who, estimator in (("candidate", candidate), ("primary", primary)):
        if not estimator.trusted:
            return unavailable(gate, f"the {who}'s estimate cannot be trusted: {estimator.reason}")
    rows = window.candidate
    if "error" in rows:
        rows = rows[rows["error"].isna()]
    n = len(rows)
    if n < gate.min_samples:
        return insufficient(gate, n, f"{n} of {gate.min_samples} candidate predictions")
    c_values = candidate.estimate(rows)
    p_rows = window.primary
    if "error" in p_rows:
        p_rows = p_rows[p_rows["error"].isna()]
    p_values = primary.estimate(p_rows)
    common = [k for k in c_values if k in p_values]
    if not common:
        return unavailable(gate, "no key metric can be estimated from probabilities")
    metric = common[0]
    higher = METRICS.get(metric, "higher") == "higher"
    drop = (
        (p_values[metric] - c_values[metric]) if higher else (c_values[metric] - p_values[metric])
    )
    detail = (
        f"estimated {metric} {c_values[metric]:.4g} vs primary {p_values[metric]:.4g} "
        "(from calibrated probabilities)"
    )
    status = "pass" if drop <= gate.threshold else "fail"
    return GateResult(gate.metric, status, drop, gate.threshold, n, detail, "proxy")
