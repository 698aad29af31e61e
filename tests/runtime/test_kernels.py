"""The NumPy kernels of linear models: scikit-learn's answers, bit for bit, or no kernel at all.

A runtime answers through a kernel only for the linear models it knows (alone or after
StandardScalers) and only for finite float input of the model's width. Every answer must equal
the estimator's exactly (labels and their types, probabilities, regression values); input the
kernel does not take must reach scikit-learn and fail with scikit-learn's own error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    Ridge,
    RidgeCV,
    SGDClassifier,
)
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from modelpilot.runtime import ModelRuntime, load_runtime
from modelpilot.runtime._kernels import linear_kernel

WIDTH = 6
SIZES = (1, 2, 5, 33, 200)


def _runtime(estimator: Any, directory: Path) -> ModelRuntime:
    path = directory / "model.joblib"
    joblib.dump(estimator, path)
    return load_runtime(path, trust=True)


def _kernel_of(runtime: ModelRuntime) -> Any:
    return getattr(runtime, "kernel", None)


def _classification(n_classes: int, labels: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(
        n_samples=300, n_features=WIDTH, n_informative=4, n_classes=n_classes, random_state=1
    )
    if labels == "strings":
        return X, np.array(["no", "yes", "maybe", "later"])[y]
    if labels == "odd-integers":
        return X, y * 7 + 3
    return X, y


CLASSIFIERS: dict[str, Callable[[], BaseEstimator]] = {
    "logistic": lambda: LogisticRegression(max_iter=500),
    "logistic-no-intercept": lambda: LogisticRegression(fit_intercept=False, max_iter=500),
    "logistic-cv": lambda: LogisticRegressionCV(
        Cs=3, cv=3, l1_ratios=(0.0,), scoring="neg_log_loss", use_legacy_attributes=False
    ),
    "scaled-logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression()),
    "scaled-no-mean": lambda: make_pipeline(StandardScaler(with_mean=False), LogisticRegression()),
    "two-scalers": lambda: make_pipeline(
        StandardScaler(), "passthrough", StandardScaler(with_std=False), LogisticRegression()
    ),
}


@pytest.mark.parametrize("n_classes", [2, 3, 4])
@pytest.mark.parametrize("labels", ["integers", "strings", "odd-integers"])
@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_a_linear_classifier_answers_through_a_kernel_exactly_as_scikit_learn(
    name: str, n_classes: int, labels: str, tmp_path: Path
) -> None:
    X, y = _classification(n_classes, labels)
    estimator = CLASSIFIERS[name]().fit(X, y)
    runtime = _runtime(estimator, tmp_path)
    assert _kernel_of(runtime) is not None
    rng = np.random.default_rng(7)
    for size in SIZES:
        rows = rng.normal(0, 4, size=(size, WIDTH))
        predictions, proba = runtime.predict_with_proba(rows)  # type: ignore[attr-defined]
        expected = estimator.predict(rows)
        assert predictions.dtype == expected.dtype
        assert predictions.tolist() == expected.tolist()
        assert np.array_equal(proba, estimator.predict_proba(rows))
        assert np.array_equal(runtime.predict_proba(rows), estimator.predict_proba(rows))
        assert runtime.predict(rows).tolist() == expected.tolist()


def test_a_binary_tie_goes_where_scikit_learn_sends_it(tmp_path: Path) -> None:
    """A decision of 1e-20 is class 1 in ``predict`` although both probabilities round to
    0.5; the kernel follows ``predict``, not the argmax of the probabilities."""
    X, y = _classification(2, "strings")
    estimator = LogisticRegression().fit(X, y)
    estimator.coef_[:] = 0.0
    estimator.intercept_[:] = 1e-20
    runtime = _runtime(estimator, tmp_path)
    assert _kernel_of(runtime) is not None
    rows = np.zeros((2, WIDTH))
    predictions, proba = runtime.predict_with_proba(rows)  # type: ignore[attr-defined]
    assert proba.tolist() == [[0.5, 0.5]] * 2
    assert predictions.tolist() == estimator.predict(rows).tolist() == ["yes", "yes"]


REGRESSORS: dict[str, Callable[[], BaseEstimator]] = {
    "linear": LinearRegression,
    "ridge": lambda: Ridge(alpha=0.5),
    "ridge-cv": RidgeCV,
    "lasso": lambda: Lasso(alpha=0.1),
    "elastic-net": lambda: ElasticNet(alpha=0.1),
    "scaled-ridge": lambda: make_pipeline(StandardScaler(), Ridge()),
}


@pytest.mark.parametrize("targets", [1, 3])
@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_a_linear_regressor_answers_through_a_kernel_exactly_as_scikit_learn(
    name: str, targets: int, tmp_path: Path
) -> None:
    X, y = make_regression(
        n_samples=200, n_features=WIDTH, n_targets=targets, noise=3.0, random_state=2
    )
    estimator = REGRESSORS[name]().fit(X, y)
    runtime = _runtime(estimator, tmp_path)
    assert _kernel_of(runtime) is not None
    rows = np.random.default_rng(3).normal(0, 2, size=(40, WIDTH))
    got = runtime.predict(rows)
    expected = estimator.predict(rows)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)
    assert np.array_equal(runtime.predict(rows[:1]), estimator.predict(rows[:1]))


def test_a_model_fitted_on_a_dataframe_uses_the_kernel_on_its_own_columns(
    tmp_path: Path,
) -> None:
    X, y = _classification(3, "strings")
    names = [f"c{i}" for i in range(WIDTH)]
    estimator = make_pipeline(StandardScaler(), LogisticRegression()).fit(
        pd.DataFrame(X, columns=names), y
    )
    runtime = _runtime(estimator, tmp_path)
    assert _kernel_of(runtime) is not None
    rows = np.random.default_rng(4).normal(0, 3, size=(9, WIDTH))
    # The server's frame may hold the columns in another order: the runtime picks the model's.
    frame = pd.DataFrame(rows, columns=names)[list(reversed(names))]
    expected = estimator.predict_proba(pd.DataFrame(rows, columns=names))
    assert np.array_equal(runtime.predict_proba(frame), expected)
    # Integer columns are numbers too (scikit-learn converts them the same way).
    integers = pd.DataFrame(rows.round().astype(np.int64), columns=names)
    assert np.array_equal(runtime.predict_proba(integers), estimator.predict_proba(integers))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.array([[np.nan] * WIDTH]), "NaN"),
        (np.array([[np.inf] + [0.0] * (WIDTH - 1)]), "infinity"),
        (np.zeros((1, WIDTH + 1)), "features"),
    ],
    ids=["nan", "infinity", "too-wide"],
)
def test_input_the_kernel_does_not_take_fails_with_scikit_learns_own_error(
    bad: np.ndarray, message: str, tmp_path: Path
) -> None:
    X, y = _classification(2, "integers")
    runtime = _runtime(LogisticRegression().fit(X, y), tmp_path)
    assert _kernel_of(runtime) is not None
    with pytest.raises(ValueError, match=message):
        runtime.predict_with_proba(bad)  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=message):
        runtime.predict(bad)


def test_a_text_column_goes_to_scikit_learn(tmp_path: Path) -> None:
    """A DataFrame with an object column is scikit-learn's to convert (or refuse)."""
    X, y = _classification(2, "integers")
    names = [f"c{i}" for i in range(WIDTH)]
    estimator = LogisticRegression().fit(pd.DataFrame(X, columns=names), y)
    runtime = _runtime(estimator, tmp_path)
    frame = pd.DataFrame(X[:3], columns=names).astype({"c0": object})
    frame.loc[0, "c0"] = "not a number"
    with pytest.raises(ValueError, match="not a number"):
        runtime.predict(frame)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SGDClassifier(loss="log_loss", random_state=0),  # a linear model not on the list
        lambda: make_pipeline(MinMaxScaler(), LogisticRegression()),  # a step not on the list
        lambda: KNeighborsClassifier(),
    ],
    ids=["sgd", "minmax-pipeline", "neighbours"],
)
def test_models_outside_the_list_have_no_kernel(
    make: Callable[[], BaseEstimator], tmp_path: Path
) -> None:
    X, y = _classification(2, "integers")
    runtime = _runtime(make().fit(X, y), tmp_path)
    assert _kernel_of(runtime) is None


def test_kernels_can_be_turned_off(tmp_path: Path) -> None:
    X, y = _classification(2, "integers")
    estimator = LogisticRegression().fit(X, y)
    assert linear_kernel(estimator, environ={}) is not None
    assert linear_kernel(estimator, environ={"MODELPILOT_NUMPY_KERNELS": "0"}) is None
    assert linear_kernel(estimator, environ={"MODELPILOT_NUMPY_KERNELS": "off"}) is None


def test_a_kernel_that_would_differ_is_not_used() -> None:
    """An estimator whose own answers are not the linear arithmetic (a subclass that changes
    ``predict``, here in scikit-learn's name) fails the load-time check: no kernel."""

    class Shifted(LogisticRegression):
        def predict(self, X: Any) -> Any:
            return super().predict(X)[::-1]

    Shifted.__module__ = "sklearn.linear_model._logistic"
    Shifted.__name__ = "LogisticRegression"
    X, y = _classification(2, "integers")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = Shifted().fit(X, y)
    assert linear_kernel(estimator, environ={}) is None
