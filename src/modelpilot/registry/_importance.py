"""Permutation importance on the holdout: how much worse a key metric gets when one feature's
values are shuffled across the rows (the model can no longer use that feature).

Written here rather than with ``sklearn.inspection.permutation_importance``, which needs a
scikit-learn estimator: a registered model is any flavor behind ``ModelRuntime`` (ONNX,
XGBoost, MLflow, ...), and the loop is a few lines over ``runtime.predict`` and the same
``compute_metrics`` the version's offline metrics come from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelpilot.registry._metrics import compute_metrics
from modelpilot.runtime import ModelRuntime
from modelpilot.spec import ProjectSpec

__all__ = ["importance_metric", "permutation_importance"]

# Without a key metric: the metric every task has, and whether higher is better.
_DEFAULT = {"regression": ("mae", False)}
_CLASSIFICATION = ("accuracy", True)


def importance_metric(spec: ProjectSpec) -> tuple[str, bool]:
    """The metric importance is measured on, and whether higher is better: the project's first
    key metric, else ``mae`` (regression) or ``accuracy``.

    Examples
    --------
    >>> from modelpilot.spec import ProjectSpec
    >>> spec = ProjectSpec.model_validate({"project": "houses", "task": "regression",
    ...     "target": "price", "key_metrics": ["r2 >= 0.8"]})
    >>> importance_metric(spec)
    ('r2', True)
    """
    if spec.key_metrics:
        first = spec.key_metrics[0]
        return first.name, first.op in (">=", ">")
    return _DEFAULT.get(spec.task, _CLASSIFICATION)


def permutation_importance(
    runtime: ModelRuntime,
    spec: ProjectSpec,
    features: pd.DataFrame,
    truth: np.ndarray,
    *,
    repeats: int = 3,
    seed: int = 0,
) -> dict[str, float]:
    """Each feature's importance: the mean worsening of :func:`importance_metric` over
    ``repeats`` shuffles of its column (0 or below: the model does not rely on it).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> model = SimpleNamespace(classes=None, predict=lambda X: X["a"].to_numpy() * 2.0)
    >>> spec = SimpleNamespace(task="regression", key_metrics=[])
    >>> X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 1.0, 0.0, 1.0]})
    >>> found = permutation_importance(model, spec, X, X["a"].to_numpy() * 2.0)
    >>> found["a"] > 0, found["b"]
    (True, 0.0)
    """
    metric, higher_is_better = importance_metric(spec)
    sign = 1.0 if higher_is_better else -1.0
    base = _score(runtime, spec, features, truth, metric)
    if base is None:
        return {}
    rng = np.random.default_rng(seed)
    found: dict[str, float] = {}
    for column in features.columns:
        losses = []
        for _ in range(repeats):
            shuffled = features.copy()
            shuffled[column] = features[column].to_numpy()[rng.permutation(len(features))]
            score = _score(runtime, spec, shuffled, truth, metric)
            if score is not None:
                losses.append(sign * (base - score))
        if losses:
            found[str(column)] = float(np.mean(losses))
    return found


def _score(
    runtime: Any, spec: Any, features: pd.DataFrame, truth: np.ndarray, metric: str
) -> float | None:
    proba = runtime.predict_proba(features) if spec.task != "regression" else None
    values = compute_metrics(
        spec.task, truth, runtime.predict(features), proba=proba, classes=runtime.classes
    )
    return values.get(metric)
