"""NumPy kernels for scikit-learn's linear models: the same arithmetic, without per-call checks.

Why by hand: on one row, scikit-learn's ``predict_proba`` of a 20-feature LogisticRegression
takes ~145 us, of which ~140 us are input checks (``check_array``, estimator tags,
feature-name checks) that the server's schema validator has already done; the arithmetic
itself takes ~5 us. One-row requests are what an online server sees most, so this is most of
a request's CPU. No library offers "the same answer without the checks" (sklearn's
``assume_finite`` removes only one of them, and ONNX runtimes give different floating point).

A kernel is used only when it is exact: it does the operations scikit-learn does, in the same
order, with the same functions, and is checked bit for bit against the estimator on a fixed
sample when the model loads. It takes only finite float arrays of the model's width; anything
else goes to scikit-learn, so invalid input fails with scikit-learn's own error.
``MODELPILOT_NUMPY_KERNELS=0`` turns kernels off.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.utils.extmath import softmax

__all__ = ["LinearKernel", "linear_kernel"]

logger = logging.getLogger("modelpilot.runtime")

# Estimators whose prediction is ``X @ coef_.T + intercept_`` (LinearModel._decision_function).
_REGRESSORS = frozenset(
    {"ElasticNet", "ElasticNetCV", "Lasso", "LassoCV", "LinearRegression", "Ridge", "RidgeCV"}
)
# Classifiers whose probabilities are expit (binary) or softmax (multinomial) of the decision.
_CLASSIFIERS = frozenset({"LogisticRegression", "LogisticRegressionCV"})
_SAMPLE_SIZES = (1, 2, 3, 17, 64)


@dataclass(frozen=True)
class _Scaler:
    mean: np.ndarray | None
    scale: np.ndarray | None

    def __call__(self, X: np.ndarray) -> np.ndarray:
        # StandardScaler.transform subtracts, then divides (on a copy; here on new arrays).
        if self.mean is not None:
            X = X - self.mean
        if self.scale is not None:
            X = X / self.scale
        return X


class LinearKernel:
    """A fitted linear model (after optional StandardScalers) as plain NumPy arithmetic.

    Build one with :func:`linear_kernel`, which checks it against the estimator first.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.5], [3.0, 0.5]])
    >>> model = LogisticRegression().fit(X, ["a", "a", "b", "b"])
    >>> kernel = linear_kernel(model)
    >>> labels, proba = kernel.predict_with_proba(X)
    >>> labels.tolist() == model.predict(X).tolist()
    True
    >>> bool((proba == model.predict_proba(X)).all())
    True
    """

    def __init__(self, estimator: Any) -> None:
        steps = list(getattr(estimator, "steps", [(None, estimator)]))
        final = steps[-1][1]
        self.width = int(estimator.n_features_in_)
        self.feature_names: list[str] | None = (
            [str(name) for name in estimator.feature_names_in_]
            if hasattr(estimator, "feature_names_in_")
            else None
        )
        self._scalers = [
            _Scaler(step.mean_ if step.with_mean else None, step.scale_ if step.with_std else None)
            for _, step in steps[:-1]
            if step is not None and step != "passthrough"
        ]
        coef = np.asarray(final.coef_)
        self._coef_t = coef.T if coef.ndim == 2 else coef
        self._intercept = final.intercept_
        classes = getattr(final, "classes_", None)
        self.classes: np.ndarray | None = None if classes is None else np.asarray(classes)

    def accepts(self, X: np.ndarray) -> bool:
        """Whether ``X`` is an input the kernel answers exactly as scikit-learn would."""
        return (
            X.dtype == np.float64
            and X.ndim == 2
            and X.shape[1] == self.width
            and X.shape[0] > 0
            and bool(np.isfinite(X).all())
        )

    def decision(self, X: np.ndarray) -> np.ndarray:
        for scaler in self._scalers:
            X = scaler(X)
        scores: np.ndarray = X @ self._coef_t + self._intercept
        if scores.ndim > 1 and scores.shape[1] == 1 and self.classes is not None:
            return scores.reshape(-1)
        return scores

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_with_proba(X)[0]

    def predict_with_proba(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions (labels for a classifier) and class probabilities (None for a regressor)."""
        scores = self.decision(X)
        if self.classes is None:
            return scores, None
        if scores.ndim == 1:  # binary: LinearClassifierMixin.predict and _predict_proba_lr
            labels = self.classes[(scores > 0).astype(np.intp)]
            positive = expit(scores)
            return labels, np.stack([1 - positive, positive], axis=1)
        labels = self.classes[scores.argmax(axis=1)]
        return labels, softmax(scores.copy(), copy=False)


def linear_kernel(
    estimator: Any, *, environ: Mapping[str, str] = os.environ
) -> LinearKernel | None:
    """A kernel for ``estimator``, or None when it has none or the kernel is not exact on it."""
    if environ.get("MODELPILOT_NUMPY_KERNELS", "1").strip().lower() in {"0", "false", "no", "off"}:
        return None
    if not _supported(estimator):
        return None
    try:
        kernel = LinearKernel(estimator)
        exact = _exact(kernel, estimator)
    except Exception as exc:  # an unusual fitted state: scikit-learn answers as always
        logger.debug("no NumPy kernel for %s: %s", type(estimator).__name__, exc)
        return None
    if not exact:
        logger.info(
            "the NumPy kernel for %s differs from scikit-learn on the check sample; "
            "scikit-learn answers every call",
            type(estimator).__name__,
        )
        return None
    return kernel


def _supported(estimator: Any) -> bool:
    steps = getattr(estimator, "steps", None)
    if steps is not None:
        if type(estimator).__name__ != "Pipeline" or not steps:
            return False
        before = [step for _, step in steps[:-1] if step is not None and step != "passthrough"]
        if not all(_is_dense_scaler(step) for step in before):
            return False
        final = steps[-1][1]
    else:
        final = estimator
    name = type(final).__name__
    if not type(final).__module__.startswith("sklearn.") or name not in _REGRESSORS | _CLASSIFIERS:
        return False
    if not hasattr(final, "coef_") or not hasattr(estimator, "n_features_in_"):
        return False
    if name in _CLASSIFIERS and np.asarray(final.classes_).ndim != 1:
        return False
    return True


def _is_dense_scaler(step: Any) -> bool:
    return (
        type(step).__name__ == "StandardScaler"
        and type(step).__module__.startswith("sklearn.")
        and hasattr(step, "scale_")
    )


def _exact(kernel: LinearKernel, estimator: Any) -> bool:
    """The kernel's answers equal the estimator's, bit for bit, on a fixed sample of sizes."""
    rng = np.random.default_rng(0)
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    for size in _SAMPLE_SIZES:
        X = rng.normal(0.0, 3.0, size=(size, kernel.width))
        given: Any = X
        if kernel.feature_names is not None:
            given = pd.DataFrame(X, columns=kernel.feature_names)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = np.asarray(estimator.predict(given))
            expected_proba = (
                np.asarray(estimator.predict_proba(given)) if hasattr(final, "classes_") else None
            )
        labels, proba = kernel.predict_with_proba(X)
        if not _same(labels, expected):
            return False
        if expected_proba is not None and (proba is None or not _same(proba, expected_proba)):
            return False
    return True


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    equal: Callable[..., bool] = np.array_equal
    if a.dtype.kind == "f" and b.dtype.kind == "f":
        return a.shape == b.shape and a.dtype == b.dtype and bool(equal(a, b, equal_nan=True))
    return a.shape == b.shape and bool(equal(a, b))
