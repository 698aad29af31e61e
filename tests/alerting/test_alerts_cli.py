"""`modelpilot alerts` and `modelpilot monitor --once`, from the database, without a server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from alerting_helpers import DEPLOYMENT, feed

from fake_clock import FakeClock
from modelpilot.alerting import AlertEngine, AlertStore
from modelpilot.cli._app import console as cli_console
from modelpilot.cli._app import main
from modelpilot.monitoring import Point, TimeSeriesStore
from modelpilot.project import Project
from modelpilot.spec import AlertRuleSpec

Run = Callable[..., tuple[int, str, str]]


def rows(out: str) -> list[list[str]]:
    """The cells of the rich tables' rows in ``out``."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in out.splitlines()
        if line.startswith("│")
    ]


@pytest.fixture
def run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, project: Project
) -> Run:
    """``modelpilot -p PROJECT ARGS`` in this process: (exit code, stdout, stderr)."""
    # Wide enough that rich does not wrap the tables. rich reads COLUMNS only when a console is
    # made, and the CLI's console may already exist: set its width too.
    monkeypatch.setenv("COLUMNS", "220")
    monkeypatch.setattr(cli_console, "width", 220)

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["-p", str(project.directory), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def alerts(project: Project) -> None:
    """A firing, a pending and a resolved alert in the project's database."""
    clock = FakeClock(time.time() - 600)
    rules = [
        AlertRuleSpec(name="slow", metric="latency_p99_ms", threshold=100, window_s=10),
        AlertRuleSpec(
            name="size_missing",
            metric="missing_rate",
            threshold=0.1,
            window_s=10,
            for_s=300,
            severity="critical",
        ),
        AlertRuleSpec(name="errors", metric="error_rate", threshold=0.05, window_s=10),
    ]
    engine = AlertEngine(rules, store=AlertStore(project.engine), clock=clock)
    feed(engine, clock, "error_rate", [0.2, 0.0])
    feed(engine, clock, "latency_p99_ms", [250.0])
    feed(engine, clock, "missing_rate", [0.4], labels="feature=size_sqft")


def test_no_alerts(run: Run) -> None:
    code, out, err = run("alerts")
    assert (code, err) == (0, "")
    assert out.strip() == "no active alerts"


@pytest.mark.usefixtures("alerts")
def test_alerts_lists_the_active_ones_firing_first(run: Run) -> None:
    code, out, err = run("alerts")
    assert (code, err) == (0, "")
    assert "2 active alert(s)" in out
    slow, missing = rows(out)
    assert slow[:7] == ["firing", "warning", "slow", DEPLOYMENT, "-", "250", "> 100"]
    assert missing[:7] == [
        "pending",
        "critical",
        "size_missing",
        DEPLOYMENT,
        "feature=size_sqft",
        "0.4",
        "> 0.1",
    ]
    assert missing[8] == "-"  # not fired yet
    assert "errors" not in out  # resolved: only with --all


@pytest.mark.usefixtures("alerts")
def test_alerts_all_adds_the_resolved_ones(run: Run) -> None:
    code, out, _ = run("alerts", "--all")
    assert code == 0
    assert "1 resolved alert(s)" in out
    assert [row[2] for row in rows(out)] == ["slow", "size_missing", "errors"]
    assert rows(out)[-1][:3] == ["resolved", "warning", "errors"]


@pytest.mark.usefixtures("alerts")
def test_alerts_json_is_the_apis_shape(run: Run) -> None:
    code, out, err = run("alerts", "--json")
    assert (code, err) == (0, "")
    body = json.loads(out)
    assert list(body) == ["active"]
    slow, missing = body["active"]
    assert (slow["rule"], slow["state"], slow["value"], slow["threshold"]) == (
        "slow",
        "firing",
        250.0,
        100.0,
    )
    assert (missing["labels"], missing["fired_at"]) == ({"feature": "size_sqft"}, None)
    for key in ("deployment", "severity", "started_at", "resolved_at", "metric", "comparison"):
        assert key in slow
    code, out, _ = run("alerts", "--json", "--all")
    (resolved,) = json.loads(out)["recent"]
    assert (resolved["rule"], resolved["state"]) == ("errors", "resolved")
    assert resolved["resolved_at"] > resolved["fired_at"]


def write_measurements(project: Project) -> None:
    now = time.time()
    TimeSeriesStore(project.engine).write(
        [
            Point("request_rate", DEPLOYMENT, 12.5, now - 5),
            Point("error_rate", DEPLOYMENT, 0.02, now - 5),
            Point("latency_p50_ms", DEPLOYMENT, 4.25, now - 5),
            Point("latency_p99_ms", DEPLOYMENT, 18.7, now - 5),
            Point("drift_share", DEPLOYMENT, 0.3, now - 30),
            Point("key_metric", DEPLOYMENT, 31000.0, now - 5, "metric=mae"),
            Point("key_metric", DEPLOYMENT, 0.91, now - 5, "metric=r2"),
            Point("log_lag_seconds", "", 0.4, now - 5),
            Point("memory_rss_bytes", "", 300 * 2**20, now - 5),
            Point("request_rate", "flats", 1.0, now - 5),
        ]
    )


@pytest.mark.usefixtures("alerts")
def test_monitor_once_prints_one_frame_of_measurements_and_alerts(
    run: Run, project: Project
) -> None:
    write_measurements(project)
    code, out, err = run("monitor", "--once")
    assert (code, err) == (0, "")
    table = {row[0]: row for row in rows(out)}
    assert table[DEPLOYMENT][1:6] == ["12.50", "2.00%", "4.2", "18.7", "30%"]
    assert table[DEPLOYMENT][6] == "mae=31000 (mae <= 25000), r2=0.91 (r2 >= 0.8)"
    assert table["flats"][1:3] == ["1.00", "-"]
    assert "log lag 0.4s" in out and "memory 300 MiB" in out
    assert "2 active alert(s)" in out and "size_missing" in out


def test_monitor_once_for_one_deployment(run: Run, project: Project) -> None:
    write_measurements(project)
    code, out, _ = run("monitor", "--once", "--deployment", "flats")
    assert code == 0
    assert "flats" in out and "12.50" not in out
    assert "no active alerts" in out


def test_monitor_without_data_says_what_to_check(run: Run) -> None:
    code, out, _ = run("monitor", "--once")
    assert code == 0
    assert "no measurements in the last hour: is `modelpilot serve` running" in out


def test_monitor_of_an_unknown_deployment_names_the_known_ones(run: Run) -> None:
    code, _, err = run("monitor", "--once", "--deployment", "nope")
    assert code == 2
    assert "deployment 'nope' was not found; known deployments: houses" in " ".join(err.split())


def test_alerts_outside_a_project_fails_with_a_hint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clean_environ: None
) -> None:
    code = main(["-p", str(tmp_path / "missing"), "alerts"])
    assert code == 2
    assert "modelpilot.yaml" in capsys.readouterr().err
