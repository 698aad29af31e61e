"""Candidate models for the rollout tests: the house model, wrapped to misbehave in one way.

They live in a module of their own so that a pickled instance loads in the server process
(started with this directory on ``PYTHONPATH``). Each wrapper keeps the inner model's
``feature_names_in_``, so the server hands it the same columns in the same order.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin


def fails_on(size_sqft: float, *, share: float = 0.3) -> bool:
    """Whether :class:`FlakyCandidate` raises on a house of this size: a stable hash, so the
    same house always fails (about ``share`` of all sizes).

    Examples
    --------
    >>> fails_on(1500.0) == fails_on(1500.0)
    True
    >>> round(sum(fails_on(float(s)) for s in range(500, 5500)) / 5000, 1)
    0.3
    """
    digest = hashlib.blake2b(repr(float(size_sqft)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 1000 < share * 1000


class _Wrapper(RegressorMixin, BaseEstimator):
    def __init__(self, model: Any) -> None:
        self.model = model

    @property
    def feature_names_in_(self) -> np.ndarray:
        names: np.ndarray = self.model.feature_names_in_
        return names

    def fit(self, X: pd.DataFrame, y: Any) -> _Wrapper:
        return self  # wraps a fitted model


class FlakyCandidate(_Wrapper):
    """Raises ``ValueError`` on about 30% of houses (chosen by :func:`fails_on`)."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        bad = [s for s in np.asarray(X["size_sqft"], dtype=float) if fails_on(s)]
        if bad:
            raise ValueError(f"cannot price a house of {bad[0]:g} sqft")
        predictions: np.ndarray = self.model.predict(X)
        return predictions


class SlowCandidate(_Wrapper):
    """The same answers, ten times later: after the inner model's call it waits nine times as
    long as that call took, and at least ``min_delay_s`` (the house model takes a few
    milliseconds on an idle core, but much longer on a busy machine)."""

    def __init__(self, model: Any, min_delay_s: float = 0.05) -> None:
        super().__init__(model)
        self.min_delay_s = min_delay_s

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        started = time.perf_counter()
        predictions: np.ndarray = self.model.predict(X)
        # Stands in for a slower model; not a wait in a test.
        time.sleep(max(self.min_delay_s, 9 * (time.perf_counter() - started)))
        return predictions


class ShiftedCandidate(_Wrapper):
    """Every prediction ``offset`` higher: a unit or a feature bug, invisible to a smoke test."""

    def __init__(self, model: Any, offset: float = 200_000.0) -> None:
        super().__init__(model)
        self.offset = offset

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        predictions: np.ndarray = self.model.predict(X) + self.offset
        return predictions
