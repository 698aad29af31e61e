"""Links (raw scores to probabilities) and class decisions of tree ensembles, each as its
library computes it (see ``_evaluate_trees.py``). NumPy only."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["DECISIONS", "LINKS", "decide", "expf", "link"]

LINKS = (
    "identity",  # raw scores are the answer (regression)
    "exp",  # np.exp of raw scores (Poisson, gamma regression)
    "proba",  # sums are already probabilities (forests)
    "expit",  # binary classification, float64 (scikit-learn, LightGBM with link_scale)
    "softmax",  # multiclass, float64, class after class (scikit-learn boosting, LightGBM)
    "expit32",  # XGBoost binary:logistic in float32
    "softmax32",  # XGBoost multi:softprob in float32
)
DECISIONS = (
    "none",  # regression
    "positive",  # binary: class 1 where the raw score > 0
    "nonnegative",  # binary: class 1 where the raw score >= 0
    "half",  # binary: class 1 where the probability > 0.5
    "argmax_raw",  # class of the largest raw score (first on ties)
    "argmax_proba",  # class of the largest probability (first on ties)
)


def expf(x: np.ndarray) -> np.ndarray:
    """float32 ``exp``: float64 ``exp`` rounded to float32, the correctly rounded result.
    NumPy's own float32 exp differs from it in the last bit on ~40% of inputs; the C
    library's ``expf`` (glibc) on a few."""
    result: np.ndarray = np.exp(x.astype(np.float64)).astype(np.float32)
    return result


def link(
    link: str, raw: np.ndarray, scale: float, expf: Callable[[np.ndarray], np.ndarray] = expf
) -> np.ndarray:
    if link in ("identity", "proba"):
        return raw
    if link == "exp":
        result: np.ndarray = np.exp(raw)
        return result
    if link == "expit":
        x = raw[:, 0] if scale == 1.0 else scale * raw[:, 0]
        if len(raw) == 1 and x.dtype == np.float64:  # one row (online): fewer calls, the same
            # bits (np.exp of the same array; one IEEE addition and division on its scalar)
            p = 1 / (1 + np.exp(-x)[0])
            return np.array([[1 - p, p]])
        out = np.empty((len(raw), 2))
        out[:, 1] = 1 / (1 + np.exp(-x))
        np.subtract(1, out[:, 1], out=out[:, 0])
        return out
    if link == "softmax":
        shifted = raw - raw.max(axis=1, keepdims=True)
        exps = np.exp(shifted)
        total = exps[:, 0].copy()
        for k in range(1, exps.shape[1]):
            total += exps[:, k]
        probabilities: np.ndarray = exps / total[:, None]
        return probabilities
    if link == "expit32":
        one = np.float32(1.0)
        x = np.minimum(-raw[:, 0].astype(np.float32), np.float32(88.7))
        out32 = np.empty((len(raw), 2), dtype=np.float32)
        out32[:, 1] = one / (expf(x) + one + np.float32(1e-16))
        np.subtract(one, out32[:, 1], out=out32[:, 0])
        return out32
    if link == "softmax32":
        raw32 = raw.astype(np.float32)
        exps = expf(raw32 - raw32.max(axis=1, keepdims=True))
        total = exps[:, 0].astype(np.float64)
        for k in range(1, exps.shape[1]):
            total += exps[:, k]
        probabilities32: np.ndarray = exps / total.astype(np.float32)[:, None]
        return probabilities32
    raise ValueError(f"unknown link {link!r}; known: {', '.join(LINKS)}")


def decide(decision: str, raw: np.ndarray, proba: np.ndarray) -> np.ndarray:
    if decision == "positive":
        return (raw[:, 0] > 0).astype(np.intp)
    if decision == "nonnegative":
        return (raw[:, 0] >= 0).astype(np.intp)
    if decision == "half":
        return (proba[:, 1] > 0.5).astype(np.intp)
    if decision in ("argmax_raw", "argmax_proba"):
        index: np.ndarray = (raw if decision == "argmax_raw" else proba).argmax(axis=1)
        return index
    raise ValueError(f"unknown decision {decision!r}; known: {', '.join(DECISIONS)}")
