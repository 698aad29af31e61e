"""Tree kernels: scikit-learn's tree models answer through NumPy arrays, bit for bit, or not at all.

Every answer (labels with their type, probabilities in the library's dtype, regression values)
must equal the library's own on held-out rows with missing values, in one batch and row by row.
A model the arrays cannot express answers through the library, with the reason in the log.
"""

from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from modelpilot.runtime import ModelRuntime, load_runtime
from modelpilot.runtime._extract_sklearn_trees import sklearn_tree_arrays
from modelpilot.runtime._kernels import LinearKernel
from modelpilot.runtime._sklearn_kernels import sklearn_kernel
from modelpilot.runtime._tree_kernel import TreeKernel
from modelpilot_edge.kernels import ColumnSteps, LinearArrays, TreeEnsembleArrays
from tree_walks import assert_walks_agree

WIDTH = 6


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Fitting on one thread: OpenMP threads waiting for the shared cores slow tests down."""
    with threadpool_limits(limits=1):
        yield


def _data(task: str, *, missing: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(400, WIDTH))
    score = X[:, 0] + 0.5 * X[:, 1] * X[:, 2]
    if missing:
        X[rng.random(X.shape) < 0.08] = np.nan
    y: np.ndarray
    if task == "binary":
        y = np.where(score > 0, "yes", "no")
    elif task == "multiclass":
        y = np.digitize(score, [-0.5, 0.5]) * 3 + 1  # 1, 4, 7
    else:
        y = 3 * score + X[:, 3]
        y = np.nan_to_num(y)
    return X, y


def _runtime(model: BaseEstimator, directory: Path, *, pickled: bool = False) -> ModelRuntime:
    if pickled:  # skops does not take functools.partial (HistGradientBoosting's categories)
        path = directory / "model.joblib"
        joblib.dump(model, path)
        return load_runtime(path, trust=True)
    path = directory / "model.skops"
    sio.dump(model, path)
    return load_runtime(path)


def _assert_same(runtime: ModelRuntime, model: Any, rows: np.ndarray) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(model.predict(rows))
        expected_proba = model.predict_proba(rows) if hasattr(model, "classes_") else None
    for batch in (slice(None), slice(0, 1), slice(5, 7)):
        predictions, proba = runtime.predict_with_proba(rows[batch])  # type: ignore[attr-defined]
        assert predictions.dtype == expected.dtype
        assert np.array_equal(predictions, expected[batch])
        if expected_proba is None:
            assert proba is None
        else:
            assert proba.dtype == expected_proba.dtype
            assert np.array_equal(proba, expected_proba[batch])


MODELS: dict[str, Callable[[], BaseEstimator]] = {
    "decision-tree": lambda: DecisionTreeClassifier(max_depth=7, random_state=0),
    "extra-tree": lambda: ExtraTreeClassifier(random_state=0),
    "random-forest": lambda: RandomForestClassifier(n_estimators=15, random_state=0),
    "random-forest-jobs": lambda: RandomForestClassifier(n_estimators=8, n_jobs=2, random_state=0),
    "extra-trees": lambda: ExtraTreesClassifier(n_estimators=10, max_depth=6, random_state=0),
    "gradient-boosting": lambda: GradientBoostingClassifier(n_estimators=20, random_state=0),
    "hist-gradient-boosting": lambda: HistGradientBoostingClassifier(max_iter=25, random_state=0),
}
REGRESSORS: dict[str, Callable[[], BaseEstimator]] = {
    "decision-tree": lambda: DecisionTreeRegressor(max_depth=7, random_state=0),
    "extra-tree": lambda: ExtraTreeRegressor(random_state=0),
    "random-forest": lambda: RandomForestRegressor(n_estimators=10, random_state=0),
    "extra-trees": lambda: ExtraTreesRegressor(n_estimators=10, max_depth=6, random_state=0),
    "gradient-boosting": lambda: GradientBoostingRegressor(n_estimators=20, random_state=0),
    "hist-gradient-boosting": lambda: HistGradientBoostingRegressor(max_iter=25, random_state=0),
    "hist-gradient-boosting-poisson": lambda: HistGradientBoostingRegressor(
        loss="poisson", max_iter=20, random_state=0
    ),
}


@pytest.mark.parametrize("task", ["binary", "multiclass"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_tree_classifier_answers_through_a_kernel_exactly(
    name: str, task: str, tmp_path: Path
) -> None:
    # Classic gradient boosting takes no missing values; every other model learns with them.
    missing = name != "gradient-boosting"
    X, y = _data(task, missing=missing)
    model = MODELS[name]().fit(X[:300], y[:300])
    runtime = _runtime(model, tmp_path)
    assert isinstance(getattr(runtime, "kernel", None), TreeKernel)
    _assert_same(runtime, model, X[300:])


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_a_tree_regressor_answers_through_a_kernel_exactly(name: str, tmp_path: Path) -> None:
    missing = name != "gradient-boosting"
    X, y = _data("regression", missing=missing)
    if name.endswith("poisson"):
        y = np.abs(y)
    model = REGRESSORS[name]().fit(X[:300], y[:300])
    runtime = _runtime(model, tmp_path)
    assert isinstance(getattr(runtime, "kernel", None), TreeKernel)
    _assert_same(runtime, model, X[300:])


def test_categorical_splits_of_hist_gradient_boosting_on_arrays_and_frames(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(500, 4))
    X[:, 2] = rng.integers(0, 9, 500)
    X[rng.random(500) < 0.05, 2] = np.nan
    y = ((X[:, 0] > 0) ^ (np.nan_to_num(X[:, 2]) % 3 == 0)).astype(int)
    model = HistGradientBoostingClassifier(max_iter=20, categorical_features=[2], random_state=0)
    model.fit(X[:400], y[:400])
    runtime = _runtime(model, tmp_path, pickled=True)
    assert isinstance(getattr(runtime, "kernel", None), TreeKernel)
    held_out = X[400:].copy()
    held_out[:4, 2] = [11.0, -1.0, np.nan, 2.6]  # unseen, negative, missing, not an integer
    _assert_same(runtime, model, held_out)
    assert_walks_agree(runtime)

    names = ["a", "b", "colour", "d"]
    colours = np.array(list("rgbcmykwo"))[np.nan_to_num(X[:, 2]).astype(int)]
    frame = pd.DataFrame(X, columns=names).assign(colour=pd.Categorical(colours))
    model = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(frame[:400], y[:400])
    runtime = _runtime(model, tmp_path, pickled=True)
    assert isinstance(getattr(runtime, "kernel", None), TreeKernel)
    rows = frame[400:].astype({"colour": object})
    rows.loc[400, "colour"] = "never seen"
    expected = model.predict_proba(rows)
    assert np.array_equal(runtime.predict_proba(rows), expected)
    assert_walks_agree(runtime)


def test_a_model_the_arrays_cannot_express_answers_through_scikit_learn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    X, y = _data("regression", missing=False)
    model = RandomForestRegressor(n_estimators=5, random_state=0)
    model.fit(X, np.column_stack([y, -y]))  # two outputs
    with caplog.at_level(logging.INFO, logger="modelpilot.runtime"):
        runtime = _runtime(model, tmp_path)
    assert getattr(runtime, "kernel", "missing") is None
    assert "no tree kernel for RandomForestRegressor: RandomForestRegressor has 2 outputs" in (
        caplog.text
    )
    assert np.array_equal(runtime.predict(X[:9]), model.predict(X[:9]))


def test_a_kernel_that_would_differ_is_not_used(caplog: pytest.LogCaptureFixture) -> None:
    """An estimator whose answers are not its trees' (a subclass in scikit-learn's name that
    shifts ``predict``) fails the load-time check: the library answers, and the log says so."""

    class Shifted(DecisionTreeRegressor):
        def predict(self, X: Any, check_input: bool = True) -> Any:
            return super().predict(X, check_input) + 1e-9

    Shifted.__module__ = "sklearn.tree._classes"
    Shifted.__name__ = "DecisionTreeRegressor"
    X, y = _data("regression", missing=False)
    with caplog.at_level(logging.INFO, logger="modelpilot.runtime"):
        assert sklearn_kernel(Shifted(max_depth=3).fit(X, y), environ={}) is None
    assert "differs from the library on the check sample" in caplog.text


def test_kernels_can_be_turned_off() -> None:
    X, y = _data("binary", missing=True)
    model = HistGradientBoostingClassifier(max_iter=5).fit(X, y)
    assert isinstance(sklearn_kernel(model, environ={}), TreeKernel)
    assert sklearn_kernel(model, environ={"MODELPILOT_NUMPY_KERNELS": "0"}) is None


def test_input_the_kernel_does_not_take_gets_the_librarys_own_error(tmp_path: Path) -> None:
    X, y = _data("binary", missing=False)
    runtime = _runtime(GradientBoostingClassifier(n_estimators=5).fit(X, y), tmp_path)
    with pytest.raises(ValueError, match="NaN"):
        runtime.predict(np.full((1, WIDTH), np.nan))
    with pytest.raises(ValueError, match="features"):
        runtime.predict(np.zeros((1, WIDTH + 1)))


def test_the_arrays_round_trip_through_npz() -> None:
    X, y = _data("multiclass", missing=True)
    model = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, y)
    arrays = sklearn_tree_arrays(model)
    buffer = io.BytesIO()
    arrays.save(buffer)
    buffer.seek(0)
    loaded = TreeEnsembleArrays.load(buffer)
    raw, proba, index = loaded.evaluate(X)
    assert np.array_equal(raw, arrays.raw(X))
    assert np.array_equal(proba, model.predict_proba(X))
    assert np.array_equal(model.classes_[index], model.predict(X))

    steps = ColumnSteps(("impute", "divide"), np.array([[1.0, np.nan], [2.0, 4.0]]))
    buffer = io.BytesIO()
    steps.save(buffer)
    buffer.seek(0)
    rows = np.array([[np.nan, 8.0]])
    assert ColumnSteps.load(buffer).apply(rows).tolist() == steps.apply(rows).tolist()

    from sklearn.linear_model import LogisticRegression

    linear = LinearKernel(LogisticRegression().fit(np.nan_to_num(X), y)).arrays
    buffer = io.BytesIO()
    linear.save(buffer)
    buffer.seek(0)
    again = LinearArrays.load(buffer)
    assert np.array_equal(again.decision(np.nan_to_num(X)), linear.decision(np.nan_to_num(X)))


def test_the_demos_house_price_model_takes_the_fast_path(
    house_model_file: Path, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    """One-hot categories in a ColumnTransformer, then gradient-boosted trees: the one-hot
    columns become categorical splits on the categories' codes."""
    runtime = load_runtime(house_model_file)
    assert isinstance(getattr(runtime, "kernel", None), TreeKernel)
    features = house_data[1].drop(columns="price")
    features.loc[features.index[0], "location"] = "a place never seen"
    expected = sio.load(house_model_file, trusted=sio.get_untrusted_types(file=house_model_file))
    assert np.array_equal(runtime.predict(features), expected.predict(features))
    assert np.array_equal(runtime.predict(features[:1]), expected.predict(features[:1]))
