"""Every rollout strategy through the same checks, as river runs every detector: each one is
found by its name, deploys a candidate from the same starting point on a fake clock, routes
what it says it routes, and an admin's rollback always brings the primary back."""

from __future__ import annotations

from typing import get_args

import pytest
from rollout_helpers import DEPLOYMENT, ControllerHarness, ControllerVersions, assert_serving

from modelpilot.rollout import STRATEGIES, strategy_named
from modelpilot.spec import RetrainSettings


@pytest.mark.parametrize("name", STRATEGIES)
def test_each_strategy_is_found_by_its_own_name(name: str) -> None:
    assert strategy_named(name).name == name


@pytest.mark.parametrize("name", STRATEGIES)
def test_each_strategy_deploys_routes_and_rolls_back(
    harness: ControllerHarness, versions: ControllerVersions, name: str
) -> None:
    controller = harness.controller
    status = controller.deploy(
        DEPLOYMENT, versions.candidate, name, actor="alice", force=name == "direct"
    )
    strategy = strategy_named(name)
    served = {int(v) for v in harness.routing()["traffic"]}
    if name == "direct":  # no rollout: the candidate serves everything at once
        assert status["rollout"] is None and served == {versions.candidate}
    else:
        assert status["rollout"]["strategy"] == name
        active = controller.store.active(DEPLOYMENT)
        assert active is not None
        assert strategy.mirrors(active) == (harness.routing()["kind"] == "shadow")
        # Everything but a blue-green switch starts with the primary still answering.
        expected = versions.candidate if name == "blue-green" else versions.primary
        assert expected in served
    controller.rollback(DEPLOYMENT, actor="alice", reason="conformance")
    assert_serving(harness, versions.primary)


def test_the_strategies_a_retrain_may_deploy_with_are_rollout_strategies() -> None:
    # The project file's schema (spec) lists them so a typo fails when the file is read;
    # the rollout stage, which the spec cannot import, owns the list they must belong to.
    allowed = set(get_args(RetrainSettings.model_fields["deploy"].annotation)) - {"none"}
    assert allowed <= set(STRATEGIES)
