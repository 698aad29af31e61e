"""Gates ranked by evidence, on the controller with a fake clock: guards veto, labels rank above
proxies, proxies decide while labels are missing or inconclusive; every decision says which
evidence won, in the rollout's history, its status and the audit log.

The candidate answers ``offset`` above the primary on the same requests; the labels say where
the truth is (``truth_above``, above the primary's answer): at the candidate's answers, the
labels favour the candidate; at the primary's, the primary.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rollout_helpers import (
    ANALYSIS_S,
    DEPLOYMENT,
    STEP_S,
    ControllerHarness,
    ControllerVersions,
    Traffic,
    assert_serving,
    feed,
    open_controller,
)

from fake_clock import FakeClock
from modelpilot.rollout import GATE_KINDS, GateResult, decide
from modelpilot.store import FeedbackItem

PRICE_GAP = 60_000.0  # a candidate this far above the primary agrees with it on few requests


@pytest.fixture
def h(project_copy: Path, clock: FakeClock) -> Iterator[ControllerHarness]:
    running = open_controller(project_copy, clock)
    yield running
    running.close()


class Labeller:
    """Labels every logged answer not yet labelled: the primary's answer to the same request
    plus ``truth_above``, plus noise."""

    def __init__(self, h: ControllerHarness, candidate: int, offset: float) -> None:
        self.h, self.candidate, self.offset = h, candidate, offset
        self.done: set[str] = set()
        self.rng = np.random.default_rng(7)

    def __call__(self, truth_above: float) -> None:
        logged = self.h.project.prediction_log.window(model=DEPLOYMENT, source="online")
        logged = logged[~logged["id"].isin(self.done)]
        base = logged["prediction"] - np.where(
            logged["version"] == self.candidate, self.offset, 0.0
        )
        truth = base + truth_above + self.rng.normal(0, 5_000, len(logged))
        results = self.h.project.prediction_log.add_feedback(
            [FeedbackItem(pid, float(y)) for pid, y in zip(logged["id"], truth, strict=True)]
        )
        assert all(r.accepted for r in results)
        self.done.update(logged["id"])


def run_canary(
    h: ControllerHarness,
    v: ControllerVersions,
    traffic: Traffic,
    *,
    truth_above: float | None,
    expected: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Deploy the candidate as a canary and run it step by step (traffic, labels, the step's
    ten minutes) until it ends; returns every event."""
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice", expected=expected)
    labeller = Labeller(h, v.candidate, traffic.offset)
    events: list[dict[str, Any]] = []
    for step in range(8):
        feed(
            h.project,
            h.clock() + 1,
            candidate=v.candidate,
            primary=v.primary,
            traffic=traffic,
            seed=step,
        )
        if truth_above is not None:
            labeller(truth_above)
        for _ in range(2):  # an analysis, then the step is over
            h.clock.advance(ANALYSIS_S if _ == 0 else STEP_S)
            events += h.controller.tick()
            if h.controller.status(DEPLOYMENT)["rollout"] is None:
                return events
    pytest.fail(f"the canary did not end: {events}")


def decisions(h: ControllerHarness) -> list[dict[str, Any]]:
    """Every analysis's decision of the deployment's latest rollout, oldest first."""
    record = h.controller.store.history(DEPLOYMENT, limit=1)[0]
    return [entry["decision"] for entry in record.history if "decision" in entry]


def test_labels_that_show_the_candidate_better_overrule_a_failing_agreement(
    h: ControllerHarness, versions: ControllerVersions
) -> None:
    v = versions
    events = run_canary(h, v, Traffic(offset=PRICE_GAP), truth_above=PRICE_GAP)

    assert [e["event"] for e in events] == ["step", "step", "step", "promoted"]
    assert_serving(h, v.candidate)
    made = decisions(h)
    assert {d["evidence"] for d in made} == {"labels"}
    assert all("agreement" in d["overruled"] for d in made)
    assert "a proxy cannot veto labels" in made[-1]["reason"]
    (promote,) = h.audit("promote")
    assert promote["details"]["evidence"] == "labels"
    steps = h.audit("canary.step")
    assert [s["details"]["evidence"] for s in steps] == ["labels"] * 3


def test_labels_that_show_the_candidate_worse_roll_back_an_agreeing_candidate_at_once(
    h: ControllerHarness, versions: ControllerVersions
) -> None:
    v = versions
    close = Traffic(offset=20_000.0)  # within 10% of the primary: agreement passes
    events = run_canary(h, v, close, truth_above=0.0)

    assert [e["event"] for e in events] == ["rolled_back"]
    assert_serving(h, v.primary)
    (decision,) = decisions(h)
    assert (decision["outcome"], decision["evidence"], decision["immediate"]) == (
        "fail",
        "labels",
        True,
    )
    assert "agreement passed, but proxies rank below labels" in decision["reason"]
    (rollback,) = h.audit("rollback")
    assert rollback["details"]["evidence"] == "labels"
    finished = h.controller.status(DEPLOYMENT)["recent"][0]
    assert finished["reason"].startswith("gates failed: key_metric failed")


@pytest.mark.parametrize(
    ("truth_above", "labels_say"),
    [(PRICE_GAP / 2, "labels inconclusive"), (None, "labels missing (no labels yet)")],
    ids=["inconclusive", "missing"],
)
def test_without_conclusive_labels_the_proxies_decide_as_before(
    h: ControllerHarness,
    versions: ControllerVersions,
    truth_above: float | None,
    labels_say: str,
) -> None:
    v = versions
    events = run_canary(h, v, Traffic(offset=PRICE_GAP), truth_above=truth_above)

    assert [e["event"] for e in events] == ["gate_failed", "rolled_back"]  # failure_limit 2
    assert_serving(h, v.primary)
    made = decisions(h)
    assert [d["evidence"] for d in made] == ["proxies", "proxies"]
    assert "agreement failed (share within 10%" in made[-1]["reason"]
    assert f"{labels_say}" in made[-1]["reason"]
    assert "so the proxies decide" in made[-1]["reason"]


def test_a_guard_vetoes_a_candidate_the_labels_favour(
    h: ControllerHarness, versions: ControllerVersions
) -> None:
    v = versions
    broken = Traffic(offset=PRICE_GAP, error_share=0.3)
    events = run_canary(h, v, broken, truth_above=PRICE_GAP)

    assert events[-1]["event"] == "rolled_back"
    assert {d["evidence"] for d in decisions(h)} == {"guards"}
    assert "a guard vetoes whatever else is known" in events[-1]["reason"]


def test_a_retrained_candidate_is_judged_against_the_agreement_measured_offline(
    h: ControllerHarness, versions: ControllerVersions
) -> None:
    v = versions
    # Offline, on 400 holdout rows, the retrained model agreed with production on 2% of them
    # (60,000 is within 10% only of prices above 600,000) and shifted by a KS of 0.2.
    measured = {"rows": 400, "source": "retrain run 7"}
    expected = {
        "agreement": {"value": 0.02, **measured},
        "prediction_shift": {"value": 0.2, **measured},
    }
    events = run_canary(h, v, Traffic(offset=PRICE_GAP), truth_above=None, expected=expected)

    assert [e["event"] for e in events] == ["step", "step", "step", "promoted"]
    last = h.controller.store.history(DEPLOYMENT, limit=1)[0].history[-1]
    gates = {g["metric"]: g for g in last["gates"]}
    assert gates["agreement"]["status"] == "pass"
    assert gates["agreement"]["value"] < 0.8  # below the gate's threshold for replacements...
    assert gates["agreement"]["threshold"] < 0.02  # ...judged against the expectation
    assert "expected from retrain run 7" in gates["agreement"]["detail"]
    assert decisions(h)[-1]["evidence"] == "proxies"


def test_a_deploy_with_an_expectation_shows_it_in_the_status(
    h: ControllerHarness, versions: ControllerVersions
) -> None:
    expected = {"agreement": {"value": 0.4, "rows": 300, "source": "retrain run 2"}}
    h.controller.deploy(
        DEPLOYMENT, versions.candidate, "canary", actor="retrain", expected=expected
    )
    assert h.controller.status(DEPLOYMENT)["rollout"]["expected"] == expected


# ---- the ranking alone -------------------------------------------------------------------------
def result(metric: str, status: str, evidence: str | None = None) -> GateResult:
    return GateResult(metric, status, 0.5, 0.1, 100, "detail", GATE_KINDS[metric], evidence)


@pytest.mark.parametrize(
    ("labels", "proxy", "guard", "expected"),
    [
        (("pass", "better"), "fail", "pass", ("pass", "labels", ["agreement"])),
        (("pass", "better"), "insufficient", "pass", ("pass", "labels", [])),
        (("pass", "better"), "fail", "insufficient", ("wait", "labels", ["agreement"])),
        (("pass", "better"), "pass", "fail", ("fail", "guards", [])),
        (("fail", "worse"), "pass", "pass", ("fail", "labels", [])),
        (("fail", "misses_target"), "pass", "pass", ("fail", "labels", [])),
        (("pass", "inconclusive"), "fail", "pass", ("fail", "proxies", [])),
        (("pass", "inconclusive"), "pass", "pass", ("pass", "proxies", [])),
        (("insufficient", None), "fail", "pass", ("fail", "proxies", [])),
        (("insufficient", None), "insufficient", "pass", ("wait", "none", [])),
        (None, "pass", "pass", ("pass", "proxies", [])),
    ],
)
def test_the_ranking(
    labels: tuple[str, str | None] | None,
    proxy: str,
    guard: str,
    expected: tuple[str, str, list[str]],
) -> None:
    results = [result("error_rate", guard), result("agreement", proxy)]
    if labels is not None:
        results.append(result("key_metric", labels[0], labels[1]))
    decision = decide(results)
    assert (decision.outcome, decision.evidence, decision.overruled) == expected
    assert decision.immediate == (labels is not None and labels[1] == "worse")
