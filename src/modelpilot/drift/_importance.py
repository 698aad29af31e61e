"""Drift weighed by what the model depends on: the importance share of the drifted features.

A drift report counts features alike: one drifted feature of ten is 10%, whether the model
leans on it for most of its answers or ignores it. Weighted by each feature's share of the
model's permutation importance (measured at registration, ``modelpilot.registry``), the share
says how much of what the model uses has moved: the figure worth an alert. Drift in a feature
the model ignores still shows in the report and its series, and weighs nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from modelpilot.drift._report import DriftReport

__all__ = ["drifted_importance", "importance_weights"]


def importance_weights(
    importance: Mapping[str, float] | None, features: Sequence[str]
) -> dict[str, float]:
    """Each of ``features``' weight, summing to 1: its share of ``importance`` among them, or
    the same for all when there is no importance (a version registered without a holdout) or
    it is all zero.

    Examples
    --------
    >>> importance_weights({"size": 0.375, "age": 0.125, "zip": 0.5}, ["size", "age"])
    {'size': 0.75, 'age': 0.25}
    >>> importance_weights(None, ["size", "age"])
    {'size': 0.5, 'age': 0.5}
    """
    raw = {name: max(0.0, float((importance or {}).get(name, 0.0))) for name in features}
    total = sum(raw.values())
    if not features:
        return {}
    if total <= 0:
        return {name: 1.0 / len(features) for name in features}
    return {name: value / total for name, value in raw.items()}


def drifted_importance(report: DriftReport, importance: Mapping[str, float] | None) -> float:
    """The share of the model's importance carried by the features that drifted.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from modelpilot.drift import compare
    >>> rng = np.random.default_rng(0)
    >>> ref = pd.DataFrame({"x": rng.normal(size=2000), "unused": rng.normal(size=2000)})
    >>> cur = pd.DataFrame({"x": rng.normal(size=2000), "unused": rng.normal(2, size=2000)})
    >>> report = compare(ref, cur)
    >>> report.share_drifted, drifted_importance(report, {"x": 0.98, "unused": 0.02})
    (0.5, 0.02)
    """
    weights = importance_weights(importance, [f.name for f in report.features])
    return round(sum(weights[f.name] for f in report.features if f.drifted), 6)
