"""NumPy kernels for scikit-learn's linear models: the same arithmetic, without per-call checks.

Why by hand: on one row, scikit-learn's ``predict_proba`` of a 20-feature LogisticRegression
takes ~145 us, of which ~140 us are input checks (``check_array``, estimator tags,
feature-name checks) that the server's schema validator has already done; the arithmetic
itself takes ~5 us. One-row requests are what an online server sees most, so this is most of
a request's CPU. No library offers "the same answer without the checks" (sklearn's
``assume_finite`` removes only one of them, and ONNX runtimes give different floating point).

This module turns a fitted estimator into :class:`LinearArrays` (evaluated by
``_evaluate_linear.py``, which imports only NumPy) and checks the result.

What "exact" means. scikit-learn's own answer for the same rows depends on the memory layout
of the array it multiplies: BLAS sums the products of a C-ordered (row-major) array in another
order than those of a Fortran-ordered one, so the last bit of a score can differ. A pandas
DataFrame of float columns reaches scikit-learn as a Fortran-ordered array (``to_numpy()`` of
its column block), a NumPy array usually as a C-ordered one. That is why a model fitted on a
DataFrame used to fail the check: the check fed the kernel a C-ordered array and scikit-learn
the DataFrame. A kernel is exact when it gives, bit for bit, what scikit-learn gives for the
same input: it multiplies the array scikit-learn would multiply, in the same layout (the
DataFrame's own ``to_numpy()``; an array as it is given; and where the server hands a
DataFrame-fitted model an array, in the Fortran order a DataFrame would have had). The check
runs both layouts on a fixed sample when the model loads. Scores, probabilities and so class
decisions are then identical to scikit-learn's for every input, not only on the sample.

It takes only finite float arrays of the model's width; anything else goes to scikit-learn, so
invalid input fails with scikit-learn's own error. ``MODELPILOT_NUMPY_KERNELS=0`` turns every
kernel (linear and tree) off.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from modelpilot_edge.kernels import LinearArrays

__all__ = [
    "LINEAR_MODELS",
    "LinearKernel",
    "frame_array",
    "kernels_enabled",
    "linear_kernel",
    "same_answers",
]

logger = logging.getLogger("modelpilot.runtime")

# Estimators whose prediction is ``X @ coef_.T + intercept_`` (LinearModel._decision_function).
_REGRESSORS = frozenset(
    {"ElasticNet", "ElasticNetCV", "Lasso", "LassoCV", "LinearRegression", "Ridge", "RidgeCV"}
)
# Classifiers whose probabilities are expit (binary) or softmax (multinomial) of the decision.
_CLASSIFIERS = frozenset({"LogisticRegression", "LogisticRegressionCV"})
#: Every estimator a linear kernel can stand for.
LINEAR_MODELS = _REGRESSORS | _CLASSIFIERS
_SAMPLE_SIZES = (1, 2, 3, 17, 64)


def kernels_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """False when ``MODELPILOT_NUMPY_KERNELS`` turns kernels off (``0``, ``false``, ``off``)."""
    value = environ.get("MODELPILOT_NUMPY_KERNELS", "1").strip().lower()
    return value not in {"0", "false", "no", "off"}


def frame_array(frame: pd.DataFrame, *, float32: bool = False) -> np.ndarray | None:
    """A numeric DataFrame as the float64 array scikit-learn makes of it (None otherwise).

    With ``float32=False``, float32 columns give None: a linear model computes in float32 on
    them (scikit-learn keeps float32 input as it is), which a float64 kernel would not.
    """
    kinds = "biuf" if float32 else "biu"
    if not all(dtype.kind in kinds or dtype == np.float64 for dtype in frame.dtypes):
        return None
    return frame.to_numpy(dtype=np.float64)


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
        scalers = [step for _, step in steps[:-1] if step is not None and step != "passthrough"]
        empty = np.empty(0)
        coef = np.asarray(final.coef_)
        classes = getattr(final, "classes_", None)
        self.classes: np.ndarray | None = None if classes is None else np.asarray(classes)
        self.arrays = LinearArrays(
            width=self.width,
            means=tuple(s.mean_ if s.with_mean else empty for s in scalers),
            scales=tuple(s.scale_ if s.with_std else empty for s in scalers),
            coef_t=coef.T if coef.ndim == 2 else coef,
            intercept=np.asarray(final.intercept_),
            n_classes=0 if self.classes is None else len(self.classes),
        )

    def from_frame(self, frame: pd.DataFrame) -> np.ndarray | None:
        """The array this kernel takes for ``frame`` (the model's columns), or None."""
        return frame_array(frame)

    def from_array(self, X: np.ndarray) -> np.ndarray | None:
        """The array this kernel takes for a float array of the model's columns."""
        return X

    def answer(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Predictions and probabilities, or None where scikit-learn must answer ``X``."""
        return self.predict_with_proba(X) if self.accepts(X) else None

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
        return self.arrays.decision(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_with_proba(X)[0]

    def predict_with_proba(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions (labels for a classifier) and class probabilities (None for a regressor)."""
        scores, proba, index = self.arrays.evaluate(X)
        if self.classes is None or index is None:
            return scores, None
        return self.classes[index], proba


def linear_kernel(
    estimator: Any, *, environ: Mapping[str, str] = os.environ
) -> LinearKernel | None:
    """A kernel for ``estimator``, or None when it has none or the kernel is not exact on it."""
    if not kernels_enabled(environ) or not _supported(estimator):
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
    """The kernel's answers equal the estimator's, bit for bit, on a fixed sample of sizes,
    for C-ordered arrays and for DataFrames (Fortran-ordered once converted)."""
    rng = np.random.default_rng(0)
    for size in _SAMPLE_SIZES:
        X = rng.normal(0.0, 3.0, size=(size, kernel.width))
        inputs: list[tuple[Any, np.ndarray]] = [(X, X)]
        names = kernel.feature_names or [f"x{i}" for i in range(kernel.width)]
        frame = pd.DataFrame(X, columns=names)
        converted = frame_array(frame)
        if kernel.feature_names is not None and converted is not None:
            inputs.append((frame, converted))
        for given, array in inputs:
            if not same_answers(estimator, given, kernel.predict_with_proba(array)):
                return False
    return True


def same_answers(estimator: Any, given: Any, answers: tuple[np.ndarray, np.ndarray | None]) -> bool:
    """Whether ``answers`` (predictions, probabilities) are the estimator's on ``given``."""
    labels, proba = answers
    with warnings.catch_warnings():
        # An array handed to a model fitted on named columns warns, and must still be answered.
        warnings.simplefilter("ignore")
        expected = np.asarray(estimator.predict(given))
        has_proba = getattr(estimator, "classes_", None) is not None and hasattr(
            estimator, "predict_proba"
        )
        expected_proba = np.asarray(estimator.predict_proba(given)) if has_proba else None
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
