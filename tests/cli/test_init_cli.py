"""`modelpilot init`: a commented project file that every other command can read."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from modelpilot.cli._app import main
from modelpilot.spec import load_project

pytestmark = pytest.mark.usefixtures("clean_environ")


def test_init_writes_a_file_that_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "house-prices"
    assert main(["-p", str(directory), "init", "--target", "price"]) == 0
    spec = load_project(directory / "modelpilot.yaml")
    assert (spec.project, spec.task, spec.target) == ("house-prices", "regression", "price")
    # Not the house-price MAE of every new project: without data, a scale-free target.
    assert [str(m) for m in spec.key_metrics] == ["r2 >= 0.7"]
    out = " ".join(capsys.readouterr().out.split())  # rich wraps at the terminal's width
    assert out.startswith("wrote ") and "--target price --write-schema" in out


def test_init_in_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--name", "churn", "--task", "binary", "--target", "churned"]) == 0
    spec = load_project(tmp_path / "modelpilot.yaml")
    assert (spec.project, spec.task, spec.target) == ("churn", "binary", "churned")
    assert [m.name for m in spec.key_metrics] == ["accuracy", "roc_auc"]


def test_init_infers_the_task_schema_and_metric_scale_from_data(
    tmp_path: Path,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    capsys: pytest.CaptureFixture[str],
) -> None:
    train = house_data[0]
    data = tmp_path / "train.csv"
    train.to_csv(data, index=False)
    directory = tmp_path / "houses"
    assert main(["-p", str(directory), "init", "--data", str(data), "--target", "price"]) == 0
    spec = load_project(directory)
    assert spec.task == "regression"
    assert [f.name for f in spec.features] == [c for c in train.columns if c != "price"]
    [mae, r2] = spec.key_metrics
    median_error = (train["price"] - train["price"].median()).abs().mean()
    assert mae.name == "mae" and mae.target == pytest.approx(median_error / 2, rel=0.05)
    assert str(r2) == "r2 >= 0.7"

    churn = train.assign(churned=(train["price"] > train["price"].quantile(0.8)).astype(int))
    churn.drop(columns="price").to_csv(tmp_path / "churn.csv", index=False)
    other = tmp_path / "churn"
    args = ["-p", str(other), "init", "--data", str(tmp_path / "churn.csv"), "--target", "churned"]
    assert main(args) == 0
    spec = load_project(other)
    assert spec.task == "binary"
    assert [str(m) for m in spec.key_metrics] == ["accuracy >= 0.9", "roc_auc >= 0.8"]


def test_data_check_warns_of_a_binary_target_under_regression(
    tmp_path: Path,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    capsys: pytest.CaptureFixture[str],
) -> None:
    train = house_data[0]
    flagged = train.assign(expensive=(train["price"] > 300_000).astype(int)).drop(columns="price")
    flagged.to_csv(tmp_path / "flagged.csv", index=False)
    assert main(["-p", str(tmp_path), "init", "--task", "regression", "--target", "expensive"]) == 0
    capsys.readouterr()
    check = ["-p", str(tmp_path), "data", "check", str(tmp_path / "flagged.csv")]
    assert main([*check, "--json"]) == 0  # a warning, not a failure
    [warning] = [c for c in json.loads(capsys.readouterr().out)["checks"] if c["status"] == "warn"]
    assert warning["summary"].startswith(
        "The target expensive has only 2 distinct values, but the task is regression; "
        "if it is a yes/no label, set `task: binary`"
    )


def test_init_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "modelpilot.yaml").write_text("project: mine\n", encoding="utf-8")
    assert main(["-p", str(tmp_path), "init"]) == 2
    err = capsys.readouterr().err
    assert "modelpilot.yaml already exists; pass --force to overwrite it" in err
    assert (tmp_path / "modelpilot.yaml").read_text(encoding="utf-8") == "project: mine\n"

    assert main(["-p", str(tmp_path), "init", "--force", "--task", "multiclass"]) == 0
    assert load_project(tmp_path).task == "multiclass"


def test_init_in_a_directory_whose_name_yaml_misreads(tmp_path: Path) -> None:
    directory = tmp_path / "2024"
    assert main(["-p", str(directory), "init", "--target", "on"]) == 0
    spec = load_project(directory)
    assert (spec.project, spec.target) == ("2024", "on")


def test_init_with_an_unknown_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-p", str(tmp_path), "init", "--task", "ranking"]) == 2
    assert "ranking" in capsys.readouterr().err
    assert not (tmp_path / "modelpilot.yaml").exists()
