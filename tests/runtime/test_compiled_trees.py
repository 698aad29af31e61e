"""The compiled tree walk (numba): chosen by default, turned off by its switch (which is also
what a machine without numba gets: the NumPy walk), with the same answers either way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from modelpilot.runtime import answer_path, load_runtime
from modelpilot.runtime._compiled_trees import compiled_enabled

NAMES = ["f0", "f1", "f2", "f3"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield


def _rows() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(400, len(NAMES)))
    X[:, 3] = rng.integers(0, 10, len(X))
    y = np.digitize(X[:, 0] + X[:, 1] * X[:, 2] + (X[:, 3] % 3 == 0), [-0.5, 0.5])
    X[rng.random(X.shape) < 0.1] = np.nan
    return pd.DataFrame(X, columns=NAMES), y


def _model_files(directory: Path) -> list[Path]:
    """XGBoost multiclass (float32 sums, one group a class) and LightGBM multiclass with a
    categorical feature (bitsets, missing values, LightGBM's zero threshold)."""
    X, y = _rows()
    xgb = xgboost.XGBClassifier(n_estimators=15, max_depth=4, nthread=1).fit(X[:300], y[:300])
    xgb.get_booster().save_model(str(directory / "xgb.json"))
    lgb = lightgbm.LGBMClassifier(n_estimators=15, min_child_samples=5, verbose=-1, n_jobs=1)
    lgb.fit(X[:300], y[:300], categorical_feature=["f3"])
    lgb.booster_.save_model(str(directory / "lgb.txt"))
    return [directory / "xgb.json", directory / "lgb.txt"]


def test_the_switch_turns_the_compiled_walk_off_with_the_same_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, _ = _rows()
    held_out = X[300:].copy()
    held_out.loc[300:303, "f3"] = [np.nan, -1.0, 2.5, 7.0]
    for path in _model_files(tmp_path):
        monkeypatch.delenv("MODELPILOT_COMPILED_KERNELS", raising=False)
        compiled = load_runtime(path)
        assert "compiled walk" in answer_path(compiled), path
        monkeypatch.setenv("MODELPILOT_COMPILED_KERNELS", "0")
        numpy = load_runtime(path)
        assert numpy.kernel is not None and numpy.kernel.compiled is None  # type: ignore[attr-defined]
        assert "NumPy walk" in answer_path(numpy), path
        for batch in (held_out, held_out[:1], held_out[7:9]):
            labels, proba = compiled.predict_with_proba(batch)  # type: ignore[attr-defined]
            labels_numpy, proba_numpy = numpy.predict_with_proba(batch)  # type: ignore[attr-defined]
            assert np.array_equal(labels, labels_numpy)
            assert proba.dtype == proba_numpy.dtype
            assert np.array_equal(proba, proba_numpy)


@pytest.mark.parametrize("value", ["0", "false", "off", " NO "])
def test_the_switch_reads_the_usual_words_for_off(value: str) -> None:
    assert not compiled_enabled({"MODELPILOT_COMPILED_KERNELS": value})
    assert compiled_enabled({"MODELPILOT_COMPILED_KERNELS": "1"})
    assert compiled_enabled({})
