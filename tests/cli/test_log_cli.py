"""`modelpilot log stats|compact`: the prediction log's size, and merging its small segments."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from modelpilot.cli._app import main
from modelpilot.project import Project
from modelpilot.store import PredictionRecord

pytestmark = pytest.mark.usefixtures("clean_environ")


def _log_segments(directory: Path, n: int, *, age_s: float) -> list[str]:
    """``n`` one-row segments whose rows are ``age_s`` seconds old; their ids."""
    project = Project.open(directory, environ={})
    now = time.time() - age_s
    ids = [f"p{i:04d}" for i in range(n)]
    try:
        for i, pid in enumerate(ids):
            project.prediction_log.append(
                [
                    PredictionRecord(
                        pid, now + i * 1e-3, "houses", 1, {"x": float(i)}, {"prediction": i * 2.0}
                    )
                ]
            )
    finally:
        project.engine.dispose()
    return ids


def _cli(capsys: pytest.CaptureFixture[str], directory: Path, *args: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["-p", str(directory), *args])
    return code, capsys.readouterr().out


def test_compact_merges_old_segments_and_stats_show_it(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _log_segments(project_dir, 30, age_s=3600)
    code, out = _cli(capsys, project_dir, "log", "stats", "--json")
    assert code == 0
    stats = json.loads(out)
    assert (stats["rows"], stats["segments"], stats["rows_per_segment"]) == (30, 30, 1.0)
    assert stats["payload_bytes"] > 0
    code, out = _cli(capsys, project_dir, "log", "compact", "--target-rows", "20", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert (report["segments_before"], report["segments_after"]) == (30, 2)
    assert (report["segments_merged"], report["segments_written"]) == (30, 2)
    project = Project.open(project_dir, environ={})
    try:
        window = project.prediction_log.window(model="houses")
        assert window["id"].tolist() == old
        assert np.allclose(window["prediction"], np.arange(30) * 2.0)
        assert project.prediction_log.exists(old) == set(old)
    finally:
        project.engine.dispose()


def test_compact_leaves_recent_segments_alone(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _log_segments(project_dir, 5, age_s=5)
    code, out = _cli(capsys, project_dir, "log", "compact", "--older-than-s", "3600")
    assert code == 0
    text = " ".join(out.split())  # the console wraps long lines
    assert "0 segments merged into 0" in text
    assert "the log now has 5 segments for 5 rows" in text


def test_a_bad_target_is_a_usage_error(
    project_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["-p", str(project_dir), "log", "compact", "--target-rows", "1"])
    assert code == 2
    assert "--target-rows" in capsys.readouterr().err
