"""Batch inputs are checked for freshness (age) and volume (rows vs the usual) before scoring."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from modelpilot.data import check_batch_input, count_rows
from modelpilot.spec import BatchCheckSettings
from project_helpers import register, run_cli, write_project

HOUR = 3600.0


def _csv(path: Path, rows: int, *, age_hours: float = 0.0, now: float | None = None) -> Path:
    pd.DataFrame({"size": range(rows)}).to_csv(path, index=False)
    if age_hours:
        stamp = (now if now is not None else path.stat().st_mtime) - age_hours * HOUR
        os.utime(path, (stamp, stamp))
    return path


# ---- the checks -------------------------------------------------------------------------------
def test_a_fresh_file_passes_and_volume_waits_for_history(tmp_path: Path) -> None:
    file = _csv(tmp_path / "in.csv", 10)
    now = file.stat().st_mtime + 2 * HOUR
    report = check_batch_input(file, BatchCheckSettings(), history=[120, 80], clock=lambda: now)
    assert report.rows == 10
    assert [(c.name, c.passed) for c in report.checks] == [("freshness", True), ("volume", None)]
    assert report.failed == []
    assert (
        "2 earlier successful run(s) of this model, the check needs 3" in report.checks[1].message
    )


def test_a_stale_file_fails_freshness_with_its_age(tmp_path: Path) -> None:
    now = 1_800_000_000.0
    file = _csv(tmp_path / "old.csv", 10, age_hours=30, now=now)
    report = check_batch_input(
        file, BatchCheckSettings(max_age_hours=24), history=[], clock=lambda: now
    )
    [failed] = report.failed
    assert failed.name == "freshness" and failed.value == 30 * HOUR
    assert failed.message.startswith(
        "old.csv was last modified 30.0 h ago, more than batch_checks.max_age_hours (24 h)"
    )
    unlimited = BatchCheckSettings(max_age_hours=None)
    assert check_batch_input(file, unlimited, history=[], clock=lambda: now).failed == []


@pytest.mark.parametrize(
    ("rows", "passed", "message"),
    [
        (49, False, "has 49 rows, fewer than 0.5x the usual 100 (median of the last 5"),
        (50, True, "50 rows, within 0.5x-2x the usual 100"),
        (200, True, "200 rows, within 0.5x-2x the usual 100"),
        (201, False, "has 201 rows, more than 2x the usual 100"),
        (0, False, "has 0 rows, fewer than 0.5x"),
    ],
)
def test_volume_is_judged_against_the_median_of_recent_runs(
    tmp_path: Path, rows: int, passed: bool, message: str
) -> None:
    file = _csv(tmp_path / "in.csv", 1)
    settings = BatchCheckSettings(history_runs=5)
    report = check_batch_input(file, settings, history=[100, 90, 5000, 100, 110, 10], rows=rows)
    volume = report.checks[1]
    assert volume.passed is passed
    assert message in volume.message  # the last 5 of 6 runs count: 10 is too old


def test_rows_are_counted_the_way_the_files_are_read(tmp_path: Path) -> None:
    frame = pd.DataFrame({"note": ["one line", "two\nlines", 'a "quote"'], "n": [1, 2, 3]})
    frame.to_csv(tmp_path / "notes.csv", index=False)
    frame.to_parquet(tmp_path / "notes.parquet")
    assert (tmp_path / "notes.csv").read_text().count("\n") == 5  # a naive count is wrong
    assert count_rows(tmp_path / "notes.csv") == count_rows(tmp_path / "notes.parquet") == 3


@pytest.mark.parametrize("bad", [(1.5, 2.0), (0.5, 0.9), (-0.1, 2.0)])
def test_a_volume_ratio_must_bracket_one(bad: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match=r"volume_ratio must be \[low, high\] with 0 <= low"):
        BatchCheckSettings(volume_ratio=bad)


# ---- `modelpilot score` -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def scored_before(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Path:
    """A project whose model scored three files of 100 listings: the usual volume is 100."""
    holdout = house_data[1]
    directory = write_project(tmp_path_factory.mktemp("batch") / "project")
    holdout.to_parquet(directory / "holdout.parquet")
    register(directory, house_model_file, production=True)
    for day in range(3):
        listings = directory / f"day{day}.csv"
        holdout.iloc[day * 100 : (day + 1) * 100].drop(columns="price").to_csv(
            listings, index=False
        )
        assert _score(directory, listings, directory / f"scored{day}.csv") == 0
    return directory


@pytest.fixture
def project(scored_before: Path, tmp_path: Path) -> Path:
    return shutil.copytree(scored_before, tmp_path / "project")


def _score(directory: Path, listings: Path, output: Path, *options: str) -> int:
    return run_cli(["-p", str(directory), "score", str(listings), "-o", str(output), *options])


def _listings(project: Path, house_data: tuple[pd.DataFrame, pd.DataFrame], rows: int) -> Path:
    path = project / f"listings-{rows}.csv"
    house_data[1].iloc[:rows].drop(columns="price").to_csv(path, index=False)
    return path


def test_an_unusually_small_file_is_not_scored(
    project: Path, house_data: tuple[pd.DataFrame, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    listings, output = _listings(project, house_data, 20), project / "out.csv"
    assert _score(project, listings, output) == 2
    err = capsys.readouterr().err
    assert "FAIL  volume: listings-20.csv has 20 rows, fewer than 0.5x the usual 100" in err
    assert "was not scored" in err and "Pass --skip-checks to score it anyway" in err
    assert not output.exists()

    assert _score(project, listings, output, "--skip-checks") == 0
    assert "scoring anyway" in capsys.readouterr().err
    assert len(pd.read_csv(output)) == 20


def test_a_stale_file_is_not_scored(
    project: Path, house_data: tuple[pd.DataFrame, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    listings, output = _listings(project, house_data, 100), project / "out.csv"
    stamp = listings.stat().st_mtime - 48 * HOUR
    os.utime(listings, (stamp, stamp))
    assert _score(project, listings, output) == 2
    err = capsys.readouterr().err
    assert "FAIL  freshness: listings-100.csv was last modified 48.0 h ago" in err
    assert "pass  volume: 100 rows, within 0.5x-2x the usual 100" in err
    assert not output.exists()


def test_a_usual_file_scores_and_reports_its_checks_in_json(
    project: Path, house_data: tuple[pd.DataFrame, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    listings, output = _listings(project, house_data, 120), project / "out.parquet"
    assert _score(project, listings, output, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["scored"] == 120
    checks = summary["input_checks"]
    assert checks["passed"] is True and checks["rows"] == 120
    assert [c["check"] for c in checks["checks"]] == ["freshness", "volume"]


def test_non_blocking_checks_report_and_score(
    project: Path, house_data: tuple[pd.DataFrame, pd.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    write_project(project, settings={"batch_checks": {"blocking": False}})
    listings, output = _listings(project, house_data, 10), project / "out.csv"
    assert _score(project, listings, output) == 0
    err = capsys.readouterr().err
    assert "FAIL  volume: listings-10.csv has 10 rows" in err and "scoring anyway" in err
    assert len(pd.read_csv(output)) == 10
