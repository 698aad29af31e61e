"""The runtime protocol: what every loaded model answers, whatever format it was saved in."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd


@runtime_checkable
class ModelRuntime(Protocol):
    """A loaded model, vectorised over a batch.

    ``predict`` returns one prediction per row. ``predict_proba`` returns an
    ``(n_rows, n_classes)`` array in the order of ``classes``, or ``None`` when the model has no
    probabilities (regressors, some classifiers).
    """

    flavor: str
    classes: list[object] | None

    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray | None: ...
