"""The model zoo: every linear and tree model type, fitted on arrays and on DataFrames, alone
and after preprocessing, takes a fast path wherever a kernel covers it on paper, and answers
exactly as the library does; tree kernels walk compiled (numba), with the NumPy walk's raw
scores bit for bit. ``pytest -s`` prints which path each takes.

Covered on paper: linear models alone or after StandardScalers; tree models (scikit-learn's,
XGBoost's and LightGBM's wrappers) alone or after imputers, scalers and a ColumnTransformer of
those with one-hot or ordinal encoders. Not covered: CatBoost's scikit-learn wrappers (its
native files are, see test_boosters.py) and linear models after an imputer or an encoder.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import catboost
import joblib
import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn import ensemble, linear_model, tree
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from modelpilot.runtime import answer_path, load_runtime
from tree_walks import assert_walks_agree

Make = Callable[[], Any]

LINEAR: dict[str, tuple[Make, Make]] = {  # name: (classifier or None, regressor)
    "linear-regression": (lambda: None, linear_model.LinearRegression),
    "ridge": (lambda: None, linear_model.Ridge),
    "lasso": (lambda: None, lambda: linear_model.Lasso(alpha=0.01)),
    "elastic-net": (lambda: None, lambda: linear_model.ElasticNet(alpha=0.01)),
    "logistic-regression": (lambda: linear_model.LogisticRegression(max_iter=300), lambda: None),
}
TREES: dict[str, tuple[Make, Make]] = {
    "decision-tree": (
        lambda: tree.DecisionTreeClassifier(max_depth=6, random_state=0),
        lambda: tree.DecisionTreeRegressor(max_depth=6, random_state=0),
    ),
    "random-forest": (
        lambda: ensemble.RandomForestClassifier(n_estimators=8, max_depth=6, random_state=0),
        lambda: ensemble.RandomForestRegressor(n_estimators=8, max_depth=6, random_state=0),
    ),
    "extra-trees": (
        lambda: ensemble.ExtraTreesClassifier(n_estimators=8, max_depth=6, random_state=0),
        lambda: ensemble.ExtraTreesRegressor(n_estimators=8, max_depth=6, random_state=0),
    ),
    "gradient-boosting": (
        lambda: ensemble.GradientBoostingClassifier(n_estimators=10, random_state=0),
        lambda: ensemble.GradientBoostingRegressor(n_estimators=10, random_state=0),
    ),
    "hist-gradient-boosting": (
        lambda: ensemble.HistGradientBoostingClassifier(max_iter=10, random_state=0),
        lambda: ensemble.HistGradientBoostingRegressor(max_iter=10, random_state=0),
    ),
    "xgboost": (
        lambda: xgboost.XGBClassifier(n_estimators=10, max_depth=4, nthread=1),
        lambda: xgboost.XGBRegressor(n_estimators=10, max_depth=4, nthread=1),
    ),
    "lightgbm": (
        lambda: lightgbm.LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1),
        lambda: lightgbm.LGBMRegressor(n_estimators=10, verbose=-1, n_jobs=1),
    ),
    "catboost": (
        lambda: catboost.CatBoostClassifier(
            iterations=10, depth=3, verbose=0, thread_count=1, allow_writing_files=False
        ),
        lambda: catboost.CatBoostRegressor(
            iterations=10, depth=3, verbose=0, thread_count=1, allow_writing_files=False
        ),
    ),
}
PREPROCESSING = ["none", "scaler", "imputer-scaler", "one-hot", "ordinal"]
NUMERIC = ["n0", "n1", "n2", "n3"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield


def _covered(name: str, preprocessing: str) -> bool:
    if name == "catboost":
        return False
    if name in LINEAR:
        return preprocessing in {"none", "scaler"}
    return True


def _data(task: str, fitted_on: str, preprocessing: str) -> tuple[Any, np.ndarray]:
    rng = np.random.default_rng(0)
    n = 240
    numbers = rng.normal(size=(n, len(NUMERIC)))
    colour = rng.integers(0, 4, n)
    score = numbers[:, 0] + numbers[:, 1] * numbers[:, 2] + (colour == 2)
    y = (score > 0.3).astype(int) if task == "classification" else 2 * score
    if preprocessing == "imputer-scaler":
        numbers[rng.random(numbers.shape) < 0.1] = np.nan
    encoded = preprocessing in {"one-hot", "ordinal"}
    if fitted_on == "array":
        X = np.column_stack([numbers, colour]) if encoded else numbers
        return X, y
    frame = pd.DataFrame(numbers, columns=NUMERIC)
    if encoded:
        frame["colour"] = np.array(["red", "green", "blue", "grey"], dtype=object)[colour]
    return frame, y


def _model(estimator: Any, fitted_on: str, preprocessing: str) -> Any:
    if preprocessing == "none":
        return estimator
    if preprocessing == "scaler":
        return make_pipeline(StandardScaler(), estimator)
    if preprocessing == "imputer-scaler":
        return make_pipeline(SimpleImputer(), StandardScaler(), estimator)
    columns: list[Any] = NUMERIC if fitted_on == "frame" else list(range(len(NUMERIC)))
    category: list[Any] = ["colour"] if fitted_on == "frame" else [len(NUMERIC)]
    encoder: Any = (
        OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        if preprocessing == "one-hot"
        else OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    )
    encode = make_column_transformer((encoder, category), (StandardScaler(), columns))
    return make_pipeline(encode, estimator)


CASES = [
    (name, task, fitted_on, preprocessing)
    for name, (classifier, regressor) in {**LINEAR, **TREES}.items()
    for task, make in (("classification", classifier), ("regression", regressor))
    if make() is not None
    for fitted_on in ("array", "frame")
    for preprocessing in PREPROCESSING
]


@pytest.mark.parametrize(("name", "task", "fitted_on", "preprocessing"), CASES)
def test_every_model_a_kernel_covers_takes_the_fast_path(
    name: str, task: str, fitted_on: str, preprocessing: str, tmp_path: Path
) -> None:
    classifier, regressor = {**LINEAR, **TREES}[name]
    X, y = _data(task, fitted_on, preprocessing)
    estimator = (classifier if task == "classification" else regressor)()
    model = _model(estimator, fitted_on, preprocessing).fit(X[:200], y[:200])
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    runtime = load_runtime(path, trust=True)
    fast = getattr(runtime, "kernel", None) is not None
    print(f"zoo: {name:24} {task:15} {fitted_on:6} {preprocessing:15} {answer_path(runtime)}")
    assert fast == _covered(name, preprocessing)
    if fast and name in TREES:  # every tree kernel walks compiled, as its NumPy walk does
        assert_walks_agree(runtime)

    held_out = X[200:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the wrappers' own warnings about feature names
        expected = np.asarray(model.predict(held_out)).reshape(len(held_out))
        expected_proba = model.predict_proba(held_out) if task == "classification" else None
    predictions, proba = runtime.predict_with_proba(held_out)  # type: ignore[attr-defined]
    assert np.array_equal(predictions, expected)
    if expected_proba is not None:
        assert np.array_equal(proba, expected_proba)
