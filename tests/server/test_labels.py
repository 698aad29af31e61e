"""Labels and review decisions are checked against the model's task, can be corrected, and a
label that still does not fit never stops the key-metric series (issue 14 point 1, issue 15
point 6), against the live server of a regression model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import select

from live_server import ADMIN_TOKEN, DEPLOYMENT, LiveServer, auth, live_server, poll
from modelpilot.data import TargetValidator
from modelpilot.store import FeedbackItem
from modelpilot.store._tables import feedback
from project_helpers import as_instances, build_project, open_prediction_log

PREDICT = f"/v1/deployments/{DEPLOYMENT}/predict"
SETTINGS = {"monitoring": {"interval_s": 0.5}}


@pytest.fixture(scope="module")
def labeled_server(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Iterator[LiveServer]:
    directory = build_project(
        tmp_path_factory.mktemp("labels"), house_data[1], house_model_file, settings=SETTINGS
    )
    with live_server(directory) as server:
        yield server


@pytest.fixture
def client(labeled_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=labeled_server.url, headers=auth(), timeout=30.0) as http:
        yield http


def _predict(client: httpx.Client, rows: list[dict[str, Any]]) -> list[str]:
    response = client.post(PREDICT, json={"instances": rows})
    assert response.status_code == 200, response.text
    return [p["id"] for p in response.json()["predictions"]]


@pytest.fixture(scope="module")
def rows(house_data: tuple[pd.DataFrame, pd.DataFrame]) -> list[dict[str, Any]]:
    return as_instances(house_data[1].iloc[:40])


def test_a_label_that_does_not_fit_the_task_gets_its_own_error(
    client: httpx.Client, rows: list[dict[str, Any]]
) -> None:
    ids = _predict(client, rows[:3])
    response = client.post(
        "/v1/feedback",
        json={
            "items": [
                {"prediction_id": ids[0], "label": "class_0"},
                {"prediction_id": ids[1], "label": 250_000},
                {"prediction_id": ids[2], "label": {"price": 1}},
            ]
        },
    )
    assert response.status_code == 207, response.text
    results = response.json()["results"]
    assert [r["accepted"] for r in results] == [False, True, False]
    assert results[0]["error"] == "the label must be a finite number; got 'class_0'"
    assert results[2]["error"] == "the label must be a finite number; got {'price': 1}"


def test_replace_corrects_a_label_and_keeps_the_old_one_in_history(
    labeled_server: LiveServer, client: httpx.Client, rows: list[dict[str, Any]]
) -> None:
    [pid] = _predict(client, rows[3:4])
    first = client.post("/v1/feedback", json={"prediction_id": pid, "label": 100_000})
    fixed = client.post(
        "/v1/feedback", json={"prediction_id": pid, "label": 200_000, "replace": True}
    )
    assert (first.status_code, fixed.status_code) == (200, 200), fixed.text
    with open_prediction_log(labeled_server.directory) as log:
        assert log.labeled()["label"].tolist().count(200_000) == 1
        assert 100_000 not in log.labeled()["label"].tolist()
        with log.engine.connect() as connection:
            history = connection.execute(
                select(feedback.c.label, feedback.c.replaced_at)
                .where(feedback.c.prediction_id == pid)
                .order_by(feedback.c.id)
            ).all()
    assert [h[0] for h in history] == ["100000", "200000"]
    assert history[0][1] is not None and history[1][1] is None


def test_a_review_decision_is_checked_like_a_label(
    client: httpx.Client, rows: list[dict[str, Any]]
) -> None:
    admin = auth(ADMIN_TOKEN)
    automation = f"/v1/deployments/{DEPLOYMENT}/automation"
    assert client.post(automation, json={"degree": "human"}, headers=admin).status_code == 200
    try:
        [pid] = _predict(client, rows[4:5])
        reviews = client.get("/v1/reviews", headers=admin).json()["reviews"]
        [review] = [r for r in reviews if r["prediction_id"] == pid]
        decide = f"/v1/reviews/{review['id']}/decision"
        refused = client.post(decide, json={"value": {"any": "json"}}, headers=admin)
        assert refused.status_code == 422, refused.text
        assert refused.json()["problems"] == [
            {"field": "value", "expected": "a finite number", "got": {"any": "json"}}
        ]
        # 409 until the prediction is in the log (written within a second): retry.
        poll(
            lambda: client.post(decide, json={"value": 310_000}, headers=admin).status_code == 200,
            what="the decision to be accepted",
        )
    finally:
        client.post(automation, json={"degree": "full"}, headers=admin)


def test_a_stored_label_that_does_not_fit_is_skipped_counted_and_the_series_goes_on(
    labeled_server: LiveServer, client: httpx.Client, rows: list[dict[str, Any]]
) -> None:
    ids = _predict(client, rows[10:20])
    # Stored before labels were checked (or by hand): the store itself takes any JSON.
    # The server writes its log within a second of answering: until then the store refuses.
    with open_prediction_log(labeled_server.directory) as log:
        poll(
            lambda: log.add_feedback([FeedbackItem(ids[0], "class_0")])[0].accepted,
            what="the store to take the label once the prediction is logged",
        )
    for pid in ids[1:]:
        assert client.post("/v1/feedback", json={"prediction_id": pid, "label": 300_000}).is_success

    def skipped() -> float:
        series = labeled_server.get("/v1/metrics/series", name="labels_skipped")["series"]
        return sum(p["value"] or 0 for s in series for p in s["points"])

    poll(skipped, what="the monitor to skip the label that does not fit")
    key = poll(
        lambda: labeled_server.get("/v1/metrics/series", name="key_metric")["series"],
        what="key-metric points despite the bad label",
    )
    assert key
    metrics = httpx.get(f"{labeled_server.url}/metrics").text
    assert f'modelpilot_labels_skipped_total{{deployment="{DEPLOYMENT}"}} 1.0' in metrics
    assert "Mix of label input types" not in labeled_server.log


@pytest.mark.parametrize(
    ("task", "classes", "value", "stored"),
    [
        ("binary", [0, 1], 1.0, 1),
        ("binary", ["no", "yes"], "yes", "yes"),
        ("multiclass", None, "class_0", "class_0"),
        ("regression", None, 3, 3),
    ],
)
def test_the_validator_returns_the_value_in_the_classes_type(
    task: str, classes: list[Any] | None, value: Any, stored: Any
) -> None:
    checked = TargetValidator(task, classes).check(value)
    assert checked == stored and type(checked) is type(stored)


@pytest.mark.parametrize(
    ("task", "classes", "value", "message"),
    [
        ("binary", [0, 1], "class_0", r"one of the model's classes 0, 1"),
        ("binary", [0, 1], True, r"one of the model's classes 0, 1"),
        ("binary", ["0", "1"], 0, r"one of the model's classes 0, 1"),
        ("multiclass", None, [1], r"a class label \(a string, an integer or true/false\)"),
        ("regression", None, float("inf"), "a finite number"),
        ("regression", None, True, "a finite number"),
    ],
)
def test_the_validator_refuses_what_does_not_fit(
    task: str, classes: list[Any] | None, value: Any, message: str
) -> None:
    with pytest.raises(Exception, match=message) as caught:
        TargetValidator(task, classes).check(value)
    assert getattr(caught.value, "http_status", None) == 422
