"""`modelpilot review` and `modelpilot automation`, in-process on a project's database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from automation_helpers import open_project

from fake_clock import FakeClock
from modelpilot.automation import Ladder, ReviewQueue
from modelpilot.store import PredictionRecord
from project_helpers import run_cli, write_project

SETTINGS = {
    "automation": {
        "degree": "shadow",
        "steps": [{"from": "shadow", "to": "assist", "min_agreement": 0.5, "min_cases": 2}],
    }
}


@pytest.fixture
def project_path(tmp_path: Path) -> Path:
    """A project with three deferred predictions of deployment `houses` (one in partial)."""
    directory = write_project(tmp_path / "project", settings=SETTINGS)
    project = open_project(directory)
    ids = ["p0", "p1", "p2"]
    project.prediction_log.append(
        [
            PredictionRecord(pid, 0.0, "houses", 1, {"size_sqft": 1000 + i}, {"prediction": 1.0})
            for i, pid in enumerate(ids)
        ]
    )
    clock = FakeClock()
    queue = ReviewQueue(project.engine, project.prediction_log, clock=clock)
    queue.add("houses", "houses", 1, "shadow", [("p0", {"size_sqft": 1000}, 400000.0, 0.9)])
    clock.advance(1)
    queue.add("houses", "houses", 1, "shadow", [("p1", {"size_sqft": 1001}, 410000.0, 0.9)])
    clock.advance(1)
    queue.add("houses", "houses", 1, "partial", [("p2", {"size_sqft": 1002}, 420000.0, 0.1)])
    project.engine.dispose()
    return directory


def cli(directory: Path, *args: str) -> int:
    return run_cli(["-p", str(directory), *args])


def test_review_next_decide_and_list(
    project_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(project_path, "review", "next", "--json") == 0
    first = json.loads(capsys.readouterr().out)
    assert first["prediction_id"] == "p0"
    assert first["suggestion"] is None  # shadow: the person decides unaided

    assert cli(project_path, "review", "next") == 0
    out = capsys.readouterr().out
    assert first["id"] in out and "size_sqft" in out and "suggestion" not in out
    assert f"modelpilot review decide {first['id']} VALUE" in out

    assert cli(project_path, "review", "decide", first["id"], "405000") == 0
    assert "agrees with the model" in capsys.readouterr().out
    assert cli(project_path, "review", "decide", first["id"], "1", "--json") == 2
    err = capsys.readouterr().err
    assert "already decided" in err and "the first decision stands" in err

    assert cli(project_path, "review", "list", "--status", "all", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert {r["prediction_id"]: r["status"] for r in listed["reviews"]} == {
        "p0": "decided",
        "p1": "pending",
        "p2": "pending",
    }
    assert listed["stats"]["pending"] == 2
    assert listed["stats"]["agreement"] == {"shadow": {"rate": 1.0, "cases": 1}}

    assert cli(project_path, "review", "list") == 0
    out = capsys.readouterr().out
    assert "pending 2" in out and "shadow: 100% of 1" in out

    labeled = open_project(project_path).prediction_log.labeled(model="houses")
    assert labeled.set_index("id")["label"].to_dict() == {"p0": 405000}


def test_review_next_shows_the_suggestion_in_partial(
    project_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(project_path, "review", "next", "--deployment", "nope") == 0
    assert "the review queue is empty" in capsys.readouterr().out
    for value in ("400000", "1"):  # decide the two shadow items
        assert cli(project_path, "review", "next", "--json") == 0
        item = json.loads(capsys.readouterr().out)
        assert cli(project_path, "review", "decide", item["id"], value) == 0
        capsys.readouterr()
    assert cli(project_path, "review", "next") == 0
    assert "model's suggestion: 420000.0 (confidence 0.10)" in capsys.readouterr().out


def test_deciding_an_unknown_review_exits_2(
    project_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(project_path, "review", "decide", "nope", "1") == 2
    assert "review 'nope' was not found" in capsys.readouterr().err


def test_automation_show_set_and_apply(
    project_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(project_path, "automation", "show", "houses", "--json") == 0
    state = json.loads(capsys.readouterr().out)
    assert (state["degree"], state["proposal"], state["review"]["pending"]) == ("shadow", None, 3)

    assert cli(project_path, "automation", "apply", "houses") == 2
    assert "houses has no proposal" in capsys.readouterr().err

    # Two agreeing shadow decisions meet the step (50 % over 2); the ladder proposes assist.
    project = open_project(project_path)
    queue = ReviewQueue(project.engine, project.prediction_log)
    for item, value in zip(queue.list()[:2], [400000.0, 410000.0], strict=True):
        queue.decide(item.id, value, actor="ann")
    ladder = Ladder(project.engine, queue, project.spec.automation, audit=project.registry.audit)
    assert ladder.evaluate("houses").proposal == "assist"
    project.engine.dispose()

    assert cli(project_path, "automation", "show", "houses") == 0
    out = capsys.readouterr().out
    assert "houses: shadow" in out
    assert "proposed: assist" in out and "modelpilot automation apply houses" in out
    assert "agreement at shadow: 100.0% of 2 cases" in out

    assert cli(project_path, "automation", "apply", "houses") == 0
    assert "houses: assist" in capsys.readouterr().out
    assert cli(project_path, "automation", "set", "houses", "partial", "--reason", "week 2") == 0
    assert "houses: partial" in capsys.readouterr().out
    assert cli(project_path, "automation", "set", "houses", "fully") == 2
    assert "degree must be one of" in capsys.readouterr().err

    assert cli(project_path, "automation", "show", "houses", "--json") == 0
    state = json.loads(capsys.readouterr().out)
    assert (state["degree"], state["proposal"], state["reason"]) == ("partial", None, "week 2")
    audit = open_project(project_path).registry.audit_entries()
    moves = [(e["details"]["from"], e["details"]["to"]) for e in reversed(audit)]
    assert moves == [("shadow", "assist"), ("shadow", "assist"), ("assist", "partial")]
    assert [e["action"] for e in reversed(audit)] == [
        "automation.propose",
        "automation.set",
        "automation.set",
    ]
    assert audit[1]["details"]["reason"].startswith("applied proposal: agreement 100.0%")
