"""The runtime protocol: what every loaded model answers, whatever format it was saved in."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

# A batch of inputs: a DataFrame with the model's feature columns, or (only for runtimes whose
# ``accepts_array`` is true) a 2-D float64 array with the features in the model's order.
ModelInput = pd.DataFrame | np.ndarray


@runtime_checkable
class ModelRuntime(Protocol):
    """A loaded model, vectorised over a batch.

    ``predict`` returns one prediction per row. ``predict_proba`` returns an
    ``(n_rows, n_classes)`` array in the order of ``classes``, or ``None`` when the model has no
    probabilities (regressors, some classifiers).

    Optional, found with ``getattr``: ``accepts_array`` (true when the runtime takes a 2-D
    float array, so the server skips building a DataFrame) and ``predict_with_proba`` (both
    answers from one model call where the format allows it).
    """

    flavor: str
    classes: list[object] | None

    def predict(self, frame: ModelInput) -> np.ndarray: ...

    def predict_proba(self, frame: ModelInput) -> np.ndarray | None: ...


def column_positions(
    model_names: list[str] | None, columns: list[str]
) -> tuple[bool, np.ndarray | None]:
    """Whether 2-D arrays with ``columns`` can feed a model with named features, and which
    positions to take (None: the columns are the model's, in its order).

    Examples
    --------
    >>> column_positions(["b", "a"], ["a", "b", "c"])
    (True, array([1, 0]))
    >>> column_positions(["a", "b"], ["a", "b"]), column_positions(["z"], ["a"])
    ((True, None), (False, None))
    """
    if model_names is None or not set(model_names) <= set(columns):
        return False, None
    take = np.array([columns.index(name) for name in model_names], dtype=np.intp)
    identity = len(columns) == len(take) and bool((take == np.arange(len(take))).all())
    return True, None if identity else take
