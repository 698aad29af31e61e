"""`modelpilot register`, `models list|show`, `alias set|history`, end to end through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest
import skops.io as sio

from modelpilot.cli._app import main
from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.spec import render_project

pytestmark = pytest.mark.usefixtures("clean_environ")

Run = Callable[..., tuple[int, str, str]]


def _invoke(
    capsys: pytest.CaptureFixture[str], directory: Path, *args: str | Path
) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["-p", str(directory), *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def run(
    project_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Run:
    """Run the CLI on a fresh test project; returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("MODELPILOT_USER", "ann")
    return lambda *args: _invoke(capsys, project_dir, *args)


@pytest.fixture(scope="module")
def shared_project(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Path:
    """A project the read-only tests share. v1: evaluated, in production; v2: rejected."""
    directory = tmp_path_factory.mktemp("shared-project")
    (directory / "modelpilot.yaml").write_text(
        render_project(
            project="houses", task="regression", target="price", features=HOUSE_FEATURES
        ),
        encoding="utf-8",
    )
    house_data[1].to_parquet(directory / "holdout.parquet")
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            if key.startswith("MODELPILOT_") and not key.startswith("MODELPILOT_TEST_"):
                patch.delenv(key)
        patch.setenv("MODELPILOT_USER", "ann")
        holdout = directory / "holdout.parquet"
        first = ["register", str(house_model_file), "--eval", str(holdout)]
        options = ["--alias", "production", "--tag", "team=pricing", "--tag", "note=a=b"]
        assert main(["-p", str(directory), *first, *options]) == 0
        assert main(["-p", str(directory), "register", str(house_model_file)]) == 0
    return directory


@pytest.fixture
def run_shared(shared_project: Path, capsys: pytest.CaptureFixture[str]) -> Run:
    """Run the CLI on the shared project (for commands that change nothing)."""
    return lambda *args: _invoke(capsys, shared_project, *args)


def _json(out: str) -> Any:
    return json.loads(out)


def _flat(out: str) -> str:
    """Text output with its whitespace collapsed: rich wraps lines at the terminal's width."""
    return " ".join(out.split())


# ---- register -------------------------------------------------------------------------


def test_register_with_everything(run: Run, project_dir: Path, house_model_file: Path) -> None:
    code, out, err = run(
        "register",
        house_model_file,
        "--eval",
        project_dir / "holdout.parquet",
        "--data",
        project_dir / "train.csv",
        "--alias",
        "production",
        "--tag",
        "team=pricing",
        "--tag",
        "note=a=b",
        "--json",
    )
    assert (code, err) == (0, "")
    registered = _json(out)
    assert (registered["name"], registered["version"]) == ("houses", 1)
    assert registered["status"] == "registered"
    assert registered["aliases"] == ["production"]
    assert registered["tags"] == {"team": "pricing", "note": "a=b"}
    assert registered["metrics"]["n_eval_rows"] == 600
    assert all(check["passed"] for check in registered["checks"])
    assert registered["lineage"]["data_rows"] == 2400
    assert registered["created_by"] == "ann"
    assert len(registered["sha256"]) == 64
    code, out, _ = run("models", "show", "houses:1", "--json")
    assert _json(out)["profile"]["n_rows"] == 2400


def test_register_without_a_holdout_is_rejected(run: Run, house_model_file: Path) -> None:
    code, out, err = run("register", house_model_file)
    assert code == 0 and err == ""
    assert "rejected houses v1 (skops, sha256" in _flat(out)
    assert "FAIL mae = not evaluated: register with --eval HOLDOUT" in _flat(out)
    assert "deploying or scoring with it needs --force" in _flat(out)


def test_register_alias_is_not_moved_to_a_rejected_version(
    run: Run, house_model_file: Path
) -> None:
    code, out, err = run("register", house_model_file, "--alias", "production")
    assert code == 2
    # What it scored and why it was rejected, before the error.
    assert "rejected houses v1" in _flat(out)
    assert "FAIL mae = not evaluated: register with --eval HOLDOUT" in _flat(out)
    assert (
        "houses v1 was registered as rejected (mae not evaluated: register with --eval "
        "HOLDOUT; r2 not evaluated: register with --eval HOLDOUT), so alias production was "
        "not moved; `modelpilot alias set houses production 1 --force` insists"
    ) in _flat(err)
    code, out, _ = run("models", "list", "--json")
    assert _json(out)[0]["aliases"] == {}


def test_register_pickle_needs_trust(run: Run, house_model_file: Path, tmp_path: Path) -> None:
    pickled = tmp_path / "house.joblib"
    joblib.dump(
        sio.load(house_model_file, trusted=sio.get_untrusted_types(file=house_model_file)), pickled
    )
    code, out, err = run("register", pickled)
    assert code == 2 and out == ""
    assert "house.joblib is a pickle/joblib file, which can run arbitrary code when loaded" in err
    assert "pass --trust" in err
    code, out, _ = run("models", "list", "--json")
    assert _json(out) == []

    code, out, err = run("register", pickled, "--trust", "--json")
    assert code == 0, err
    assert _json(out)["flavor"] == "joblib"


# ---- models list / show ---------------------------------------------------------------


def test_models_list(run_shared: Run) -> None:
    code, out, _ = run_shared("models", "list", "--json")
    assert code == 0
    [row] = _json(out)
    assert (row["name"], row["versions"], row["latest"]) == ("houses", 2, 2)
    assert row["aliases"] == {"production": 1}
    code, out, _ = run_shared("models", "list")
    assert code == 0
    assert "houses" in out and "production" in out


def test_models_list_when_empty(run: Run) -> None:
    code, out, _ = run("models", "list")
    assert code == 0
    assert "no models registered yet; run `modelpilot register`" in _flat(out)


def test_models_show_a_model(run_shared: Run) -> None:
    code, out, _ = run_shared("models", "show", "houses", "--json")
    assert code == 0
    assert [(v["version"], v["status"], v["aliases"]) for v in _json(out)] == [
        (1, "registered", ["production"]),
        (2, "rejected", []),
    ]
    code, out, _ = run_shared("models", "show", "houses")
    assert code == 0
    assert "v1" in out and "v2" in out and "rejected" in out and "production" in out


@pytest.mark.parametrize("ref", ["houses:1", "houses@production"])
def test_models_show_a_version(run_shared: Run, ref: str) -> None:
    code, out, _ = run_shared("models", "show", ref, "--json")
    assert code == 0
    shown = _json(out)
    assert (shown["version"], shown["status"], shown["aliases"]) == (
        1,
        "registered",
        ["production"],
    )
    assert shown["metrics"]["n_eval_rows"] == 600
    code, out, _ = run_shared("models", "show", ref)
    assert code == 0
    assert _flat(out).startswith("houses v1 status: registered aliases: production")
    assert "pass mae = " in _flat(out) and "tags: team=pricing, note=a=b" in _flat(out)
    assert f"sha256 {shown['sha256']}" in _flat(out)


def test_models_show_prints_user_text_literally(
    run: Run, house_model_file: Path, tmp_path: Path
) -> None:
    odd = tmp_path / "[v2] house.skops"
    odd.write_bytes(house_model_file.read_bytes())
    assert run("register", odd, "--tag", "ticket=[OPS-1] :b: [/]")[0] == 0
    code, out, _ = run("models", "show", "houses:1")
    assert code == 0
    assert "artifact: [v2] house.skops (skops" in _flat(out)
    assert "tags: ticket=[OPS-1] :b: [/]" in _flat(out)


# ---- alias set / history --------------------------------------------------------------


def test_alias_set_to_a_rejected_version_needs_force(run_shared: Run) -> None:
    code, out, err = run_shared("alias", "set", "houses", "production", "2")
    assert code == 2 and out == ""
    assert (
        "houses v2 is rejected (mae not evaluated: register with --eval HOLDOUT; r2 not "
        "evaluated: register with --eval HOLDOUT); pass --force to use it anyway"
    ) in err
    code, out, _ = run_shared("models", "show", "houses@production", "--json")
    assert _json(out)["version"] == 1


def test_alias_set_and_history(
    run: Run, project_dir: Path, house_model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        run(
            "register",
            house_model_file,
            "--eval",
            project_dir / "holdout.parquet",
            "--alias",
            "production",
        )[0]
        == 0
    )
    assert run("register", house_model_file)[0] == 0  # v2: rejected
    monkeypatch.setenv("MODELPILOT_USER", "bob")
    assert run("alias", "set", "houses", "candidate", "2", "--force")[0] == 0
    code, out, _ = run(
        "alias", "set", "houses", "production", "2", "--force", "--reason", "[urgent] rollback"
    )
    assert code == 0 and "houses@production -> v2" in out
    code, out, _ = run("models", "show", "houses@production", "--json")
    assert _json(out)["version"] == 2

    code, out, _ = run("alias", "history", "houses", "production", "--json")
    assert code == 0
    assert [
        (h["alias"], h["previous_version"], h["version"], h["by"], h["reason"]) for h in _json(out)
    ] == [
        ("production", None, 1, "ann", "register --alias"),
        ("production", 1, 2, "bob", "[urgent] rollback"),
    ]
    code, out, _ = run("alias", "history", "houses", "--json")
    assert len(_json(out)) == 3
    code, out, _ = run("alias", "history", "houses", "production")
    assert code == 0
    assert "[urgent]" in out and "v1" in out and "bob" in out


# ---- bad input: one clear message, exit code 2 ----------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("models", "show", "nope"), "model 'nope' was not found; registered models: houses"),
        (
            ("models", "show", "houses:9"),
            "version 'houses:9' was not found; houses has versions 1, 2",
        ),
        (
            ("models", "show", "houses@staging"),
            "alias 'houses@staging' was not found; houses has aliases production",
        ),
        (
            ("models", "show", "houses:one"),
            "'houses:one' is not a model reference; expected NAME, NAME:VERSION or NAME@ALIAS",
        ),
        (("alias", "set", "nope", "production", "1"), "model 'nope' was not found"),
        (("alias", "set", "houses", "production", "9"), "version 'houses:9' was not found"),
        (("alias", "set", "houses", "live now", "1"), "alias 'live now' is not allowed"),
        (("alias", "history", "nope"), "model 'nope' was not found"),
    ],
)
def test_unknown_models_versions_and_aliases(
    run_shared: Run, args: tuple[str, ...], message: str
) -> None:
    code, out, err = run_shared(*args)
    assert (code, out) == (2, "")
    assert err.startswith("error: ") and message in err


def _holdout_without_bedrooms(directory: Path, holdout: pd.DataFrame) -> Path:
    holdout.drop(columns="bedrooms").to_csv(directory / "no-bedrooms.csv", index=False)
    return directory / "no-bedrooms.csv"


def _holdout_with_text(directory: Path, holdout: pd.DataFrame) -> Path:
    holdout.astype({"age_years": object}).assign(age_years="old").to_csv(
        directory / "text.csv", index=False
    )
    return directory / "text.csv"


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (None, ("missing.skops",), "artifact 'missing.skops' was not found; check the path"),
        (None, ("train.csv",), "train.csv: unknown model format '.csv'; expected .skops"),
        (None, ("{model}", "--eval", "absent.parquet"), "file 'absent.parquet' was not found"),
        (None, ("{model}", "--eval", "modelpilot.yaml"), "unsupported file type '.yaml'"),
        (
            _holdout_without_bedrooms,
            ("{model}", "--eval", "{made}"),
            "required column(s) bedrooms missing from the input",
        ),
        (
            _holdout_with_text,
            ("{model}", "--eval", "{made}"),
            "cannot be read as csv (In CSV column #3: CSV conversion error to double: invalid "
            "value 'old')",
        ),
        (None, ("{model}", "--tag", "team"), "tag 'team' is not KEY=VALUE"),
        (None, ("{model}", "--name", "my model"), "model name 'my model' is not allowed"),
    ],
)
def test_register_bad_input(
    run: Run,
    project_dir: Path,
    house_model_file: Path,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    make: Callable[[Path, pd.DataFrame], Path] | None,
    args: tuple[str, ...],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(project_dir)  # relative paths, as a person types them
    made = make(project_dir, house_data[1]) if make is not None else None
    filled = [a.format(model=house_model_file, made=made) for a in args]
    code, out, err = run("register", *filled)
    assert (code, out) == (2, "")
    assert message in err
    assert _json(run("models", "list", "--json")[1]) == []


def test_register_a_corrupt_model_file(run: Run, tmp_path: Path) -> None:
    broken = tmp_path / "model.skops"
    broken.write_bytes(b"PK\x03\x04 truncated")
    code, _, err = run("register", broken)
    assert code == 2
    assert "model.skops is not a loadable skops file" in err


def test_malformed_project_file(run: Run, project_dir: Path, house_model_file: Path) -> None:
    (project_dir / "modelpilot.yaml").write_text(
        "project: houses\n"
        "task: regression\n"
        "target: price\n"
        "key_metrics:\n"
        "  - mae <= 25000\n"
        "  - {name: r2, op: '>=', target: high}\n"
        "store: {database_url: 42, artefacts: x}\n",
        encoding="utf-8",
    )
    for args in (("models", "list"), ("register", str(house_model_file))):
        code, out, err = run(*args)
        assert (code, out) == (2, "")
        assert "modelpilot.yaml has 3 problems:" in err
        assert "modelpilot.yaml:6: key_metrics[1].target: expected a number, got 'high'" in err
        assert "modelpilot.yaml:7: store.database_url: expected a string, got 42" in err
        assert "modelpilot.yaml:7: store.artefacts: unknown key" in err


def test_no_project_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-p", str(tmp_path), "models", "list"]) == 2
    err = capsys.readouterr().err
    assert "modelpilot.yaml: no such file; run `modelpilot init` to create one" in err


def test_error_messages_are_printed_literally(run: Run, project_dir: Path) -> None:
    (project_dir / "modelpilot.yaml").write_text(
        "project: p\ntask: regression\ntarget: y\n"
        "features:\n  - {name: size, type: numeric, range: [5, 1]}\n",
        encoding="utf-8",
    )
    code, _, err = run("models", "list")
    assert code == 2
    assert "range must be [low, high] with low <= high, got [5.0, 1.0]" in err


def test_console_script_exits_2_on_bad_input(project_dir: Path) -> None:
    script = Path(sys.executable).parent / "modelpilot"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPILOT_")}
    result = subprocess.run(
        [str(script), "--project", str(project_dir), "models", "show", "houses@production"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "model 'houses' was not found; no model is registered yet" in result.stderr
    assert "Traceback" not in result.stderr
