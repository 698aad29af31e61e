"""End to end: the real `modelpilot serve` defers atypical inputs and takes people's decisions."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
from automation_helpers import open_project

from live_server import ADMIN_TOKEN, DEPLOYMENT, auth, live_server, poll
from modelpilot.automation import ReviewQueue
from project_helpers import build_project


def typical_instance(train: pd.DataFrame) -> dict[str, object]:
    """The training medians (and most frequent categories): as typical as an input gets."""
    features = train.drop(columns="price")
    return {
        name: (
            float(features[name].median())
            if pd.api.types.is_numeric_dtype(features[name])
            else str(features[name].mode()[0])
        )
        for name in features
    }


def test_partial_and_human_automation_over_http(
    tmp_path: Path, house_data: tuple[pd.DataFrame, pd.DataFrame], house_model_file: Path
) -> None:
    train, holdout = house_data
    directory = build_project(tmp_path / "project", holdout, house_model_file, train=train)
    typical = typical_instance(train)
    assert train["size_sqft"].max() < 15_000
    atypical = {**typical, "size_sqft": 19_000.0}  # valid, but far outside the training data
    admin = auth(ADMIN_TOKEN)
    predict = f"/v1/deployments/{DEPLOYMENT}/predict"
    automation = f"/v1/deployments/{DEPLOYMENT}/automation"
    reader = open_project(directory)  # the test's own view of the project's database

    with live_server(directory) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post(automation, json={"degree": "partial"}, headers=auth()).status_code == 403
        response = http.post(automation, json={"degree": "partial", "reason": "e2e"}, headers=admin)
        assert response.status_code == 200, response.text
        assert response.json()["degree"] == "partial"

        response = http.post(predict, json={"instances": [typical, atypical]}, headers=auth())
        assert response.status_code == 200, response.text
        answered, deferred = response.json()["predictions"]
        assert answered["status"] == "decided_by_model"
        assert isinstance(answered["prediction"], float) and "review_id" not in answered
        assert answered["confidence"] == 1.0
        assert deferred["status"] == "deferred"
        assert "prediction" not in deferred
        assert isinstance(deferred["suggestion"], float)
        assert deferred["confidence"] == 0.0
        review_id = deferred["review_id"]

        review = http.get(f"/v1/reviews/{review_id}", headers=auth()).json()
        assert (review["status"], review["prediction_id"]) == ("pending", deferred["id"])
        assert review["inputs"]["size_sqft"] == 19_000.0
        listed = http.get("/v1/reviews", headers=admin).json()
        assert [r["id"] for r in listed["reviews"]] == [review_id]
        assert http.get("/v1/reviews", headers=auth()).status_code == 403
        assert http.get("/v1/reviews/next", headers=admin).json()["review"]["id"] == review_id

        # The log is written in the background; a decision needs its prediction logged.
        log = reader.prediction_log
        poll(
            lambda: log.exists([deferred["id"]]),
            what="the deferred prediction in the log",
            timeout=30.0,
        )
        decision = f"/v1/reviews/{review_id}/decision"
        assert http.post(decision, json={"value": 1}, headers=auth()).status_code == 403
        response = http.post(decision, json={"value": 1_250_000.0}, headers=admin)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "decided"
        review = http.get(f"/v1/reviews/{review_id}", headers=auth()).json()
        assert (review["status"], review["decision"], review["decided_by"]) == (
            "decided",
            1_250_000.0,
            response.json()["decided_by"],
        )
        second = http.post(decision, json={"value": 1.0}, headers=admin)
        assert second.status_code == 409
        assert "the first decision stands" in second.json()["message"]

        response = http.post(automation, json={"degree": "human"}, headers=admin)
        assert response.json()["degree"] == "human"
        response = http.post(predict, json={"instances": [typical, atypical]}, headers=auth())
        assert response.status_code == 200, response.text
        human = response.json()["predictions"]
        assert [p["status"] for p in human] == ["pending_review", "pending_review"]
        for item in human:
            assert item["review_id"]
            assert "suggestion" not in item and "prediction" not in item
        state = http.get(automation, headers=auth()).json()
        assert state["degree"] == "human" and state["review"]["pending"] == 2

    project = reader
    labeled = project.prediction_log.labeled(model=DEPLOYMENT)
    assert labeled.set_index("id")["label"].to_dict() == {deferred["id"]: 1_250_000.0}
    queue = ReviewQueue(project.engine, project.prediction_log)
    for item in human:  # the model was not consulted: there is nothing it suggested
        stored = queue.get(item["review_id"])
        assert (stored.degree, stored.suggestion) == ("human", None)
    actions = [e["action"] for e in project.registry.audit_entries()]
    assert actions.count("automation.set") == 2
    project.engine.dispose()
