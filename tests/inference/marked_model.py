"""A house-price model that raises on one marked house size, for the tests of batch scoring.

A scikit-learn pipeline whose first step refuses the marked size: the rows the model raises on
are known in advance, and the other rows get a real model's predictions. ``refuse_marked``
lives in a module of its own so that joblib pickles it by reference and a loaded model finds it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import make_column_transformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

#: The name the marked model is registered under.
MARKED = "marked"

#: The house size the model raises on (listings give whole square feet: never in the data sets).
MARKED_SIZE = 4321.5


def refuse_marked(X: pd.DataFrame) -> pd.DataFrame:
    """Pass the rows through, unless one has the marked size.

    Examples
    --------
    >>> refuse_marked(pd.DataFrame({"size_sqft": [1000.0]})).shape
    (1, 1)
    >>> refuse_marked(pd.DataFrame({"size_sqft": [1000.0, MARKED_SIZE]}))
    Traceback (most recent call last):
    ...
    ValueError: size_sqft 4321.5 is marked
    """
    if (np.asarray(X["size_sqft"], dtype=float) == MARKED_SIZE).any():
        raise ValueError(f"size_sqft {MARKED_SIZE:g} is marked")
    return X


def marked_house_model(train: pd.DataFrame) -> Pipeline:
    """A house-price model (one-hot categories, boosted trees) behind ``refuse_marked``."""
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
        remainder="passthrough",
    )
    model = make_pipeline(
        FunctionTransformer(refuse_marked),
        encode,
        HistGradientBoostingRegressor(max_iter=20, random_state=0),
    )
    return model.fit(train.drop(columns="price"), train["price"])
