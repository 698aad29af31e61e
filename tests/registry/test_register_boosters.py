"""`modelpilot register` with native XGBoost, LightGBM and CatBoost files: no --trust needed,
the model's feature names checked against the project's schema, clear errors (exit 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import catboost
import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from modelpilot.project import Project
from modelpilot.spec import FeatureSpec, render_project
from project_helpers import run_cli

NAMES = ["age", "income", "visits", "tenure"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def churn_project(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A binary project with four numeric features, and a holdout with its labels."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(400, len(NAMES))), columns=NAMES)
    frame.loc[rng.random(400) < 0.05, "visits"] = np.nan
    frame["churned"] = (frame["age"] + frame["income"] > 0).astype(int)
    features = [FeatureSpec(name=n, type="numeric", nullable=True) for n in NAMES]
    (tmp_path / "modelpilot.yaml").write_text(
        render_project(
            project="churn", task="binary", target="churned", features=features, key_metrics=[]
        ),
        encoding="utf-8",
    )
    frame[300:].to_parquet(tmp_path / "holdout.parquet")
    return tmp_path, frame


def _save(library: str, frame: pd.DataFrame, directory: Path, columns: list[str]) -> Path:
    X, y = frame[columns][:300], frame["churned"][:300]
    model: Any
    if library == "xgboost":
        model = xgboost.XGBClassifier(n_estimators=10, max_depth=3, nthread=1).fit(X, y)
        path = directory / "model.json"
        model.get_booster().save_model(str(path))
    elif library == "lightgbm":
        model = lightgbm.LGBMClassifier(n_estimators=10, verbose=-1, n_jobs=1).fit(X, y)
        path = directory / "model.txt"
        model.booster_.save_model(str(path))
    else:
        model = catboost.CatBoostClassifier(
            iterations=10, depth=3, verbose=0, thread_count=1, allow_writing_files=False
        )
        model.fit(X.fillna(0.0), y)
        path = directory / "model.cbm"
        model.save_model(str(path))
    return path


@pytest.mark.parametrize("library", ["xgboost", "lightgbm", "catboost"])
def test_a_native_model_registers_through_the_cli_without_trust(
    library: str, churn_project: tuple[Path, pd.DataFrame], clean_environ: None
) -> None:
    directory, frame = churn_project
    path = _save(library, frame, directory, NAMES)
    holdout = directory / "holdout.parquet"
    assert run_cli(["-p", str(directory), "register", str(path), "--eval", str(holdout)]) == 0
    project = Project.open(directory, environ={})
    try:
        version = project.registry.get("churn", 1)
        assert version.flavor == library
        assert version.metrics["n_eval_rows"] == 100
        assert version.metrics["accuracy"] > 0.8
        runtime = project.registry.load(version)
        # Loaded for serving: it takes the server's arrays in the schema's column order.
        assert runtime.accepts_array  # type: ignore[attr-defined]
        rows = frame[NAMES][300:].to_numpy()
        if library == "catboost":
            rows = np.nan_to_num(rows)
        assert np.array_equal(runtime.predict(rows), runtime.predict(frame[NAMES][300:]))
    finally:
        project.engine.dispose()


def test_flavor_names_the_format_of_a_file_whose_name_does_not(
    churn_project: tuple[Path, pd.DataFrame], clean_environ: None
) -> None:
    directory, frame = churn_project
    path = _save("lightgbm", frame, directory, NAMES)
    renamed = path.rename(directory / "churn.model.bin")
    assert run_cli(["-p", str(directory), "register", str(renamed)]) == 2
    assert run_cli(["-p", str(directory), "register", str(renamed), "--flavor", "lightgbm"]) == 0


def test_a_model_whose_features_the_schema_lacks_is_refused(
    churn_project: tuple[Path, pd.DataFrame],
    clean_environ: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory, frame = churn_project
    path = _save(
        "xgboost", frame.rename(columns={"tenure": "months"}), directory, [*NAMES[:3], "months"]
    )
    capsys.readouterr()
    assert run_cli(["-p", str(directory), "register", str(path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "the model was fitted on columns the schema lacks: months;" in err
    assert "the schema also has tenure, which it does not use" in err
    project = Project.open(directory, environ={})
    try:
        assert project.registry.list_models() == []
    finally:
        project.engine.dispose()


def test_a_model_without_names_must_take_as_many_features_as_the_schema_has(
    churn_project: tuple[Path, pd.DataFrame],
    clean_environ: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory, frame = churn_project
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2, nthread=1)
    model.fit(frame[NAMES[:3]].to_numpy()[:300], frame["churned"][:300])
    path = directory / "three.ubj"
    model.get_booster().save_model(str(path))
    capsys.readouterr()
    assert run_cli(["-p", str(directory), "register", str(path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "the model takes 3 columns (it was fitted on an unnamed array)" in err
    assert "but the schema declares 4" in err


def test_a_corrupt_native_file_exits_2(
    churn_project: tuple[Path, pd.DataFrame],
    clean_environ: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    directory, _ = churn_project
    path = directory / "broken.cbm"
    path.write_bytes(b"CBM1 not really")
    capsys.readouterr()
    assert run_cli(["-p", str(directory), "register", str(path)]) == 2
    assert "broken.cbm is not a loadable CatBoost model" in capsys.readouterr().err
