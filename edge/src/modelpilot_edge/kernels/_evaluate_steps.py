"""Column-wise arithmetic before a kernel, as scikit-learn's transformers do it. NumPy only,
like ``_evaluate_trees.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["STEP_KINDS", "ColumnSteps"]


STEP_KINDS = ("impute", "subtract", "divide", "multiply", "add")


@dataclass(frozen=True, eq=False)
class ColumnSteps:
    """Column-wise arithmetic before the trees, as scikit-learn's transformers do it.

    ``kinds[i]`` is one of :data:`STEP_KINDS` and ``values[i]`` has one value per column:
    ``impute`` puts the value where the input is NaN (a NaN value leaves the column alone,
    as SimpleImputer); ``subtract``/``divide`` are StandardScaler's ``X - mean_``, ``/ scale_``;
    ``multiply``/``add`` are MinMaxScaler's ``X * scale_ + min_``. A column a step leaves
    alone gets the neutral value (0 to subtract or add, 1 to divide or multiply), which
    changes no bit.

    Examples
    --------
    >>> steps = ColumnSteps(("impute", "subtract"), np.array([[5.0, np.nan], [1.0, 0.0]]))
    >>> steps.apply(np.array([[np.nan, np.nan], [2.0, 3.0]])).tolist()
    [[4.0, nan], [1.0, 3.0]]
    """

    kinds: tuple[str, ...]
    values: np.ndarray

    def apply(self, X: np.ndarray) -> np.ndarray:
        for kind, values in zip(self.kinds, self.values, strict=True):
            if kind == "impute":
                X = np.where(np.isnan(X) & ~np.isnan(values), values, X)
            elif kind == "subtract":
                X = X - values
            elif kind == "divide":
                X = X / values
            elif kind == "multiply":
                X = X * values
            elif kind == "add":
                X = X + values
            else:
                raise ValueError(f"unknown step {kind!r}; known: {', '.join(STEP_KINDS)}")
        return X

    def save(self, file: Any) -> None:
        """Write with ``np.savez`` (the kinds as a string array: no pickle)."""
        np.savez(file, kinds=np.array(self.kinds, dtype=str), values=self.values)

    @classmethod
    def load(cls, file: Any) -> ColumnSteps:
        with np.load(file, allow_pickle=False) as data:
            return cls(tuple(str(k) for k in data["kinds"]), data["values"])
