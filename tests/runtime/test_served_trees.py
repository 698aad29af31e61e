"""A real server answering through tree kernels: a native XGBoost file and a scikit-learn
HistGradientBoosting pipeline, registered with the CLI and served by ``modelpilot serve`` (one
server, a deployment each), give the library's own predictions and probabilities over HTTP,
missing values included; the server's output says at load which path each version takes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import xgboost
import yaml
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from live_server import DEPLOYMENT, ONE_OPENMP_THREAD, LiveServer, auth, live_server
from modelpilot.spec import FeatureSpec, render_project
from project_helpers import merge_settings, run_cli

NAMES = ["age", "income", "visits", "tenure"]


def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame(rng.normal(size=(500, len(NAMES))), columns=NAMES)
    y = (frame["age"] + frame["income"] * frame["visits"] > 0).astype(int).to_numpy()
    frame = frame.mask(rng.random(frame.shape) < 0.08)
    return frame, y


def _model(kind: str, directory: Path, frame: pd.DataFrame, y: np.ndarray) -> tuple[Path, Any]:
    with threadpool_limits(limits=1):
        if kind == "xgboost":
            model: Any = xgboost.XGBClassifier(n_estimators=30, max_depth=4, nthread=1)
            model.fit(frame[:400], y[:400])
            path = directory / "model.json"
            model.get_booster().save_model(str(path))
            return path, model
        model = make_pipeline(
            SimpleImputer(), HistGradientBoostingClassifier(max_iter=30, random_state=0)
        ).fit(frame[:400], y[:400])
        path = directory / "model.skops"
        sio.dump(model, path)
        return path, model


#: The model kinds, each registered under its own name and served as a deployment of that name.
KINDS = ["xgboost", "hist-gradient-boosting"]


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, Any], pd.DataFrame, LiveServer]]:
    """One server with a deployment of each kind (one server's start, not one a kind): the
    kinds' models and the rows they answer."""
    directory = tmp_path_factory.mktemp("served")
    features = [FeatureSpec(name=n, type="numeric", nullable=True) for n in NAMES]
    text = render_project(
        project=DEPLOYMENT, task="binary", target="y", features=features, key_metrics=[]
    )
    settings = {"deployments": [{"name": kind, "model": kind} for kind in KINDS]}
    text = yaml.safe_dump(merge_settings(yaml.safe_load(text), settings), sort_keys=False)
    (directory / "modelpilot.yaml").write_text(text, encoding="utf-8")
    frame, y = _frame()
    models = {}
    for kind in KINDS:
        path, models[kind] = _model(kind, directory, frame, y)
        command = ["-p", str(directory), "register", str(path), "--name", kind]
        assert run_cli([*command, "--alias", "production"]) == 0
    with live_server(directory, env=ONE_OPENMP_THREAD) as server:
        yield models, frame[400:], server


@pytest.mark.parametrize("kind", KINDS)
def test_a_served_tree_model_answers_as_the_library(
    served: tuple[dict[str, Any], pd.DataFrame, LiveServer], kind: str
) -> None:
    models, rows, server = served
    model = models[kind]
    instances = rows.astype(object).where(rows.notna(), None).to_dict("records")
    expected = model.predict(rows)
    expected_proba = model.predict_proba(rows)
    with httpx.Client(base_url=server.url, headers=auth(), timeout=30.0) as http:
        answers = []
        for start in (0, 1, 33):  # one row, then batches
            batch = instances[start : start + (1 if start == 0 else 32)]
            response = http.post(f"/v1/deployments/{kind}/predict", json={"instances": batch})
            assert response.status_code == 200, response.text
            answers.append((start, response.json()["predictions"]))
    for start, predictions in answers:
        for offset, answer in enumerate(predictions):
            i = start + offset
            assert answer["prediction"] == expected[i]
            probabilities = [answer["probabilities"][str(c)] for c in (0, 1)]
            # JSON carries float32 probabilities as their float64 value: the same number.
            assert probabilities == [float(p) for p in expected_proba[i]]


@pytest.mark.parametrize("kind", KINDS)
def test_the_server_says_at_load_which_path_a_version_takes(
    served: tuple[dict[str, Any], pd.DataFrame, LiveServer], kind: str
) -> None:
    *_, server = served
    lines = [line for line in server.log.splitlines() if " answers through " in line]
    assert len(lines) == len(KINDS), server.log  # one line a version served
    [line] = [line for line in lines if f"{kind}:1 (" in line]
    assert "the exact tree kernel" in line
    assert "compiled walk" in line  # numba is in the dev extra
