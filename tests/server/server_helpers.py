"""Helpers of the serving tests: build a project with a registered model.

The real server comes from :mod:`live_server`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd

from live_server import importable
from modelpilot.runtime import ModelRuntime, load_runtime

HERE = Path(__file__).parent


def model_predictions(model_file: Path, frame: pd.DataFrame) -> list[float]:
    """What the model itself predicts on these rows, without any server in between."""
    features = frame.drop(columns="price", errors="ignore")
    return [float(v) for v in _runtime(model_file).predict(features)]


@functools.cache
def _runtime(model_file: Path) -> ModelRuntime:
    return load_runtime(model_file)


def importable_tests_env() -> dict[str, str]:
    """Environment for a server that must unpickle classes of this directory (flaky_model)."""
    return importable(HERE)
