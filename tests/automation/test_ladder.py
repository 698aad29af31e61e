"""The ladder: proposals from agreement, auto-apply, one rung down, audited, persisted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from automation_helpers import open_project

from fake_clock import FakeClock
from modelpilot.automation import Ladder, ReviewQueue, lower_degree
from modelpilot.errors import ModelpilotError
from modelpilot.project import Project
from modelpilot.spec import DEGREES, AutomationSettings
from modelpilot.store import PredictionRecord

STEPS = [
    {"from": "shadow", "to": "assist", "min_agreement": 0.8, "min_cases": 5},
    {"from": "assist", "to": "partial", "min_agreement": 0.9, "min_cases": 3},
]


def make_ladder(project: Project, clock: FakeClock, **settings: Any) -> tuple[Ladder, ReviewQueue]:
    spec = AutomationSettings.model_validate({"degree": "shadow", "steps": STEPS, **settings})
    queue = ReviewQueue(project.engine, project.prediction_log, clock=clock)
    ladder = Ladder(project.engine, queue, spec, audit=project.registry.audit, clock=clock)
    return ladder, queue


@pytest.fixture
def project(project_dir: Path) -> Project:
    return open_project(project_dir)


def decide(queue: ReviewQueue, degree: str, outcomes: list[bool], *, start: int = 0) -> None:
    """Queue one item per outcome at ``degree`` and decide it agreeing or not."""
    ids = [f"{degree}-{start + i}" for i in range(len(outcomes))]
    queue.log.append(
        [PredictionRecord(pid, 0.0, "houses", 1, {"x": 1}, {"prediction": 100.0}) for pid in ids]
    )
    items = queue.add("houses", "houses", 1, degree, [(p, {"x": 1}, 100.0, 0.5) for p in ids])
    for item, agree in zip(items, outcomes, strict=True):
        queue.decide(item.id, 100.0 if agree else 500.0, actor="ann")


def moves(project: Project) -> list[tuple[str, str, str, str]]:
    """(actor, action, from, to) of the automation entries in the audit log, oldest first."""
    return [
        (e["actor"], e["action"], e["details"]["from"], e["details"]["to"])
        for e in reversed(project.registry.audit_entries())
        if e["action"].startswith("automation.")
    ]


def test_lower_degree_goes_one_rung_down_and_stops_at_human() -> None:
    assert [lower_degree(d) for d in DEGREES] == ["human", *DEGREES[:-1]]


def test_the_first_state_is_the_project_files_or_the_default(project: Project) -> None:
    ladder, _ = make_ladder(project, FakeClock())
    state = ladder.state("houses")
    assert (state.degree, state.updated_by, state.proposal) == ("shadow", "project file", None)
    assert ladder.state("other", default="assist").degree == "assist"
    assert ladder.state("other", default="full").degree == "assist"  # once set, it stays


def test_proposes_after_enough_agreeing_decisions_and_not_before(project: Project) -> None:
    ladder, queue = make_ladder(project, FakeClock())
    decide(queue, "shadow", [True, True, True, False])
    assert ladder.evaluate("houses").proposal is None  # 4 cases, 5 needed
    decide(queue, "shadow", [False], start=4)
    assert ladder.evaluate("houses").proposal is None  # 5 cases, but 60 % < 80 %
    decide(queue, "assist", [True] * 10)  # agreement at another degree does not count
    assert ladder.evaluate("houses").proposal is None
    assert moves(project) == []

    decide(queue, "shadow", [True] * 5, start=5)  # 8 of 10: 80 %
    state = ladder.evaluate("houses")
    assert (state.degree, state.proposal) == ("shadow", "assist")
    assert state.proposal_reason == ("agreement 80.0% over 10 cases at shadow (needs 80% over 5)")
    ladder.evaluate("houses")  # proposing again is not a new move
    assert moves(project) == [("ladder", "automation.propose", "shadow", "assist")]


def test_propose_leaves_the_degree_to_an_admin(project: Project) -> None:
    ladder, queue = make_ladder(project, FakeClock())
    decide(queue, "shadow", [True] * 5)
    proposal = ladder.evaluate("houses")
    applied = ladder.set("houses", proposal.proposal or "", actor="admin", reason="looks good")
    assert (applied.degree, applied.proposal, applied.updated_by) == ("assist", None, "admin")
    assert moves(project)[-1] == ("admin", "automation.set", "shadow", "assist")


def test_auto_applies_the_next_degree(project: Project) -> None:
    clock = FakeClock()
    ladder, queue = make_ladder(project, clock, ladder="auto")
    decide(queue, "shadow", [True] * 5)
    clock.advance(5)
    state = ladder.evaluate("houses")
    assert (state.degree, state.proposal, state.updated_by) == ("assist", None, "ladder")
    assert state.updated_at == clock.now
    assert state.reason.startswith("agreement 100.0% over 5 cases at shadow")
    assert ladder.evaluate("houses").degree == "assist"  # no assist decisions yet
    decide(queue, "assist", [True] * 3)
    assert ladder.evaluate("houses").degree == "partial"
    assert ladder.evaluate("houses").degree == "partial"  # no step from partial
    assert moves(project) == [
        ("ladder", "automation.set", "shadow", "assist"),
        ("ladder", "automation.set", "assist", "partial"),
    ]


def test_ladder_off_never_proposes(project: Project) -> None:
    ladder, queue = make_ladder(project, FakeClock(), ladder="off")
    decide(queue, "shadow", [True] * 5)
    assert ladder.evaluate("houses").proposal is None
    assert moves(project) == []


def test_lower_moves_one_rung_down_and_stops_at_human(project: Project) -> None:
    ladder, _ = make_ladder(project, FakeClock())
    ladder.set("houses", "full", actor="admin", reason="trusted")
    reasons = []
    for expected in ["partial", "assist", "shadow", "human", "human"]:
        state = ladder.lower("houses", actor="alerts", reason="drift on size_sqft")
        assert state.degree == expected
        reasons.append(state.reason)
    assert set(reasons) == {"drift on size_sqft"}
    assert moves(project) == [
        ("admin", "automation.set", "shadow", "full"),
        ("alerts", "automation.set", "full", "partial"),
        ("alerts", "automation.set", "partial", "assist"),
        ("alerts", "automation.set", "assist", "shadow"),
        ("alerts", "automation.set", "shadow", "human"),
    ]  # lowering at human is not a move


def test_set_refuses_an_unknown_degree(project: Project) -> None:
    ladder, _ = make_ladder(project, FakeClock())
    with pytest.raises(ModelpilotError, match=r"degree must be one of human, .* got 'fully'"):
        ladder.set("houses", "fully", actor="admin", reason="typo")
    assert ladder.state("houses").degree == "shadow"


def test_the_degree_and_proposal_survive_a_restart(project_dir: Path) -> None:
    first = open_project(project_dir)
    ladder, queue = make_ladder(first, FakeClock())
    ladder.set("houses", "assist", actor="admin", reason="first week went well")
    decide(queue, "assist", [True] * 3)
    ladder.evaluate("houses")
    first.engine.dispose()

    again = open_project(project_dir)
    ladder, _ = make_ladder(again, FakeClock(), degree="full")  # the file's default is not used
    state = ladder.state("houses")
    assert (state.degree, state.proposal) == ("assist", "partial")
    assert (state.updated_by, state.reason) == ("admin", "first week went well")
    assert moves(again) == [
        ("admin", "automation.set", "shadow", "assist"),
        ("ladder", "automation.propose", "assist", "partial"),
    ]
