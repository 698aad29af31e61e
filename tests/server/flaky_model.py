"""A model that raises on some inputs, for the tests of a server that must survive it.

It lives in a module of its own so that a pickled instance can be loaded by the server process
(started with this directory on ``PYTHONPATH``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin

#: The house size this model cannot stand.
CURSED_SIZE = 1234.5  # listings give whole square feet: never in the data sets


class FlakyRegressor(RegressorMixin, BaseEstimator):
    """Predicts the mean price, but raises ``ValueError`` on a house of ``CURSED_SIZE`` sqft.

    Examples
    --------
    >>> frame = pd.DataFrame({"size_sqft": [1000.0, 2000.0], "price": [1.0, 3.0]})
    >>> model = FlakyRegressor().fit(frame[["size_sqft"]], frame["price"])
    >>> model.predict(frame[["size_sqft"]]).tolist()
    [2.0, 2.0]
    >>> model.predict(pd.DataFrame({"size_sqft": [CURSED_SIZE]}))
    Traceback (most recent call last):
    ...
    ValueError: size_sqft 1234.5 is cursed
    """

    def fit(self, X: pd.DataFrame, y: Any) -> FlakyRegressor:
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if (np.asarray(X["size_sqft"], dtype=float) == CURSED_SIZE).any():
            raise ValueError(f"size_sqft {CURSED_SIZE:g} is cursed")
        return np.full(len(X), self.mean_)
