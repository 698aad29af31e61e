"""Pipeline deployments on the real server: each step reports its own metrics.

``cleaned`` runs the project's ``listing_steps.clean`` before the house model. Its bug (no
entry for "excellent") shows up as nulls of the ``clean`` step, not of the model; its
exception on impossible listings is an error of ``clean``, named in the 500 and the server log.
``chained`` runs the house model, then a second model on its estimate.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from monitoring_helpers import CHAINED, CLEANED, Samples, scrape, value

from live_server import LiveServer, poll
from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.runtime import load_runtime
from project_helpers import as_instances


@pytest.fixture(scope="module")
def holdout(house_data: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return house_data[1]


def _step(name: str, samples: Samples, deployment: str, step: str) -> float:
    return value(samples, f"modelpilot_step_{name}", deployment=deployment, step=step)


def test_a_preprocessing_bug_shows_in_its_own_step_not_in_the_model(
    http: httpx.Client, holdout: pd.DataFrame
) -> None:
    rows = holdout.iloc[:40]
    excellent = int((rows["condition"] == "excellent").sum())
    assert excellent > 0
    before = scrape(http)
    response = http.post(
        f"/v1/deployments/{CLEANED}/predict", json={"instances": as_instances(rows)}
    )
    assert response.status_code == 200, response.text
    after = scrape(http)

    def delta(name: str, step: str) -> float:
        return _step(name, after, CLEANED, step) - _step(name, before, CLEANED, step)

    assert delta("output_null_total", "clean") == excellent  # where the problem starts
    assert delta("output_null_total", "model") == 0  # the model still answers every row
    assert delta("errors_total", "clean") == delta("errors_total", "model") == 0
    assert delta("duration_seconds_count", "clean") == delta("duration_seconds_count", "model") == 1
    assert all(p["prediction"] is not None for p in response.json()["predictions"])


def test_a_failing_step_is_named_in_the_500_and_the_log(
    monitored_server: LiveServer, http: httpx.Client, holdout: pd.DataFrame
) -> None:
    impossible = {**as_instances(holdout.iloc[:1])[0], "bedrooms": 12, "size_sqft": 300}
    before = scrape(http)
    response = http.post(f"/v1/deployments/{CLEANED}/predict", json=impossible)
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "model_error"
    assert "step 'clean' of the pipeline failed on this request (ValueError)" in body["message"]
    after = scrape(http)
    for step, errors in (("clean", 1), ("model", 0)):
        got = _step("errors_total", after, CLEANED, step) - _step(
            "errors_total", before, CLEANED, step
        )
        assert got == errors, step
    [prediction_id] = body["prediction_ids"]
    line = poll(
        lambda: next((x for x in monitored_server.log.splitlines() if prediction_id in x), None),
        what="the server's log line of the failed prediction",
    )
    assert "step 'clean' of houses-clean:1 failed" in line
    assert "more bedrooms than the floor area allows" in monitored_server.log


def test_two_models_in_sequence_answer_as_the_second_on_the_first(
    monitored_project: Path, house_model_file: Path, http: httpx.Client, holdout: pd.DataFrame
) -> None:
    rows = holdout.iloc[:25].drop(columns="price")
    before = scrape(http)
    response = http.post(
        f"/v1/deployments/{CHAINED}/predict", json={"instances": as_instances(rows)}
    )
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "houses-chain"
    got = [p["prediction"] for p in response.json()["predictions"]]
    first = load_runtime(house_model_file).predict(rows)
    expected = load_runtime(monitored_project / "chain.skops").predict(rows.assign(estimate=first))
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    after = scrape(http)
    for step in ("estimate", "model"):
        calls = _step("duration_seconds_count", after, CHAINED, step) - _step(
            "duration_seconds_count", before, CHAINED, step
        )
        assert calls == 1, step
        assert _step("errors_total", after, CHAINED, step) == 0


def test_a_pipeline_validates_requests_against_the_project_schema(http: httpx.Client) -> None:
    response = http.post(f"/v1/deployments/{CHAINED}/predict", json={"size_sqft": 10})
    assert response.status_code == 422
    fields = {p["field"] for p in response.json()["problems"]}
    assert "estimate" not in fields  # made by the first step, never asked of the client
    assert {"size_sqft", "bedrooms", "location"} <= fields
    inputs = [i["name"] for i in http.get(f"/v2/models/{CHAINED}").json()["inputs"]]
    assert inputs == [f.name for f in HOUSE_FEATURES]
