"""`modelpilot data check`: exit codes, human and JSON output, and --write-schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from modelpilot.cli._app import main
from modelpilot.datasets import HOUSE_FEATURES, house_prices
from modelpilot.spec import load_project

pytestmark = pytest.mark.usefixtures("clean_environ")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, with no project file in it or above."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_clean_data_exits_0_with_a_table(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    house_prices(500, seed=1).to_csv(workdir / "train.csv", index=False)
    assert main(["data", "check", "train.csv", "--target", "price"]) == 0
    out = capsys.readouterr().out
    assert "train.csv: 500 rows, 10 columns; target price (regression)" in out
    for name in ("schema", "missing_values", "duplicate_rows", "label_consistency"):
        assert name in out
    assert "passed: the data is fit to train on" in out


def test_json_output(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    house_prices(500, seed=1).to_parquet(workdir / "train.parquet")
    assert main(["data", "check", "train.parquet", "--target", "price", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["passed"], report["n_rows"], report["task"]) == (True, 500, "regression")
    assert [c["name"] for c in report["checks"]][:4] == [
        "schema",
        "missing_values",
        "constant_columns",
        "duplicate_rows",
    ]
    assert report["schema"][6]["categories"] == ["rural", "suburban", "urban"]


def test_a_blocking_failure_exits_1_and_shows_the_conflicts(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    house_prices(500, seed=1, conflicting_duplicates=2).to_csv(workdir / "train.csv", index=False)
    assert main(["data", "check", "train.csv", "--target", "price"]) == 1
    captured = capsys.readouterr()
    details = _flat(captured.out.split("label_consistency:")[-1])
    assert details.count("size_sqft=") == 2 and "(1x)" in details
    assert details.endswith(
        "FAILED: 1 blocking check failed (label_consistency); fix the data, or change "
        "data_checks in modelpilot.yaml"
    )
    assert captured.err == ""


def test_json_with_a_failure_keeps_stdout_clean(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    house_prices(500, seed=1, conflicting_duplicates=2).to_csv(workdir / "train.csv", index=False)
    assert main(["data", "check", "train.csv", "--target", "price", "--json"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["passed"] is False
    conflicts = next(c for c in report["checks"] if c["name"] == "label_consistency")
    assert conflicts["details"]["conflicting_groups"] == 2
    assert captured.err == ""


def test_the_task_option(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = house_prices(500, seed=1).assign(price=lambda f: (f["price"] > 300_000).astype(int))
    frame.to_csv(workdir / "train.csv", index=False)
    assert main(["data", "check", "train.csv", "--target", "price", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "binary"
    assert (
        main(["data", "check", "train.csv", "--target", "price", "--task", "multiclass", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["task"] == "multiclass"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.csv", "--target", "price"], "error: file 'nope.csv' was not found; check the path"),
        (
            ["train.xlsx", "--target", "price"],
            "error: train.xlsx: unsupported file type '.xlsx'; expected .csv or .parquet",
        ),
        (
            ["train.csv", "--target", "prize"],
            "error: the target column 'prize' is not in train.csv; its columns are size_sqft, "
            "bedrooms, bathrooms, age_years, lot_acres, distance_km, location, condition, "
            "has_garage, price. Pass the name of one of them (for example --target)",
        ),
        (["broken.parquet", "--target", "price"], "error: broken.parquet: cannot be read"),
        (
            ["train.csv"],
            "error: --target is required without a project file; name the label "
            "column, for example `modelpilot data check train.csv --target price`",
        ),
        (
            ["train.csv", "--target", "price", "--task", "ranking"],
            "Invalid value for '--task': Value error, 'ranking' is not one of 'regression', "
            "'binary', 'multiclass'.",
        ),
        (["--target", "price"], "Missing argument 'file'."),
        (
            ["train.csv", "--target", "price", "--write-schema"],
            "error: --write-schema writes into modelpilot.yaml, but there is none in",
        ),
    ],
    ids=[
        "missing-file",
        "xlsx",
        "unknown-target",
        "corrupt-parquet",
        "no-target",
        "bad-task",
        "no-file",
        "write-schema-without-project",
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    house_prices(50, seed=1).to_csv(workdir / "train.csv", index=False)
    (workdir / "train.xlsx").write_bytes(b"PK\x03\x04 not a workbook")
    (workdir / "broken.parquet").write_bytes(b"PAR1 truncated")
    assert main(["data", "check", *args]) == 2
    captured = capsys.readouterr()
    assert message in _flat(captured.err)
    assert captured.out == ""


# ---- with a project file --------------------------------------------------------------


def test_a_project_supplies_target_schema_and_thresholds(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project_dir)
    assert main(["data", "check", "train.csv", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["target"], report["task"]) == ("price", "regression")
    ranges = next(c for c in report["checks"] if c["name"] == "out_of_range")
    assert set(ranges["details"]["columns"]) == {f.name for f in HOUSE_FEATURES if f.range}

    # The project's thresholds decide what blocks: here nothing does.
    text = (project_dir / "modelpilot.yaml").read_text(encoding="utf-8")
    text = text.replace("blocking: [label_consistency, schema, missing_values]", "blocking: []")
    (project_dir / "modelpilot.yaml").write_text(text, encoding="utf-8")
    house_prices(300, seed=2, conflicting_duplicates=3).to_csv(
        project_dir / "dirty.csv", index=False
    )
    assert main(["data", "check", "dirty.csv"]) == 0
    assert "label_consistency" in capsys.readouterr().out


def test_project_directory_option(
    project_dir: Path, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(
            [
                "-p",
                str(project_dir),
                "data",
                "check",
                str(project_dir / "holdout.parquet"),
                "--json",
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["target"] == "price"


def test_write_schema_round_trip(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", "--target", "price"]) == 0
    house_prices(800, seed=4).to_csv(workdir / "train.csv", index=False)
    before = (workdir / "modelpilot.yaml").read_text(encoding="utf-8")
    assert load_project(workdir).features == []

    assert main(["data", "check", "train.csv", "--write-schema"]) == 0
    assert "wrote 9 features to" in _flat(capsys.readouterr().err)
    spec = load_project(workdir)
    assert [(f.name, f.type) for f in spec.features] == [(f.name, f.type) for f in HOUSE_FEATURES]
    assert spec.feature("condition").categories == ["excellent", "fair", "good", "poor"]
    assert spec.feature("lot_acres").nullable
    after = (workdir / "modelpilot.yaml").read_text(encoding="utf-8")
    comments = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(line in after.splitlines() for line in comments)

    # A second run reads the schema it wrote, and finds the data fits it.
    assert main(["data", "check", "train.csv", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["checks"][0]["summary"] == (
        "All 9 declared features are present and their values fit the declared types."
    )


def test_write_schema_keeps_what_a_person_declared(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project_dir)
    assert main(["data", "check", "train.csv", "--write-schema", "--json"]) == 0
    spec = load_project(project_dir)
    assert spec.feature("size_sqft").range == (200.0, 20000.0)
    assert spec.feature("size_sqft").description == "living area in square feet"
    assert spec.feature("location").categories == ["rural", "suburban", "urban"]


def test_the_console_script(tmp_path: Path) -> None:
    frame = house_prices(300, seed=5, conflicting_duplicates=1)
    frame.to_csv(tmp_path / "train.csv", index=False)
    script = Path(sys.executable).parent / "modelpilot"
    done = subprocess.run(
        [str(script), "data", "check", "train.csv", "--target", "price", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert (report["n_rows"], report["passed"]) == (301, False)
    assert done.stderr == ""


def test_a_project_file_is_found_above_the_working_directory(
    project_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project_dir / "data").mkdir()
    monkeypatch.chdir(project_dir / "data")
    pd.read_csv(project_dir / "train.csv").to_parquet(project_dir / "data" / "train.parquet")
    assert main(["data", "check", "train.parquet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["target"] == "price"
