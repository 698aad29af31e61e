"""The registry's daily chores: statuses in `models list`, `models evaluate`, `models archive`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from modelpilot.cli._app import main
from modelpilot.project import Project
from modelpilot.rollout import RolloutStore

pytestmark = pytest.mark.usefixtures("clean_environ")

Run = Callable[..., tuple[int, str, str]]


_BOX = str.maketrans({c: " " for c in "│┃┏━┳┓┡╇┩└┴┘─┌┬┐├┼┤╭╮╰╯"})


def _text(output: str) -> str:
    """Output without table borders, its whitespace collapsed."""
    return " ".join(output.translate(_BOX).split())


@pytest.fixture
def run(
    project_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    clean_environ: None,
) -> Run:
    monkeypatch.setenv("MODELPILOT_USER", "ann")

    def invoke(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["-p", str(project_dir), *map(str, args)])
        out, err = capsys.readouterr()
        return code, _text(out), _text(err)

    return invoke


@pytest.fixture
def two_versions(run: Run, project_dir: Path, house_model_file: Path) -> None:
    """v1 registered without a holdout (rejected), v2 evaluated and in production."""
    assert run("register", house_model_file)[0] == 0
    holdout = project_dir / "holdout.parquet"
    code, _, err = run("register", house_model_file, "--eval", holdout, "--alias", "production")
    assert code == 0, err


@pytest.mark.usefixtures("two_versions")
def test_models_list_shows_each_versions_status(run: Run) -> None:
    code, out, _ = run("models", "list")
    assert code == 0
    assert "houses v2 registered production" in out
    assert "v1 rejected -" in out
    code, out, _ = run("models", "list", "--json")
    assert json.loads(out)[0]["status"] == {"1": "rejected", "2": "registered"}


@pytest.mark.usefixtures("two_versions")
def test_evaluate_turns_a_rejected_version_registered_with_an_audit_entry(
    run: Run, project_dir: Path
) -> None:
    code, out, err = run(
        "models", "evaluate", "houses:1", "--eval", project_dir / "holdout.parquet"
    )
    assert code == 0, err
    assert "houses v1 on" in out and "rejected -> registered" in out
    assert "pass mae =" in out
    project = Project.open(project_dir, environ={})
    try:
        assert project.registry.get("houses", 1).status == "registered"
        [entry] = [e for e in project.registry.audit_entries() if e["action"] == "evaluate"]
        assert (entry["actor"], entry["target"]) == ("ann", "houses:1")
        assert entry["details"]["previous_status"] == "rejected"
    finally:
        project.engine.dispose()


def test_evaluate_never_demotes_a_version_in_use(
    run: Run, project_dir: Path, house_model_file: Path
) -> None:
    holdout = project_dir / "holdout.parquet"
    assert run("register", house_model_file, "--eval", holdout, "--alias", "production")[0] == 0
    text = (project_dir / "modelpilot.yaml").read_text()
    (project_dir / "modelpilot.yaml").write_text(text.replace("mae <= 25000", "mae <= 1"))
    code, out, _ = run("models", "evaluate", "houses:1", "--eval", holdout)
    assert code == 0
    assert "still registered" in out and "FAIL mae" in out
    assert "in use (alias houses@production), so it stays registered" in out


@pytest.mark.usefixtures("two_versions")
def test_archive_is_refused_while_in_use_and_hides_the_version(run: Run, project_dir: Path) -> None:
    code, _, err = run("models", "archive", "houses:2")
    assert code == 2
    assert "houses v2 is in use (alias houses@production), so it was not archived" in err

    project = Project.open(project_dir, environ={})
    try:
        RolloutStore(project.engine).ensure("houses", "houses", 1, "ann")
    finally:
        project.engine.dispose()
    code, _, err = run("models", "archive", "houses:1")
    assert code == 2 and "deployment houses (serves it)" in err

    project = Project.open(project_dir, environ={})
    try:
        with project.engine.begin() as connection:
            connection.exec_driver_sql("DELETE FROM deployment_states")
    finally:
        project.engine.dispose()
    code, out, err = run("models", "archive", "houses:1", "--reason", "superseded")
    assert code == 0, err
    assert "archived houses v1" in out
    code, out, _ = run("models", "list")
    assert "v1" not in out and "1 archived version(s) not shown" in out
    assert "v1 archived" in run("models", "list", "--all")[1]
    code, _, err = run("alias", "set", "houses", "candidate", "1")
    assert code == 2 and "houses v1 is archived" in err
    assert "houses v1" in run("models", "show", "houses:1")[1]  # still found by its number


def test_archive_needs_a_version(run: Run) -> None:
    code, _, err = run("models", "archive", "houses")
    assert code == 2 and "names no version" in err


@pytest.mark.usefixtures("two_versions")
def test_tables_fit_an_80_column_terminal(
    project_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelpilot.cli._app import console

    monkeypatch.setattr(console, "width", 80)
    for command in (
        ["models", "show", "houses"],
        ["models", "list"],
        ["alias", "history", "houses"],
    ):
        capsys.readouterr()
        assert main(["-p", str(project_dir), *command]) == 0
        out = capsys.readouterr().out
        assert max(len(line) for line in out.splitlines()) <= 80, out
        assert "…" not in out, out  # wrapped, never cut
        assert "registered" in out or "production" in out
