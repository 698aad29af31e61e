"""A project: one directory, its project file and the stores it points to, opened together."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpilot.errors import ConfigError
from modelpilot.project import Project


def test_open_finds_the_stores_relative_to_the_project(project_dir: Path) -> None:
    project = Project.open(project_dir, environ={})
    try:
        assert project.file == project_dir / "modelpilot.yaml"
        assert project.spec.project == "houses"
        assert project.resolve("train.csv") == project_dir / "train.csv"
        assert project.resolve("/abs/x.csv") == Path("/abs/x.csv")
        assert project.registry.list_models() == []
        assert (project_dir / ".modelpilot" / "modelpilot.db").is_file()
    finally:
        project.engine.dispose()


def test_environment_overrides_the_database_and_the_directory(
    project_dir: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path_factory.mktemp("db") / "other.db"
    monkeypatch.chdir(tmp_path_factory.mktemp("somewhere-else"))
    project = Project.open(
        environ={
            "MODELPILOT_PROJECT": str(project_dir),
            "MODELPILOT_DATABASE_URL": f"sqlite:///{elsewhere}",
        }
    )
    try:
        assert project.directory == project_dir.resolve()
        project.prediction_log.count()
        assert elsewhere.is_file()
        assert not (project_dir / ".modelpilot" / "modelpilot.db").exists()
    finally:
        project.engine.dispose()


def test_open_walks_up_from_the_current_directory(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project_dir / "notebooks").mkdir()
    monkeypatch.chdir(project_dir / "notebooks")
    assert Project.open(environ={}).directory == project_dir.resolve()


def test_open_a_directory_without_a_project_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file; run `modelpilot init`"):
        Project.open(tmp_path, environ={})
