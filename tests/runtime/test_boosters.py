"""Native XGBoost, LightGBM and CatBoost files, and the libraries' scikit-learn wrappers.

Native files load without --trust, are found by their name or first bytes, and answer as the
library does (through a tree kernel, checked when they load, except CatBoost multiclass).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import catboost
import lightgbm
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import xgboost
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from modelpilot.errors import ArtifactError
from modelpilot.runtime import ModelRuntime, detect_flavor, load_runtime
from modelpilot.runtime._tree_kernel import TreeKernel
from tree_walks import assert_walks_agree

NAMES = ["f0", "f1", "f2", "f3", "f4"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield


def _data(task: str, *, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(500, len(NAMES)))
    score = X[:, 0] + 0.7 * X[:, 1] * X[:, 2]
    X[rng.random(X.shape) < 0.08] = np.nan
    y: np.ndarray
    if task == "binary":
        y = (score > 0).astype(int)
    elif task == "multiclass":
        y = np.digitize(score, [-0.5, 0.5])
    else:
        y = 2 * score + 1
    return pd.DataFrame(X, columns=NAMES), y


def _xgboost(task: str) -> Any:
    if task == "regression":
        return xgboost.XGBRegressor(n_estimators=25, max_depth=4, nthread=1)
    return xgboost.XGBClassifier(n_estimators=25, max_depth=4, nthread=1)


def _lightgbm(task: str) -> Any:
    options: dict[str, Any] = {"n_estimators": 25, "verbose": -1, "n_jobs": 1}
    if task == "regression":
        return lightgbm.LGBMRegressor(**options)
    return lightgbm.LGBMClassifier(**options)


def _catboost(task: str) -> Any:
    options = {"iterations": 20, "depth": 4, "verbose": 0, "thread_count": 1}
    options["allow_writing_files"] = False  # no catboost_info/ in the working directory
    if task == "regression":
        return catboost.CatBoostRegressor(**options)
    return catboost.CatBoostClassifier(**options)


def _save(library: str, model: Any, directory: Path, suffix: str) -> Path:
    path = directory / f"model{suffix}"
    if library == "xgboost":
        model.get_booster().save_model(str(path))
    elif library == "lightgbm":
        model.booster_.save_model(str(path))
    else:
        model.save_model(str(path))
    return path


def _assert_like_the_library(runtime: ModelRuntime, model: Any, rows: pd.DataFrame) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = np.asarray(model.predict(rows)).reshape(len(rows))
        classifier = runtime.classes is not None
        expected_proba = model.predict_proba(rows) if classifier else None
    for batch in (slice(None), slice(0, 1), slice(3, 5)):
        predictions, proba = runtime.predict_with_proba(rows[batch])  # type: ignore[attr-defined]
        assert np.array_equal(predictions, expected[batch])
        if expected_proba is None:
            assert proba is None
        else:
            assert proba.dtype == expected_proba.dtype
            assert np.array_equal(proba, expected_proba[batch])


LIBRARIES: dict[str, tuple[Callable[[str], Any], str, str]] = {
    "xgboost-json": (_xgboost, "xgboost", ".json"),
    "xgboost-ubj": (_xgboost, "xgboost", ".ubj"),
    "lightgbm": (_lightgbm, "lightgbm", ".txt"),
    "catboost": (_catboost, "catboost", ".cbm"),
}


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("name", sorted(LIBRARIES))
def test_a_native_model_file_loads_without_trust_and_answers_as_the_library(
    name: str, task: str, tmp_path: Path
) -> None:
    make, library, suffix = LIBRARIES[name]
    X, y = _data(task)
    model = make(task).fit(X[:400], y[:400])
    path = _save(library, model, tmp_path, suffix)
    assert detect_flavor(path) == library
    runtime = load_runtime(path)  # no trust: these formats hold no code
    assert runtime.flavor == library
    assert runtime.feature_names == NAMES  # type: ignore[attr-defined]
    if task == "regression":
        assert runtime.classes is None
    elif library == "catboost":
        assert runtime.classes == list(model.classes_)
    else:  # labels 0 .. n_classes - 1: what XGBoost and LightGBM train on
        assert runtime.classes == list(range(len(np.unique(y))))
    has_kernel = isinstance(getattr(runtime, "kernel", None), TreeKernel)
    # CatBoost's multiclass probabilities use its own approximate exp: the library answers.
    assert has_kernel == (library != "catboost" or task != "multiclass")
    _assert_like_the_library(runtime, model, X[400:])
    if has_kernel:
        assert_walks_agree(runtime)


def test_lightgbm_categorical_splits_answer_as_the_library(tmp_path: Path) -> None:
    X, y = _data("multiclass")
    rng = np.random.default_rng(5)
    X["f3"] = rng.integers(0, 12, len(X)).astype(float)
    y = (y + (X["f3"].to_numpy() % 3 == 0)) % 3
    model = _lightgbm("multiclass").set_params(min_child_samples=5)
    model.fit(X[:400], y[:400], categorical_feature=["f3"])
    runtime = load_runtime(_save("lightgbm", model, tmp_path, ".txt"))
    assert isinstance(getattr(runtime, "kernel", None), TreeKernel)
    rows = X[400:].copy()
    rows.loc[400:404, "f3"] = [np.nan, -1.0, -0.5, 2.7, 40.0]  # 40: beyond the splits' sets
    _assert_like_the_library(runtime, model, rows)
    assert_walks_agree(runtime)


def test_a_model_without_names_takes_arrays(tmp_path: Path) -> None:
    X, y = _data("binary")
    model = _xgboost("binary").fit(X.to_numpy()[:400], y[:400])
    runtime = load_runtime(_save("xgboost", model, tmp_path, ".json"))
    assert runtime.feature_names is None and runtime.accepts_array  # type: ignore[attr-defined]
    rows = X.to_numpy()[400:]
    assert np.array_equal(runtime.predict_proba(rows), model.predict_proba(rows))


def test_bound_columns_let_a_named_model_take_the_servers_arrays(tmp_path: Path) -> None:
    X, y = _data("regression")
    model = _lightgbm("regression").fit(X[:400], y[:400])
    schema = ["extra", *reversed(NAMES)]  # the project's order, with a column the model ignores
    runtime = load_runtime(_save("lightgbm", model, tmp_path, ".txt"), columns=schema)
    assert runtime.accepts_array  # type: ignore[attr-defined]
    rows = X[400:]
    served = np.column_stack([np.zeros(len(rows)), rows[list(reversed(NAMES))].to_numpy()])
    assert np.array_equal(runtime.predict(served), model.predict(rows))


@pytest.mark.parametrize(
    ("wrapper", "labels"),
    [
        (lambda: xgboost.XGBClassifier(n_estimators=10, max_depth=3), "integers"),
        (lambda: lightgbm.LGBMClassifier(n_estimators=10, verbose=-1), "strings"),
    ],
    ids=["xgboost", "lightgbm"],
)
def test_a_wrapper_in_a_skops_pipeline_loads_without_trust_and_uses_a_kernel(
    wrapper: Callable[[], Any], labels: str, tmp_path: Path
) -> None:
    X, y = _data("multiclass")
    target = np.array(["low", "mid", "high"])[y] if labels == "strings" else y
    model = make_pipeline(StandardScaler(), wrapper()).fit(X[:400], target[:400])
    path = tmp_path / "pipeline.skops"
    sio.dump(model, path)
    runtime = load_runtime(path)
    assert isinstance(getattr(runtime, "kernel", None), TreeKernel)
    _assert_like_the_library(runtime, model, X[400:])


def test_json_and_text_files_are_told_apart_by_their_first_bytes(tmp_path: Path) -> None:
    other = tmp_path / "settings.json"
    other.write_text('{"threshold": 3}', encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"unknown model format '\.json'.*--flavor"):
        detect_flavor(other)
    notes = tmp_path / "notes.txt"
    notes.write_text("tree-lined avenue\n", encoding="utf-8")
    with pytest.raises(ArtifactError, match=r"unknown model format '\.txt'"):
        detect_flavor(notes)


@pytest.mark.parametrize(
    ("name", "flavor", "message"),
    [
        ("model.json", None, "not a loadable XGBoost model"),
        ("model.ubj", None, "not a loadable XGBoost model"),
        ("model.txt", "lightgbm", "not a loadable LightGBM model"),
        ("model.cbm", None, "not a loadable CatBoost model"),
    ],
)
def test_a_corrupt_model_file_is_a_clear_error(
    name: str, flavor: str | None, message: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_bytes(b'{"learner": {"gradient_booster": [1, 2' if name.endswith("json") else b"\0")
    with pytest.raises(ArtifactError, match=message):
        load_runtime(path, flavor=flavor)


def test_a_missing_library_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.ubj"
    path.write_bytes(b"{}")
    monkeypatch.setitem(sys.modules, "xgboost", None)  # as if it were not installed
    with pytest.raises(ArtifactError, match=r"pip install 'modelpilot\[xgboost\]'"):
        load_runtime(path)


def test_kernels_off_leaves_the_library_to_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = _data("binary")
    model = _xgboost("binary").fit(X[:400], y[:400])
    monkeypatch.setenv("MODELPILOT_NUMPY_KERNELS", "0")
    runtime = load_runtime(_save("xgboost", model, tmp_path, ".json"))
    assert getattr(runtime, "kernel", "missing") is None
    _assert_like_the_library(runtime, model, X[400:])
