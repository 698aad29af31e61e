"""The schema cannot be skipped by accident: `register` with no features infers them (or says
what to run), the model's own feature names are checked against them, and `score` fails when
it scores nothing or rejects more than --max-rejected allows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LinearRegression

from modelpilot.cli._app import main
from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.spec import load_project, render_project

pytestmark = pytest.mark.usefixtures("clean_environ")

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(project_dir: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["-p", str(project_dir), *map(str, args)])
        out, err = capsys.readouterr()
        return code, " ".join(out.split()), " ".join(err.split())

    return invoke


def _without_features(project_dir: Path) -> None:
    (project_dir / "modelpilot.yaml").write_text(
        render_project(project="houses", task="regression", target="price"), encoding="utf-8"
    )


def test_register_with_an_empty_schema_infers_it_from_the_training_data(
    run: Run, project_dir: Path, house_model_file: Path
) -> None:
    _without_features(project_dir)
    code, out, err = run(
        "register", house_model_file, "--data", project_dir / "train.csv", "--eval",
        project_dir / "holdout.parquet",
    )  # fmt: skip
    assert code == 0, err
    assert "declared no features: inferred 9 from" in err
    assert "registered houses v1" in out
    declared = {f.name: f.type for f in load_project(project_dir / "modelpilot.yaml").features}
    assert declared == {f.name: f.type for f in HOUSE_FEATURES}


def test_register_with_an_empty_schema_and_no_data_says_what_to_run(
    run: Run, project_dir: Path, house_model_file: Path
) -> None:
    _without_features(project_dir)
    code, out, err = run("register", house_model_file)
    assert code == 2 and out == ""
    assert "features: the schema is empty" in err
    assert "`modelpilot data check TRAIN.csv --write-schema`" in err
    assert "Traceback" not in err


def test_the_models_feature_names_are_checked_against_the_schema(
    run: Run, project_dir: Path, house_data: tuple[pd.DataFrame, pd.DataFrame], tmp_path: Path
) -> None:
    train = house_data[0]
    numeric = ["size_sqft", "bedrooms", "bathrooms"]
    renamed = train[numeric].rename(columns={"size_sqft": "area"}).assign(rooms=1.0)
    model = tmp_path / "renamed.skops"
    sio.dump(LinearRegression().fit(renamed, train["price"]), model)
    code, out, err = run("register", model)
    assert code == 2 and out == ""
    assert "the model was fitted on columns the schema lacks: area, rooms;" in err
    assert "the schema also has size_sqft, age_years," in err

    unnamed = tmp_path / "unnamed.skops"
    sio.dump(LinearRegression().fit(train[numeric].to_numpy(), train["price"]), unnamed)
    code, _, err = run("register", unnamed)
    assert code == 2
    assert "the model takes 3 columns (it was fitted on an unnamed array), but the schema" in err

    subset = tmp_path / "subset.skops"
    sio.dump(LinearRegression().fit(train[numeric], train["price"]), subset)
    code, out, err = run("register", subset)
    assert code == 0
    assert "warning: the model does not use age_years, lot_acres, distance_km" in err


@pytest.fixture
def production(run: Run, project_dir: Path, house_model_file: Path) -> None:
    holdout = project_dir / "holdout.parquet"
    code, _, err = run("register", house_model_file, "--eval", holdout, "--alias", "production")
    assert code == 0, err


def _listings(house_data: tuple[pd.DataFrame, pd.DataFrame], bad: int) -> pd.DataFrame:
    frame = house_data[1].drop(columns="price").iloc[:200].copy()
    frame.loc[: bad - 1, "size_sqft"] = -1.0  # outside the declared range
    frame.loc[5, "location"] = "lunar"  # not a declared category: scored, and counted
    return frame


@pytest.mark.usefixtures("production")
def test_score_that_scores_no_row_exits_1(
    run: Run, project_dir: Path, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _listings(house_data, bad=200).to_csv(project_dir / "broken.csv", index=False)
    code, _, err = run("score", project_dir / "broken.csv", "-o", project_dir / "out.csv")
    assert code == 1
    assert "no row of" in err and "was scored: 200 of 200 rejected (reasons: size_sqft: 200)" in err


@pytest.mark.usefixtures("production")
def test_max_rejected_stops_the_run_early(
    run: Run, project_dir: Path, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    # Parquet: read in chunks of exactly --batch-rows rows.
    _listings(house_data, bad=30).to_parquet(project_dir / "new.parquet")
    out_file = project_dir / "out.parquet"
    args = ["score", project_dir / "new.parquet", "-o", out_file, "--batch-rows", "50"]
    code, _, err = run(*args, "--max-rejected", "10%")
    assert code == 1
    assert "stopped after 50 rows: 30 rejected (60.0%), more than --max-rejected 10% allows;" in err
    assert "reasons so far: size_sqft: 30" in err
    assert not out_file.exists(), "a stopped run leaves no output behind"
    code, _, err = run(*args, "--max-rejected", "lots")
    assert code == 2 and "expected a number of rows (100) or a percentage (5%)" in err

    code, out, err = run(*args, "--max-rejected", "30", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["scored"], summary["rejected"]) == (170, 30)
    assert summary["unseen_categories"] == {"location": 1}
    assert np.isfinite(pd.read_parquet(out_file)["prediction"]).all()
