"""`modelpilot init`: a commented project file that every other command can read."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpilot.cli._app import main
from modelpilot.spec import load_project

pytestmark = pytest.mark.usefixtures("clean_environ")


def test_init_writes_a_file_that_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "house-prices"
    assert main(["-p", str(directory), "init", "--target", "price"]) == 0
    spec = load_project(directory / "modelpilot.yaml")
    assert (spec.project, spec.task, spec.target) == ("house-prices", "regression", "price")
    assert [str(m) for m in spec.key_metrics] == ["mae <= 25000", "r2 >= 0.8"]
    out = " ".join(capsys.readouterr().out.split())  # rich wraps at the terminal's width
    assert out.startswith("wrote ") and "--target price --write-schema" in out


def test_init_in_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "--name", "churn", "--task", "binary", "--target", "churned"]) == 0
    spec = load_project(tmp_path / "modelpilot.yaml")
    assert (spec.project, spec.task, spec.target) == ("churn", "binary", "churned")
    assert [m.name for m in spec.key_metrics] == ["accuracy", "roc_auc"]


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
