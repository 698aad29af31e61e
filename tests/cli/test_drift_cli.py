"""`modelpilot drift`: files, --model profiles, --window of the log, outputs and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from modelpilot.cli._app import main
from modelpilot.datasets import house_prices
from modelpilot.project import Project
from modelpilot.store import PredictionRecord, new_ids

pytestmark = pytest.mark.usefixtures("clean_environ")

Run = Callable[..., tuple[int, str, str]]
SHIFTED = ["size_sqft", "bedrooms", "bathrooms"]


def _invoke(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    return lambda *args: _invoke(capsys, *args)


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Reference, healthy and drifted files in a directory without a project file."""
    monkeypatch.chdir(tmp_path)
    out = {
        "train": tmp_path / "train.csv",
        "same": tmp_path / "same.parquet",
        "drifted": tmp_path / "drifted.csv",
    }
    house_prices(2400, seed=7).to_csv(out["train"], index=False)
    house_prices(1500, seed=9).to_parquet(out["same"])
    house_prices(1500, seed=8, size_shift=0.4).to_csv(out["drifted"], index=False)
    return out


def test_two_files_without_a_project_infer_the_types(run: Run, files: dict[str, Path]) -> None:
    code, out, err = run("drift", files["train"], files["same"])
    assert (code, err) == (0, "")
    assert "no dataset drift: 0 of 10 features drifted" in out  # the price column too
    for name, method in (("size_sqft", "wasserstein"), ("location", "jensen_shannon")):
        assert any(line.split()[:2] == [name, method] for line in out.splitlines()), out


def test_dataset_drift_exits_1(run: Run, files: dict[str, Path]) -> None:
    # Without a project every column is a feature: the price follows the size, so it drifts too.
    code, out, _ = run("drift", files["train"], files["drifted"])
    assert code == 0 and "4 of 10 features drifted (40%; threshold 50%" in out
    code, out, _ = run("drift", files["train"], files["drifted"], "--dataset-threshold", "0.4")
    assert code == 1 and "dataset drift: 4 of 10" in out


def test_json_output(run: Run, files: dict[str, Path]) -> None:
    code, out, _ = run(
        "drift", files["train"], files["drifted"], "--json", "--dataset-threshold", "0.25"
    )
    data = json.loads(out)
    assert code == 1 and data["dataset_drifted"] is True
    assert data["drifted_features"] == [*SHIFTED, "price"]
    size = data["features"][0]
    assert {"method", "statistic", "p_value", "threshold", "drifted", "summary"} <= set(size)


def test_method_and_correction_options(run: Run, files: dict[str, Path]) -> None:
    code, out, _ = run(
        "drift",
        files["train"],
        files["drifted"],
        "--method",
        "size_sqft=ks",
        "--method",
        "location=chi2",
        "--correction",
        "none",
        "--feature",
        "size_sqft",
        "--feature",
        "location",
    )
    assert code == 1  # 1 of 2 features drifted: the share reaches 50%
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["size_sqft"][1] == "ks" and rows["size_sqft"][-1] == "yes"
    assert rows["location"][1] == "chi_square"
    assert "p-value" in out and "correction none" in out


def test_html_report(run: Run, files: dict[str, Path], tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    code, out, _ = run("drift", files["train"], files["drifted"], "--html", page)
    assert code == 0 and f"wrote {page}" in out
    text = page.read_text(encoding="utf-8")
    assert text.count("<svg") == 10 and "<script" not in text
    assert "size_sqft — drifted" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "{same}"], "file 'missing.csv' was not found"),
        (["{train}"], "expected REFERENCE and CURRENT files, but got 1 path"),
        (["--window", "1h"], "expected one file, REFERENCE with --window, but got 0 path"),
        (
            ["{train}", "{same}", "--method", "size=ks"],
            "methods names feature 'size', which is not compared",
        ),
        (["{train}", "{same}", "--method", "size_sqft=median"], "unknown drift method 'median'"),
        (["{train}", "{same}", "--method", "size_sqft"], "is not FEATURE=METHOD"),
        (["{train}", "{same}", "--method", "location=ks"], "'ks' works on numeric features"),
        (["{train}", "{same}", "--correction", "holm"], "correction must be one of bh"),
        (["{train}", "--window", "1x"], "--window '1x' is not a duration"),
        (["{train}", "notes.txt"], "unsupported file type '.txt'"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    run: Run, files: dict[str, Path], args: list[str], message: str
) -> None:
    (files["train"].parent / "notes.txt").write_text("x", encoding="utf-8")
    code, out, err = run("drift", *[a.format(**files) for a in args])
    assert code == 2, out
    assert message in " ".join(err.split())


# ---- with a project: schema, registered profiles, the prediction log ---------------------------
@pytest.fixture
def project(project_dir: Path, run: Run, house_model_file: Path) -> Path:
    """The test project with v1 registered (profile from train.csv) and in production."""
    code, _, err = run(
        "-p",
        project_dir,
        "register",
        house_model_file,
        "--data",
        project_dir / "train.csv",
        "--eval",
        project_dir / "holdout.parquet",
    )
    assert code == 0, err
    code, _, err = run("-p", project_dir, "alias", "set", "houses", "production", "1", "--force")
    assert code == 0, err
    return project_dir


def _log(directory: Path, frame: pd.DataFrame, *, age_seconds: float) -> None:
    log = Project.open(directory).prediction_log
    inputs = frame.drop(columns="price").to_dict("records")
    now = time.time()
    log.append(
        [
            PredictionRecord(
                id=i,
                ts=now - age_seconds,
                model="houses",
                version=1,
                inputs=row,
                outputs={"prediction": 1.0},
            )
            for i, row in zip(new_ids(len(inputs)), inputs, strict=True)
        ]
    )


def test_project_schema_decides_features_and_types(run: Run, project_dir: Path) -> None:
    house_prices(800, seed=3).to_csv(project_dir / "current.csv", index=False)
    code, out, _ = run(
        "-p", project_dir, "drift", project_dir / "train.csv", project_dir / "current.csv", "--json"
    )
    data = json.loads(out)
    kinds = {f["name"]: f["kind"] for f in data["features"]}
    assert code == 0 and "price" not in kinds  # the target is not a feature
    assert kinds["has_garage"] == "categorical" and kinds["bedrooms"] == "numeric"


def test_model_profile_as_reference(run: Run, project: Path) -> None:
    house_prices(1500, seed=8, size_shift=0.4).to_csv(project / "drifted.csv", index=False)
    for engine in ("memory", "stream"):  # the streaming engine reaches the same verdicts
        code, out, _ = run(
            "-p",
            project,
            "drift",
            "--model",
            "houses@production",
            project / "drifted.csv",
            "--json",
            "--dataset-threshold",
            "0.3",
            "--engine",
            engine,
        )
        data = json.loads(out)
        assert code == 1 and (data["engine"], data["reference_source"]) == (engine, "profile")
        assert data["drifted_features"] == SHIFTED
    code, _, err = run(
        "-p",
        project,
        "drift",
        "--model",
        "houses@production",
        project / "drifted.csv",
        "--domain-classifier",
    )
    assert code == 2 and "needs the raw reference data" in err


def test_window_of_the_prediction_log_as_current(run: Run, project: Path) -> None:
    _log(project, house_prices(900, seed=8, size_shift=0.4), age_seconds=60)
    _log(project, house_prices(900, seed=5), age_seconds=3 * 3600)  # outside the window
    code, out, _ = run("-p", project, "drift", project / "train.csv", "--window", "30m", "--json")
    data = json.loads(out)
    assert code == 0 and data["drifted_features"] == SHIFTED
    assert data["features"][0]["n_current"] == 900
    code, out, _ = run(
        "-p",
        project,
        "drift",
        "--model",
        "houses@production",
        "--window",
        "1h",
        "--dataset-threshold",
        "0.3",
    )
    assert code == 1 and "dataset drift: 3 of 9 features drifted" in out


def test_an_empty_window_says_so(run: Run, project: Path) -> None:
    code, _, err = run("-p", project, "drift", "--model", "houses@production", "--window", "2d")
    assert code == 2
    assert "no predictions of model 'houses' were logged in the last 2d" in err


def test_console_script(files: dict[str, Path]) -> None:
    executable = Path(sys.executable).with_name("modelpilot")
    done = subprocess.run(
        [
            str(executable),
            "drift",
            str(files["train"]),
            str(files["drifted"]),
            "--json",
            "--dataset-threshold",
            "0.3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=files["train"].parent,
    )
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["drifted_features"] == [*SHIFTED, "price"]


def test_stream_engine_on_files_and_globs(run: Run, files: dict[str, Path], tmp_path: Path) -> None:
    memory = json.loads(run("drift", files["train"], files["drifted"], "--json")[1])
    # The current side as a directory of Parquet parts, read batch by batch.
    parts = tmp_path / "current"
    parts.mkdir()
    drifted = pd.read_csv(files["drifted"])
    for i in range(3):
        drifted.iloc[i * 500 : (i + 1) * 500].to_parquet(parts / f"part-{i}.parquet")
    code, out, err = run("drift", files["train"], parts, "--engine", "stream", "--json")
    data = json.loads(out)
    assert (code, err) == (0, "") and data["engine"] == "stream"
    # Both sides are small, so every statistic is exact: the same figures as in memory.
    assert [f["statistic"] for f in data["features"]] == [
        f["statistic"] for f in memory["features"]
    ]
    assert all(f["exact"] is True and f["error_bound"] == 0.0 for f in data["features"])
    code, out, _ = run(
        "drift", files["train"], str(parts / "*.parquet"), "--engine", "stream", "--json"
    )
    assert code == 0 and json.loads(out)["drifted_features"] == memory["drifted_features"]
    code, out, _ = run("drift", files["train"], files["drifted"], "--engine", "stream")
    assert code == 0 and "± bound" in out and "exact" in out
    code, _, err = run(
        "drift", files["train"], files["drifted"], "--engine", "stream", "--domain-classifier"
    )
    assert code == 2 and "--window and --domain-classifier need the in-memory engine" in err
