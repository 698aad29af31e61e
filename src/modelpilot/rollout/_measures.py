"""What the gates of a rollout step measure: the window they read, the result each gives, and
the measures the analysis (``_analysis.py``), the proxies (``_proxies.py``) and a retraining
run's offline comparison share (agreement of two models, the shift between their outputs)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from modelpilot.spec import GateSpec

__all__ = [
    "GATE_KINDS",
    "GateResult",
    "StepWindow",
    "agreement_of",
    "insufficient",
    "is_classification",
    "loss_of",
    "ok_predictions",
    "prediction_shift",
    "row_errors",
]

#: What each gate is. A ``guard`` always vetoes; ``evidence`` (the labels) ranks above the
#: ``proxy`` gates, which stand in for quality while labels are missing or inconclusive.
GATE_KINDS: dict[str, str] = {
    "error_rate": "guard",
    "latency_p99": "guard",
    "key_metric": "evidence",
    "agreement": "proxy",
    "prediction_shift": "proxy",
    "estimated_key_metric": "proxy",
}


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict on a step's window.

    ``evidence`` is what the labels say (``key_metric`` only): ``better`` or ``worse`` (the
    sequential test crossed its level), ``misses_target`` (not significant, but the candidate
    misses a key-metric target the primary meets), ``inconclusive``, or None without enough
    labels.
    """

    metric: str
    status: str  # pass | fail | insufficient | unavailable (cannot judge this rollout)
    value: float | None
    threshold: float
    samples: int
    detail: str
    kind: str = "guard"
    evidence: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepWindow:
    """What the analysis reads: answered rows per version, and mirrored pairs."""

    candidate: pd.DataFrame
    primary: pd.DataFrame
    pairs: pd.DataFrame  # columns: id, candidate, primary (the two predictions of one request)


def row_errors(frame: pd.DataFrame) -> np.ndarray:
    if "error" not in frame or frame.empty:
        return np.zeros(len(frame), dtype=bool)
    return frame["error"].notna().to_numpy()


def ok_predictions(frame: pd.DataFrame) -> pd.Series:
    mask = ~row_errors(frame)
    return frame["prediction"][mask] if "prediction" in frame else pd.Series(dtype=float)


def is_classification(task: str | None) -> bool:
    return task in ("binary", "multiclass")


def prediction_shift(a: Any, b: Any, task: str | None) -> float:
    """The distance between two sets of predictions: the total variation of class shares for
    classifiers, the Kolmogorov-Smirnov statistic for regression.

    Examples
    --------
    >>> round(prediction_shift(pd.Series(["a", "a", "b"]), pd.Series(["a", "b", "b"]),
    ...                        "binary"), 3)
    0.333
    """
    a, b = pd.Series(np.asarray(a)), pd.Series(np.asarray(b))
    if is_classification(task):
        shares_a = a.astype(str).value_counts(normalize=True)
        shares_b = b.astype(str).value_counts(normalize=True)
        keys = shares_a.index.union(shares_b.index)
        return float(
            0.5
            * np.abs(
                shares_a.reindex(keys, fill_value=0) - shares_b.reindex(keys, fill_value=0)
            ).sum()
        )
    return float(stats.ks_2samp(a.astype(float), b.astype(float)).statistic)


def agreement_of(candidate: Any, primary: Any, task: str | None) -> np.ndarray:
    """Per pair of predictions of the same input, whether they agree: the same class for
    classifiers, for regression within 10% of the primary's prediction.

    Examples
    --------
    >>> agreement_of(pd.Series([100.0, 150.0]), pd.Series([105.0, 100.0]), "regression").tolist()
    [True, False]
    """
    candidate, primary = pd.Series(np.asarray(candidate)), pd.Series(np.asarray(primary))
    if is_classification(task):
        same: np.ndarray = candidate.astype(str).to_numpy() == primary.astype(str).to_numpy()
        return same
    c = candidate.astype(float).to_numpy()
    p = primary.astype(float).to_numpy()
    close: np.ndarray = np.abs(c - p) <= 0.1 * np.maximum(np.abs(p), 1e-12)
    return close


def loss_of(frame: pd.DataFrame, task: str | None) -> np.ndarray:
    loss: np.ndarray
    if is_classification(task):
        loss = (
            frame["prediction"].astype(str).to_numpy() != frame["label"].astype(str).to_numpy()
        ).astype(float)
    else:
        loss = np.abs(
            frame["prediction"].astype(float).to_numpy() - frame["label"].astype(float).to_numpy()
        )
    return loss


def insufficient(gate: GateSpec, samples: int, detail: str) -> GateResult:
    """A gate's result when its sample is below ``min_samples``: the step waits."""
    return GateResult(
        gate.metric, "insufficient", None, gate.threshold, samples, detail, GATE_KINDS[gate.metric]
    )
