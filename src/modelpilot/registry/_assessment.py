"""What registration learns about a model on its holdout besides its metrics: how much it
depends on each feature (permutation importance) and, for a classifier, how far its
probabilities can be trusted to estimate its metrics without labels (``_calibration.py``).

Both are stored with the version, in its metrics: ``importance`` (feature to its share of the
total importance; drift alerts weigh features by it) and ``calibration``.

Permutation importance (scikit-learn's ``permutation_importance``): shuffle one feature's
column and measure how much the first key metric (else accuracy, or mean absolute error for a
regressor) gets worse. It works for any model behind the runtime protocol, where a model's own
``feature_importances_`` exist only for trees and mean something different for each library.
Registration stays fast: at most :data:`IMPORTANCE_ROWS` holdout rows and
:data:`IMPORTANCE_REPEATS` shuffles per feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance

from modelpilot.data import SchemaValidator, read_table
from modelpilot.registry._calibration import fit_calibration
from modelpilot.registry._metrics import compute_metrics
from modelpilot.runtime import ModelRuntime
from modelpilot.spec import METRICS, FeatureSpec, ProjectSpec

__all__ = [
    "IMPORTANCE_REPEATS",
    "IMPORTANCE_ROWS",
    "align_labels",
    "assess_holdout",
    "importance_metric",
    "importance_shares",
]

IMPORTANCE_ROWS = 1000
IMPORTANCE_REPEATS = 3


class _Scored:
    """The runtime as scikit-learn's permutation_importance calls it: ``scoring(model, X, y)``
    on a ``fit``-less object (it never fits, only predicts)."""

    def __init__(self, runtime: ModelRuntime) -> None:
        self.runtime = runtime

    def fit(self, *args: Any) -> _Scored:
        """Present because scikit-learn checks for it; the model is already fitted."""
        return self


def importance_metric(spec: ProjectSpec) -> str:
    """The metric permutation importance is measured by: the first key metric computed from
    predicted classes or values, else accuracy (mean absolute error for a regressor).

    Examples
    --------
    >>> spec = ProjectSpec.model_validate({"project": "p", "task": "regression", "target": "y"})
    >>> importance_metric(spec)
    'mae'
    """
    task = spec.task or "regression"
    names = [k.name for k in spec.key_metrics if k.name not in ("roc_auc", "log_loss")]
    return names[0] if names else ("accuracy" if task != "regression" else "mae")


def _scorer(spec: ProjectSpec) -> tuple[str, Any]:
    task = spec.task or "regression"
    metric = importance_metric(spec)
    sign = 1.0 if METRICS.get(metric) == "higher" else -1.0

    def score(model: _Scored, frame: pd.DataFrame, truth: Any) -> float:
        values = compute_metrics(task, truth, model.runtime.predict(frame))
        value = values.get(metric)
        return sign * float(value) if value is not None else 0.0

    return metric, score


def importance_shares(
    runtime: ModelRuntime,
    spec: ProjectSpec,
    frame: pd.DataFrame,
    truth: Any,
    *,
    seed: int = 0,
) -> dict[str, float]:
    """Each feature's share of the model's permutation importance on ``frame`` (features that
    do not matter, or whose shuffling helps, get 0; the shares sum to 1 unless all are 0).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"x": rng.normal(size=300), "noise": rng.normal(size=300)})
    >>> model = SimpleNamespace(predict=lambda f: (f["x"] > 0).astype(int).to_numpy())
    >>> spec = ProjectSpec.model_validate({"project": "p", "task": "binary", "target": "y"})
    >>> importance_shares(model, spec, frame, (frame["x"] > 0).astype(int).to_numpy())
    {'x': 1.0, 'noise': 0.0}
    """
    rows = frame.reset_index(drop=True)
    y = np.asarray(truth)
    if len(rows) > IMPORTANCE_ROWS:
        keep = np.random.default_rng(seed).choice(len(rows), IMPORTANCE_ROWS, replace=False)
        rows, y = rows.iloc[np.sort(keep)].reset_index(drop=True), y[np.sort(keep)]
    _, score = _scorer(spec)
    result = permutation_importance(
        _Scored(runtime),
        rows,
        y,
        scoring=score,
        n_repeats=IMPORTANCE_REPEATS,
        random_state=seed,
    )
    raw = np.clip(np.asarray(result.importances_mean, dtype=float), 0.0, None)
    total = float(raw.sum())
    shares = raw / total if total > 0 else np.zeros_like(raw)
    return {str(name): round(float(v), 6) for name, v in zip(rows.columns, shares, strict=True)}


def assess_holdout(
    runtime: ModelRuntime,
    spec: ProjectSpec,
    holdout: Path,
    *,
    features: Sequence[FeatureSpec],
) -> dict[str, Any]:
    """``importance`` and, for a classifier with probabilities, ``calibration``, measured on
    the holdout's valid rows (registration's ``evaluate`` has already refused a holdout whose
    rows fail the schema). Empty when there is nothing to measure on."""
    frame = read_table(holdout, types={f.name: f.type for f in features})
    if spec.target not in frame:
        return {}
    frame = frame[frame[spec.target].notna()].reset_index(drop=True)
    result = SchemaValidator(list(features)).validate_frame(frame)
    clean = result.clean
    if len(clean) < 2:
        return {}
    truth = frame[spec.target][result.valid].to_numpy()
    out: dict[str, Any] = {}
    if spec.task != "regression" and runtime.classes is not None:
        truth = align_labels(truth, runtime.classes)
    out["importance"] = importance_shares(runtime, spec, clean, truth)
    if spec.task in ("binary", "multiclass") and runtime.classes is not None:
        proba = runtime.predict_proba(clean)
        if proba is not None:
            out["calibration"] = fit_calibration(
                truth, proba, runtime.classes, key_metrics=spec.key_metrics
            ).to_dict()
    return out


def align_labels(truth: Any, classes: list[object]) -> Any:
    """Holdout labels as the model's classes.

    Examples
    --------
    >>> align_labels(np.array([1.0, 0.0]), [0, 1]).tolist()
    [1, 0]
    """
    # CSV readers turn integer labels into floats (1.0): compare them as the model's classes.
    if classes and isinstance(classes[0], int | np.integer) and truth.dtype.kind == "f":
        return truth.astype(np.int64)
    if classes and isinstance(classes[0], str) and truth.dtype.kind != "O":
        return truth.astype(str)
    return truth
