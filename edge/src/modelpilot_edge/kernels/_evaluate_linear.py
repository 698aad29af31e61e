"""Evaluate a linear model given as plain arrays: scikit-learn's arithmetic, NumPy only.

This module imports nothing but NumPy (no scikit-learn, no SciPy, nothing of modelpilot): it
lives in the device runner, and modelpilot's server imports it from there. Building the arrays
from a fitted estimator and checking them against it is the job of modelpilot's
``runtime/_kernels.py``.

Every operation is the one scikit-learn does, in the same order:

- ``StandardScaler.transform``: ``X - mean_``, then ``/ scale_``;
- ``LinearModel._decision_function``: ``X @ coef_.T + intercept_`` (the same BLAS call, so the
  same result for the same array in the same memory layout);
- ``expit``: SciPy computes ``1 / (1 + exp(-x))`` with the C library's ``exp``; NumPy's
  float64 ``exp`` calls the same function on CPUs without AVX-512 and is checked against SciPy
  when a kernel is built (modelpilot's ``runtime/_kernels.py``);
- ``softmax``: ``sklearn.utils.extmath.softmax`` (subtract the row maximum, ``exp``, divide by
  ``np.sum(axis=1)``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["LinearArrays", "expit", "softmax"]


def expit(x: np.ndarray) -> np.ndarray:
    """The logistic function as SciPy computes it: ``1 / (1 + exp(-x))``.

    Examples
    --------
    >>> expit(np.array([0.0, 2.0])).round(6).tolist()
    [0.5, 0.880797]
    """
    result: np.ndarray = 1 / (1 + np.exp(-x))
    return result


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax as ``sklearn.utils.extmath.softmax`` computes it (on a copy).

    Examples
    --------
    >>> softmax(np.array([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """
    out = np.array(scores, dtype=np.float64, copy=True)
    out -= out.max(axis=1).reshape(-1, 1)
    np.exp(out, out=out)
    out /= out.sum(axis=1).reshape(-1, 1)
    return out


@dataclass(frozen=True)
class LinearArrays:
    """A linear model (after optional standard scalings) as arrays.

    ``means[i]``/``scales[i]`` are the ``i``-th scaler's ``mean_`` and ``scale_`` (empty arrays
    where the scaler does not centre or does not scale). ``coef_t`` is ``coef_.T`` (2-D, or
    1-D for a single-target regressor); ``intercept`` is ``intercept_``. ``n_classes`` is 0 for
    a regressor. Round-trips through :meth:`save` / :meth:`load` (``np.savez``).

    Examples
    --------
    >>> arrays = LinearArrays(
    ...     width=2, means=(np.zeros(2),), scales=(np.ones(2),),
    ...     coef_t=np.array([[1.0], [-1.0]]), intercept=np.array([0.5]), n_classes=2,
    ... )
    >>> scores, proba, index = arrays.evaluate(np.array([[1.0, 0.0], [0.0, 3.0]]))
    >>> scores.tolist(), index.tolist()
    ([1.5, -2.5], [1, 0])
    """

    width: int
    means: tuple[np.ndarray, ...]
    scales: tuple[np.ndarray, ...]
    coef_t: np.ndarray
    intercept: np.ndarray
    n_classes: int

    def decision(self, X: np.ndarray) -> np.ndarray:
        """``decision_function``: raw scores, 1-D for binary classifiers."""
        for mean, scale in zip(self.means, self.scales, strict=True):
            if mean.size:
                X = X - mean
            if scale.size:
                X = X / scale
        scores: np.ndarray = X @ self.coef_t + self.intercept
        if scores.ndim > 1 and scores.shape[1] == 1 and self.n_classes:
            return scores.reshape(-1)
        return scores

    def evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Scores, class probabilities and the index of the predicted class (classifiers).

        For a regressor, the scores are the predictions and the other two are None.
        """
        scores = self.decision(X)
        if not self.n_classes:
            return scores, None, None
        if scores.ndim == 1:  # binary: LinearClassifierMixin.predict and _predict_proba_lr
            positive = expit(scores)
            return scores, np.stack([1 - positive, positive], axis=1), (scores > 0).astype(np.intp)
        return scores, softmax(scores), scores.argmax(axis=1)

    def save(self, file: Any) -> None:
        """Write the arrays with ``np.savez`` (a path or a binary file object)."""
        arrays: dict[str, Any] = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in _TUPLES
        }
        for name in _TUPLES:
            for i, array in enumerate(getattr(self, name)):
                arrays[f"{name}_{i}"] = array
        arrays["n_scalers"] = len(self.means)
        np.savez(file, **arrays)

    @classmethod
    def load(cls, file: Any) -> LinearArrays:
        """Read arrays written by :meth:`save`."""
        with np.load(file, allow_pickle=False) as data:
            n = int(data["n_scalers"])
            return cls(
                width=int(data["width"]),
                means=tuple(data[f"means_{i}"] for i in range(n)),
                scales=tuple(data[f"scales_{i}"] for i in range(n)),
                coef_t=data["coef_t"],
                intercept=data["intercept"],
                n_classes=int(data["n_classes"]),
            )


_TUPLES = ("means", "scales")
