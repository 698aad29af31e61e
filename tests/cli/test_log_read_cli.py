"""Reading your own log: `modelpilot log export` and `log show`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from modelpilot.cli._app import main
from modelpilot.project import Project
from modelpilot.store import FeedbackItem, PredictionRecord

pytestmark = pytest.mark.usefixtures("clean_environ")

HOUR = 3600.0


@pytest.fixture
def logged(project_dir: Path) -> Path:
    """Predictions of houses v1 (3 h, 2 h and 1 h old) and v2 (now), two of them labelled
    with integer prices, and one shadow row."""
    project = Project.open(project_dir, environ={})
    now = time.time()
    rows = [
        ("a", now - 3 * HOUR, 1),
        ("b", now - 2 * HOUR, 1),
        ("c", now - 1 * HOUR, 1),
        ("d", now - 1.0, 2),
    ]
    try:
        log = project.prediction_log
        log.append(
            [
                PredictionRecord(
                    pid,
                    ts,
                    "houses",
                    version,
                    {"size_sqft": 1000.0 + ts % 7},
                    {"prediction": 250_000.5},
                    source="online",
                )
                for pid, ts, version in rows
            ]
        )
        log.append(
            [PredictionRecord("d", now - 1.0, "houses", 3, {"size_sqft": 1.0}, {"prediction": 0.0},
                              source="shadow")]
        )  # fmt: skip
        assert all(r.accepted for r in log.add_feedback([FeedbackItem("b", 412_000)]))
        assert all(r.accepted for r in log.add_feedback([FeedbackItem("d", 399_000)]))
    finally:
        project.engine.dispose()
    return project_dir


def _cli(capsys: pytest.CaptureFixture[str], directory: Path, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["-p", str(directory), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_export_with_labels_to_parquet_keeps_types(
    logged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = logged / "out.parquet"
    code, stdout, err = _cli(
        capsys, logged, "log", "export", "--since", "1d", "--deployment", "houses",
        "--with-labels", "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    assert "wrote 4 rows" in stdout
    frame = pd.read_parquet(out)
    assert frame["id"].tolist() == ["a", "b", "c", "d"]  # no shadow row
    assert isinstance(frame["ts"].dtype, pd.DatetimeTZDtype)
    assert str(frame["ts"].dt.tz) == "UTC"
    labels = frame.set_index("id")["label"]
    assert labels["b"] == 412_000 and pd.isna(labels["a"])
    assert pd.api.types.is_integer_dtype(frame["label"].dropna().astype("Int64"))
    assert isinstance(frame["label_ts"].dtype, pd.DatetimeTZDtype)
    assert {"size_sqft", "prediction"} <= set(frame.columns)


def test_export_filters_and_csv(logged: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = logged / "out.csv"
    export = ["log", "export", "-o", str(out)]
    assert _cli(capsys, logged, *export, "--since", "150m", "--until", "30m")[0] == 0
    assert pd.read_csv(out)["id"].tolist() == ["b", "c"]
    assert _cli(capsys, logged, *export, "--version", "2")[0] == 0
    assert pd.read_csv(out)["id"].tolist() == ["d"]
    assert _cli(capsys, logged, *export, "--limit", "2", "--labeled-only")[0] == 0
    assert pd.read_csv(out)[["id", "label"]].values.tolist() == [["d", 399_000]]
    assert _cli(capsys, logged, *export, "--source", "shadow")[0] == 0
    assert pd.read_csv(out)["version"].tolist() == [3]

    code, _, err = _cli(capsys, logged, *export, "--since", "yesterday")
    assert code == 2 and "expected an age such as 30m, 12h, 1d or 2w" in " ".join(err.split())
    code, _, err = _cli(capsys, logged, *export, "--deployment", "nope")
    assert code == 2 and "deployment 'nope' was not found" in err


def test_log_show_prints_the_newest_rows_with_labels(
    logged: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _cli(capsys, logged, "log", "show", "-n", "2")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "houses v1" in out and "houses v2" in out and "399000" in out
    assert "houses v3" not in out  # shadow rows only with --source shadow
    code, out, _ = _cli(capsys, logged, "log", "show", "-n", "3", "--json")
    assert [r["id"] for r in json.loads(out)] == ["b", "c", "d"]
    assert [r["label"] for r in json.loads(out)] == [412_000, None, 399_000]
