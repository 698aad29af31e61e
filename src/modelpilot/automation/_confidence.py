"""How sure the model is about one prediction: the number partial automation acts on.

- Classifiers: the probability margin, top class minus runner-up (1 = certain, 0 = a coin flip
  between two classes). The margin rather than the top probability because with many classes
  a top probability of 0.4 can still be a clear winner or a tie.
- Regressors, ``typicality`` (default): how typical the input is of the training data, from the
  reference profile. Per numeric feature, with ``F`` the training ECDF: 1 inside the central
  99% of the training values, falling linearly to 0 at the smallest / largest value ever seen,
  0 outside; an unseen category counts as 0; the input's confidence is the smallest over its
  features. (A plain ``2 min(F, 1 - F)`` would call every input with one feature off its
  median uncertain: with nine features almost all of them.) A regressor's error is
  largest where it extrapolates, and this needs no extra model, works for any regressor and is
  exactly the signal of the seed's data drift (people building larger houses).
- Regressors, ``ensemble``: for models with ``estimators_`` (random forests, bagging), one
  minus the spread of the members' predictions relative to the prediction, clipped to [0, 1].

A conformal interval of constant width was considered and rejected: it gives every input the
same confidence, which cannot route anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.spec import FeatureSpec

__all__ = ["ensemble_confidence", "margin_confidence", "typicality_confidence"]

_TAIL = 0.005  # each tail outside the central 99%


def margin_confidence(proba: Sequence[Sequence[float]]) -> list[float]:
    """Top-class probability minus the runner-up's, per row.

    Examples
    --------
    >>> [round(c, 2) for c in margin_confidence([[0.9, 0.1], [0.55, 0.45], [0.4, 0.35, 0.25]])]
    [0.8, 0.1, 0.05]
    """
    out = []
    for row in proba:
        ordered = sorted(row, reverse=True)
        out.append(float(ordered[0] - (ordered[1] if len(ordered) > 1 else 0.0)))
    return out


def typicality_confidence(
    columns: Mapping[str, Sequence[Any]],
    features: Sequence[FeatureSpec],
    profile: Mapping[str, Any],
) -> list[float]:
    """How typical each input is of the training data (1 = median, 0 = never seen).

    Examples
    --------
    >>> from modelpilot.spec import FeatureSpec
    >>> profile = {"features": {"x": {"type": "numeric", "quantiles": list(range(101))}}}
    >>> typicality_confidence({"x": [50.0, 99.8, 150.0]}, [FeatureSpec(name="x",
    ...                       type="numeric")], profile)
    [1.0, 0.4, 0.0]
    """
    stats = profile.get("features", {})
    n = len(next(iter(columns.values()))) if columns else 0
    confidence = np.ones(n)
    for feature in features:
        entry = stats.get(feature.name)
        if not entry or feature.name not in columns:
            continue
        if feature.type == "numeric" and entry.get("quantiles"):
            quantiles = np.asarray(entry["quantiles"], dtype=float)
            values = np.array(
                [np.nan if v is None else v for v in columns[feature.name]], dtype=float
            )
            grid = np.linspace(0.0, 1.0, len(quantiles))
            ecdf = np.interp(values, quantiles, grid, left=0.0, right=1.0)
            outside = (values < quantiles[0]) | (values > quantiles[-1])
            tail = np.minimum(ecdf, 1 - ecdf)
            score = np.where(outside, 0.0, np.clip(tail / _TAIL, 0.0, 1.0))
            confidence = np.minimum(confidence, np.where(np.isnan(values), 1.0, score))
        elif feature.type == "categorical" and entry.get("counts"):
            known = set(entry["counts"])
            score = np.array(
                [1.0 if v is None or str(v) in known else 0.0 for v in columns[feature.name]]
            )
            confidence = np.minimum(confidence, score)
    return [float(round(c, 6)) for c in confidence]


def ensemble_confidence(model: Any, frame: pd.DataFrame, predictions: np.ndarray) -> list[float]:
    """1 - (std of ensemble members' predictions / |prediction|), for models with members."""
    estimator = model
    steps = getattr(model, "steps", None)
    transformed = frame
    if steps:  # a scikit-learn Pipeline: transform with all but the last step
        for _, step in steps[:-1]:
            transformed = step.transform(transformed)
        estimator = steps[-1][1]
    members = getattr(estimator, "estimators_", None)
    if members is None:
        raise ValueError(
            "automation.regression_confidence is 'ensemble', but the model has no ensemble "
            "members (estimators_); use 'typicality' or an ensemble regressor"
        )
    values = np.asarray(transformed)
    spread = np.std([m.predict(values) for m in np.ravel(members)], axis=0)
    scale = np.maximum(np.abs(predictions.astype(float)), 1e-12)
    return [float(c) for c in np.clip(1 - spread / scale, 0.0, 1.0)]
