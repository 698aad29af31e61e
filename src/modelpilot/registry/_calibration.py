"""Calibration of a classifier's probabilities, checked at registration, and the performance
estimator built on it (``_estimate.py`` has the method and its limits).

At registration, on the holdout: one isotonic map per class (scikit-learn's
``IsotonicRegression``, one-vs-rest, rows renormalised) turns the model's probabilities into
calibrated ones. Whether the estimate can be trusted is checked the way it will be used:
five-fold, each fold's metrics are estimated from probabilities calibrated on the other folds
and compared with its realised metrics. It is trusted when the holdout has at least
:data:`MIN_ROWS` rows and the estimate of every key metric (and accuracy) was off by at most
:data:`MAX_ERROR`; otherwise ``reason`` says why. The maps (at most :data:`MAX_KNOTS` points
each) are stored with the version, in its metrics as ``calibration``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from modelpilot.registry._estimate import ESTIMABLE, expected_metrics
from modelpilot.registry._metrics import compute_metrics
from modelpilot.spec import KeyMetric

__all__ = ["MAX_ERROR", "MIN_ROWS", "Calibration", "PerformanceEstimator", "fit_calibration"]

#: Fewer holdout rows than this and the check says nothing: the estimate is not trusted.
MIN_ROWS = 200
#: The largest cross-validated error of an estimated metric (in the metric's units; the
#: metrics CBPE estimates are shares, except log loss, which is not held to it).
MAX_ERROR = 0.03
#: Each stored map keeps at most this many points (interpolated linearly between them).
MAX_KNOTS = 100
_FOLDS = 5


@dataclass(frozen=True)
class Calibration:
    """A version's calibration maps and what the check at registration found."""

    classes: list[str]
    maps: list[tuple[list[float], list[float]]]  # per class: probabilities in, calibrated out
    rows: int
    ece_raw: float  # expected calibration error of the model's own top-class probability
    estimate_error: dict[str, float]  # per metric: mean absolute error over the folds
    trusted: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Calibration:
        return cls(
            classes=[str(c) for c in data["classes"]],
            maps=[(list(x), list(y)) for x, y in data["maps"]],
            rows=int(data["rows"]),
            ece_raw=float(data["ece_raw"]),
            estimate_error={k: float(v) for k, v in dict(data["estimate_error"]).items()},
            trusted=bool(data["trusted"]),
            reason=str(data["reason"]),
        )

    def calibrate(self, proba: np.ndarray) -> Any:
        """Calibrated probabilities of ``proba`` (``n x classes``, the classes' order)."""
        return _apply(self.maps, proba)


def _knots(model: IsotonicRegression) -> tuple[list[float], list[float]]:
    x, y = np.asarray(model.X_thresholds_), np.asarray(model.y_thresholds_)
    if len(x) > MAX_KNOTS:
        keep = np.unique(np.linspace(0, len(x) - 1, MAX_KNOTS).round().astype(int))
        x, y = x[keep], y[keep]
    return [float(v) for v in x], [float(v) for v in y]


def _fit_maps(truth: np.ndarray, proba: np.ndarray) -> list[tuple[list[float], list[float]]]:
    maps = []
    for c in range(proba.shape[1]):
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        maps.append(_knots(model.fit(proba[:, c], (truth == c).astype(float))))
    return maps


def _apply(maps: Sequence[tuple[Sequence[float], Sequence[float]]], proba: np.ndarray) -> Any:
    columns = [
        np.interp(proba[:, c], x, y) if len(x) else proba[:, c] for c, (x, y) in enumerate(maps)
    ]
    calibrated = np.column_stack(columns)
    if calibrated.shape[1] == 2:
        # Binary: the positive class's map decides; the other is its complement.
        return np.column_stack([1.0 - calibrated[:, 1], calibrated[:, 1]])
    total = calibrated.sum(axis=1, keepdims=True)
    return np.where(total > 0, calibrated / np.where(total > 0, total, 1.0), 1.0 / len(maps))


def _ece(truth: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top-class probability, in equal-width bins."""
    confidence = proba.max(axis=1)
    correct = proba.argmax(axis=1) == truth
    edges = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        mask = edges == b
        if mask.any():
            error += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(error)


def _checked(key_metrics: Sequence[KeyMetric]) -> list[str]:
    names = [k.name for k in key_metrics if k.name in ESTIMABLE]
    return list(dict.fromkeys(["accuracy", *names]))


def fit_calibration(
    truth: Sequence[Any] | np.ndarray,
    proba: np.ndarray,
    classes: Sequence[Any],
    *,
    key_metrics: Sequence[KeyMetric] = (),
    seed: int = 0,
) -> Calibration:
    """Calibrate a classifier's holdout probabilities and check the estimate they give.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(size=2000)
    >>> truth = (rng.uniform(size=2000) < p).astype(int)
    >>> calibration = fit_calibration(truth, np.column_stack([1 - p, p]), [0, 1])
    >>> calibration.trusted, calibration.estimate_error["accuracy"] < 0.03
    (True, True)
    >>> fit_calibration(truth[:50], np.column_stack([1 - p, p])[:50], [0, 1]).reason
    'the holdout has 50 rows; checking the calibration needs at least 200'
    """
    names = [str(c) for c in classes]
    labels = np.asarray([_name(t) for t in np.asarray(truth).tolist()])
    index = {name: i for i, name in enumerate(names)}
    known = np.asarray([label in index for label in labels])
    proba, labels = np.asarray(proba, dtype=float)[known], labels[known]
    y = np.asarray([index[label] for label in labels], dtype=int)
    n = len(y)
    task = "binary" if len(names) == 2 else "multiclass"
    checked = _checked(key_metrics)
    maps = _fit_maps(y, proba) if n else [([], []) for _ in names]
    ece = _ece(y, proba) if n else float("nan")
    errors: dict[str, list[float]] = {name: [] for name in checked}
    counts = np.bincount(y, minlength=len(names)) if n else np.zeros(len(names), dtype=int)
    folds = min(_FOLDS, int(counts[counts > 0].min()) if n else 0)
    if n >= MIN_ROWS and folds >= 2 and (counts > 0).sum() >= 2:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        for fit_rows, test_rows in splitter.split(proba, y):
            calibrated = _apply(_fit_maps(y[fit_rows], proba[fit_rows]), proba[test_rows])
            predicted = proba[test_rows].argmax(axis=1)
            estimate = expected_metrics(
                calibrated,
                predicted,
                scores=proba[test_rows],
                positive=1 if task == "binary" else None,
            )
            realised = compute_metrics(
                task, y[test_rows], predicted, proba=proba[test_rows], classes=range(len(names))
            )
            for name in checked:
                if estimate.get(name) is not None and realised.get(name) is not None:
                    errors[name].append(abs(estimate[name] - float(realised[name] or 0.0)))
    error = {name: float(np.mean(v)) for name, v in errors.items() if v}
    trusted, reason = _verdict(n, error, checked)
    return Calibration(names, maps, n, ece, error, trusted, reason)


def _verdict(rows: int, error: Mapping[str, float], checked: Sequence[str]) -> tuple[bool, str]:
    if rows < MIN_ROWS:
        return False, (
            f"the holdout has {rows} rows; checking the calibration needs at least {MIN_ROWS}"
        )
    if not error:
        return False, "the holdout holds a single class: the estimate could not be checked"
    off = {k: v for k, v in error.items() if k != "log_loss" and v > MAX_ERROR}
    if off:
        worst = max(off, key=lambda k: off[k])
        return False, (
            f"on the holdout the estimated {worst} was off by {off[worst]:.3f} on average "
            f"(more than {MAX_ERROR}), even after calibration"
        )
    shown = ", ".join(f"{k} {v:.3f}" for k, v in error.items())
    return True, f"cross-validated on {rows} holdout rows, mean error: {shown}"


class PerformanceEstimator:
    """The key metrics a version is expected to reach on logged rows, without labels.

    Built from the calibration stored with the version (:meth:`of`); ``trusted`` and
    ``reason`` repeat what the check at registration found.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> p = rng.uniform(size=1000)
    >>> truth = (rng.uniform(size=1000) < p).astype(int)
    >>> calibration = fit_calibration(truth, np.column_stack([1 - p, p]), [0, 1])
    >>> estimator = PerformanceEstimator(calibration, task="binary", metrics=["accuracy"])
    >>> rows = pd.DataFrame({"prediction": [1, 0], "proba_0": [0.1, 0.8], "proba_1": [0.9, 0.2]})
    >>> round(estimator.estimate(rows)["accuracy"], 1)
    0.9
    """

    def __init__(self, calibration: Calibration, *, task: str, metrics: Sequence[str]) -> None:
        self.calibration = calibration
        self.task = task
        self.metrics = [m for m in metrics if m in ESTIMABLE]

    @classmethod
    def of(cls, version: Any, *, key_metrics: Sequence[KeyMetric]) -> PerformanceEstimator | None:
        """The estimator of a registered version (``ModelVersion``); None when the version is
        a regressor or was registered without a holdout (or before calibration was kept)."""
        data = version.metrics.get("calibration") if isinstance(version.metrics, dict) else None
        if not isinstance(data, Mapping) or version.task not in ("binary", "multiclass"):
            return None
        names = [k.name for k in key_metrics]
        return cls(Calibration.from_dict(data), task=version.task, metrics=names)

    @property
    def trusted(self) -> bool:
        return self.calibration.trusted

    @property
    def reason(self) -> str:
        return self.calibration.reason

    def estimate(self, frame: pd.DataFrame) -> dict[str, float]:
        """The estimated key metrics on ``frame`` (logged rows: ``prediction`` and one
        ``proba_<class>`` column per class); empty without probabilities."""
        classes = self.calibration.classes
        columns = [f"proba_{c}" for c in classes]
        if frame.empty or any(c not in frame for c in columns):
            return {}
        proba = frame[columns].to_numpy(dtype=float)
        usable = np.isfinite(proba).all(axis=1)
        if not usable.any():
            return {}
        proba = proba[usable]
        index = {name: i for i, name in enumerate(classes)}
        predictions = frame["prediction"].to_numpy()[usable] if "prediction" in frame else []
        predicted = np.asarray([index.get(_name(p), -1) for p in predictions], dtype=int)
        if len(predicted) != len(proba):
            predicted = np.full(len(proba), -1)
        # A prediction that is no known class (a post-processed label): the top probability.
        predicted = np.where(predicted >= 0, predicted, proba.argmax(axis=1))
        return expected_metrics(
            self.calibration.calibrate(proba),
            predicted,
            scores=proba,
            positive=1 if len(classes) == 2 else None,
            metrics=self.metrics,
        )


def _name(value: Any) -> str:
    """A logged prediction as a class name: ``1.0`` (a float column) is class ``1``."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
