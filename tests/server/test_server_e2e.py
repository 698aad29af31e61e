"""The online server end to end: the real `modelpilot serve` on 127.0.0.1, spoken to over HTTP.

One server is shared by the module (every test here only reads, or adds its own predictions).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from flaky_model import CURSED_SIZE
from server_helpers import importable_tests_env, model_predictions

import modelpilot
from live_server import ADMIN_TOKEN, DEPLOYMENT, PREDICT_TOKEN, LiveServer, auth, live_server, poll
from modelpilot.cli import run
from modelpilot.client import ClientError
from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.store import PiiScrubber, load_pii_key
from project_helpers import as_instances, build_project, open_prediction_log, register

MAX_BODY_BYTES = 32_768
PREDICT = f"/v1/deployments/{DEPLOYMENT}/predict"
FLAKY = "flaky"  # a second deployment, of a model that raises on one house size
#: ``location`` is personal data here: the log keeps a keyed hash of it.
FEATURES = [f.model_copy(update={"pii": f.name == "location"}) for f in HOUSE_FEATURES]


@pytest.fixture(scope="module")
def served_project(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
    flaky_model_file: Path,
) -> Path:
    deployments = [{"name": DEPLOYMENT}, {"name": FLAKY, "model": FLAKY}]
    settings = {"serving": {"max_body_bytes": MAX_BODY_BYTES}, "deployments": deployments}
    directory = tmp_path_factory.mktemp("e2e")
    # No key metrics: the flaky model predicts the mean and would be registered as rejected.
    build_project(
        directory,
        house_data[1],
        house_model_file,
        settings=settings,
        features=FEATURES,
        key_metrics=[],
    )
    register(directory, flaky_model_file, name=FLAKY, production=True, trust=True)
    return directory


@pytest.fixture(scope="module")
def server(served_project: Path) -> Iterator[LiveServer]:
    with live_server(served_project, trust=True, env=importable_tests_env()) as running:
        yield running


@pytest.fixture(scope="module")
def holdout(house_data: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return house_data[1]


@pytest.fixture
def client(server: LiveServer) -> Iterator[modelpilot.Client]:
    with modelpilot.Client(server.url, token=PREDICT_TOKEN) as api:
        yield api


# ---- predictions ------------------------------------------------------------------------------
def test_predict_answers_each_instance_with_an_id_and_the_models_prediction(
    http: httpx.Client, holdout: pd.DataFrame, house_model_file: Path
) -> None:
    rows = holdout.iloc[:5]
    response = http.post(PREDICT, json={"instances": as_instances(rows)}, headers=auth())
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["deployment"], body["model"], body["version"]) == (DEPLOYMENT, DEPLOYMENT, 1)
    ids = [p["id"] for p in body["predictions"]]
    assert len(set(ids)) == 5 and all(len(i) == 32 for i in ids)
    assert [p["prediction"] for p in body["predictions"]] == pytest.approx(
        model_predictions(house_model_file, rows), rel=1e-9
    )


def test_one_record_without_instances_is_one_instance(
    http: httpx.Client, holdout: pd.DataFrame, house_model_file: Path
) -> None:
    [record] = as_instances(holdout.iloc[[7]])
    response = http.post(PREDICT, json=record, headers=auth())
    assert response.status_code == 200, response.text
    [prediction] = response.json()["predictions"]
    assert prediction["prediction"] == pytest.approx(
        model_predictions(house_model_file, holdout.iloc[[7]])[0], rel=1e-9
    )


def test_a_missing_nullable_feature_is_accepted(http: httpx.Client, holdout: pd.DataFrame) -> None:
    [record] = as_instances(holdout.iloc[[0]])
    del record["lot_acres"]
    response = http.post(PREDICT, json={"instances": [record]}, headers=auth())
    assert response.status_code == 200, response.text


def test_invalid_instances_get_422_listing_every_problem(
    http: httpx.Client, holdout: pd.DataFrame
) -> None:
    good, bad_size, bad_many = as_instances(holdout.iloc[:3])
    bad_size["size_sqft"] = "big"
    bad_many["bedrooms"] = 30
    bad_many["has_garage"] = "sometimes"
    del bad_many["location"]
    response = http.post(PREDICT, json={"instances": [good, bad_size, bad_many]}, headers=auth())
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert body["problems"] == [
        {"instance": 1, "field": "size_sqft", "expected": "a number in [200, 20000]", "got": "big"},
        {"instance": 2, "field": "bedrooms", "expected": "a number in [0, 12]", "got": 30},
        {"instance": 2, "field": "location", "expected": "a string", "got": "(missing)"},
        {"instance": 2, "field": "has_garage", "expected": "true or false", "got": "sometimes"},
    ]
    assert "4 invalid input value(s)" in body["message"]
    assert "instances[1].size_sqft: expected a number in [200, 20000], got 'big'" in body["message"]


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [
        (b"{not json", 400, "bad_request", "not valid JSON"),
        (b"[1, 2]", 400, "bad_request", "must be a JSON object"),
        (b'{"instances": {"size_sqft": 1}}', 422, "validation_error", "a list of records"),
        (b'{"instances": []}', 422, "validation_error", "at least one instance"),
        (b'{"instances": [1]}', 422, "validation_error", "an object of feature values"),
    ],
    ids=["not-json", "not-an-object", "instances-not-a-list", "no-instances", "not-a-record"],
)
def test_malformed_bodies_are_refused_with_what_to_send(
    http: httpx.Client, body: bytes, status: int, kind: str, message: str
) -> None:
    response = http.post(PREDICT, content=body, headers=auth())
    assert response.status_code == status
    assert response.json()["error"] == kind
    assert message in response.text


def test_an_unknown_deployment_is_404_naming_the_known_ones(
    http: httpx.Client, holdout: pd.DataFrame
) -> None:
    response = http.post(
        "/v1/deployments/nope/predict",
        json={"instances": as_instances(holdout.iloc[:1])},
        headers=auth(),
    )
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "'nope' was not found" in response.json()["message"]
    assert f"deployments: {FLAKY}, {DEPLOYMENT}" in response.json()["message"]


def test_an_unknown_endpoint_is_404_pointing_at_the_openapi_document(http: httpx.Client) -> None:
    response = http.get("/v1/nothing-here", headers=auth())
    assert response.status_code == 404
    assert "/openapi.json" in response.json()["message"]


def test_a_body_over_max_body_bytes_is_413(http: httpx.Client) -> None:
    padded = b'{"instances": []' + b" " * MAX_BODY_BYTES + b"}"
    response = http.post(PREDICT, content=padded, headers=auth())
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"
    assert "serving.max_body_bytes" in response.json()["message"]


def test_a_chunked_body_over_max_body_bytes_is_413(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        yield b'{"instances": ['
        for _ in range(MAX_BODY_BYTES // 1024 + 1):
            yield b" " * 1024
        yield b"]}"

    response = http.post(PREDICT, content=chunks(), headers=auth())
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


# ---- micro-batching ---------------------------------------------------------------------------
def test_concurrent_requests_share_model_calls_and_each_gets_its_own_rows(
    server: LiveServer, http: httpx.Client, holdout: pd.DataFrame, house_model_file: Path
) -> None:
    n_requests, per_request = 120, 3
    rows = holdout.iloc[: n_requests * per_request]
    instances = as_instances(rows)
    expected = model_predictions(house_model_file, rows)

    def batches() -> tuple[int, int]:
        deployments = http.get("/v1/deployments", headers=auth()).json()["deployments"]
        [version] = next(d for d in deployments if d["name"] == DEPLOYMENT)["versions"]
        return version["batches"], version["rows"]

    async def send_all() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=n_requests)
        async with httpx.AsyncClient(
            base_url=server.url, headers=auth(), limits=limits, timeout=60.0
        ) as session:
            return await asyncio.gather(
                *(
                    session.post(
                        PREDICT,
                        json={"instances": instances[i * per_request : (i + 1) * per_request]},
                    )
                    for i in range(n_requests)
                )
            )

    calls_before, rows_before = batches()
    responses = asyncio.run(send_all())
    calls_after, rows_after = batches()

    assert [r.status_code for r in responses] == [200] * n_requests
    for index, response in enumerate(responses):
        got = [p["prediction"] for p in response.json()["predictions"]]
        assert got == pytest.approx(
            expected[index * per_request : (index + 1) * per_request], rel=1e-9
        ), f"request {index} got another request's rows"
    assert rows_after - rows_before == n_requests * per_request
    assert calls_after - calls_before < n_requests  # requests shared model calls


# ---- feedback ---------------------------------------------------------------------------------
def test_feedback_right_after_a_prediction_is_joined_to_it(
    http: httpx.Client, served_project: Path, holdout: pd.DataFrame
) -> None:
    response = http.post(PREDICT, json=as_instances(holdout.iloc[[3]])[0], headers=auth())
    [prediction] = response.json()["predictions"]
    # No pause: the label may arrive before the writer's next flush, and must still find it.
    feedback = http.post(
        "/v1/feedback", json={"prediction_id": prediction["id"], "label": 412_000}, headers=auth()
    )
    assert feedback.status_code == 200, feedback.text
    assert feedback.json() == {
        "accepted": 1,
        "rejected": 0,
        "results": [{"prediction_id": prediction["id"], "accepted": True}],
    }
    with open_prediction_log(served_project) as log:
        labeled = log.labeled(model=DEPLOYMENT)
    row = labeled[labeled["id"] == prediction["id"]]
    assert row["label"].tolist() == [412_000]
    assert row["prediction"].tolist() == pytest.approx([prediction["prediction"]])


def test_feedback_reports_each_item_on_its_own(http: httpx.Client, holdout: pd.DataFrame) -> None:
    response = http.post(PREDICT, json=as_instances(holdout.iloc[[4]])[0], headers=auth())
    [prediction] = response.json()["predictions"]
    unknown = "0" * 32
    items = [
        {"prediction_id": prediction["id"], "label": 1.0},
        {"prediction_id": unknown, "label": 2.0},
    ]
    mixed = http.post("/v1/feedback", json={"items": items}, headers=auth())
    assert mixed.status_code == 207
    assert mixed.json()["results"] == [
        {"prediction_id": prediction["id"], "accepted": True},
        {
            "prediction_id": unknown,
            "accepted": False,
            "error": f"no prediction with id {unknown!r} is logged",
        },
    ]
    none = http.post("/v1/feedback", json={"prediction_id": unknown, "label": 1}, headers=auth())
    assert none.status_code == 422
    assert none.json()["rejected"] == 1


def test_feedback_without_a_prediction_id_is_422(http: httpx.Client) -> None:
    response = http.post(
        "/v1/feedback", json={"items": [{"label": 1}, {"prediction_id": 7}]}, headers=auth()
    )
    assert response.status_code == 422
    assert [(p["instance"], p["field"], p["got"]) for p in response.json()["problems"]] == [
        (0, "prediction_id", None),
        (1, "prediction_id", 7),
    ]


# ---- auth -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "this endpoint needs a predict token: send the header 'Authorization: Bearer TOKEN'"),
        (auth("not-a-token"), "the token is not valid"),
        ({"Authorization": f"Basic {PREDICT_TOKEN}"}, "must be 'Bearer TOKEN'"),
    ],
    ids=["no-token", "bad-token", "not-bearer"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", PREDICT),
        ("POST", f"/v2/models/{DEPLOYMENT}/infer"),
        ("POST", "/v1/feedback"),
        ("GET", "/v1/deployments"),
    ],
    ids=["predict", "v2-infer", "feedback", "deployments"],
)
def test_calls_without_a_valid_token_are_401(
    http: httpx.Client, method: str, path: str, headers: dict[str, str], message: str
) -> None:
    response = http.request(method, path, json={}, headers=headers)
    assert response.status_code == 401
    body = response.json()
    # The Open Inference Protocol's error object is {"error": message}; the kind goes aside.
    assert body["kind" if path.startswith("/v2/") else "error"] == "unauthorized"
    assert message in response.text


def test_a_predict_token_may_not_reload_a_deployment(http: httpx.Client) -> None:
    response = http.post(f"/v1/deployments/{DEPLOYMENT}/reload", headers=auth(PREDICT_TOKEN))
    assert response.status_code == 403
    assert response.json() == {
        "error": "forbidden",
        "message": "token 'env:predict' has role 'predict'; this endpoint needs an admin token",
    }


def test_an_admin_token_reloads_and_may_predict(http: httpx.Client, holdout: pd.DataFrame) -> None:
    response = http.post(f"/v1/deployments/{DEPLOYMENT}/reload", headers=auth(ADMIN_TOKEN))
    assert response.status_code == 200, response.text
    assert response.json()["versions"][0]["version"] == 1
    predicted = http.post(
        PREDICT, json={"instances": as_instances(holdout.iloc[:1])}, headers=auth(ADMIN_TOKEN)
    )
    assert predicted.status_code == 200


# ---- health and metadata ----------------------------------------------------------------------
def test_health_endpoints_need_no_token(http: httpx.Client) -> None:
    assert http.get("/healthz").json() == {"status": "live"}
    assert http.get("/readyz").json() == {"status": "ready"}  # which ones: token holders only
    ready = {"status": "ready", "deployments": [DEPLOYMENT, FLAKY]}
    assert http.get("/readyz", headers=auth()).json() == ready
    assert http.get("/v2/health/live").json() == {"live": True}
    assert http.get("/v2/health/ready").json() == {"ready": True}
    assert http.get(f"/v2/models/{DEPLOYMENT}/ready").json() == {"name": DEPLOYMENT, "ready": True}


def test_openapi_holds_the_deployments_feature_schema(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    body = document["paths"][PREDICT]["post"]["requestBody"]["content"]["application/json"]
    record = body["schema"]["anyOf"][1]
    assert record["properties"]["size_sqft"] == {
        "type": "number",
        "minimum": 200,
        "maximum": 20000,
        "description": "living area in square feet",
    }
    assert record["properties"]["location"] == {
        "type": ["string", "number"],
        "description": "a number is read as its text",
        "examples": ["urban", "suburban", "rural"],
    }
    garage = record["properties"]["has_garage"]["anyOf"]
    assert garage[:2] == [{"type": "boolean"}, {"enum": [0, 1]}]
    assert record["properties"]["lot_acres"]["anyOf"][1] == {"type": "null"}
    assert "lot_acres" not in record["required"]
    assert len(record["required"]) == 8
    # With the deployments loaded: their own predict paths beside the generic one, still valid.
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document)


# ---- personal data in the log ----------------------------------------------------------------
def test_a_pii_feature_is_logged_as_a_keyed_hash(
    http: httpx.Client, served_project: Path, holdout: pd.DataFrame
) -> None:
    [record] = as_instances(holdout.iloc[[0]])
    response = http.post(PREDICT, json=record, headers=auth())
    [prediction] = response.json()["predictions"]
    with open_prediction_log(served_project) as log:
        poll(lambda: log.exists([prediction["id"]]), what="the prediction to be committed")
        [logged] = log.get([prediction["id"]]).to_dict("records")
    key = load_pii_key(served_project, {})  # the server made it: .modelpilot/pii.key
    token = PiiScrubber(FEATURES, mode="hash", key=key).token(record["location"])
    assert logged["location"] == token != record["location"]
    assert token.startswith("hmac:")
    assert logged["condition"] == record["condition"]  # other features are kept as sent
    assert logged["size_sqft"] == record["size_sqft"]


# ---- the Open Inference Protocol, through Triton's own client -------------------------------
def _triton_inputs(rows: pd.DataFrame, *, binary: bool) -> list[triton.InferInput]:
    columns: list[tuple[str, np.ndarray, str]] = [
        (name, rows[name].to_numpy(np.float64), "FP64")
        for name in ["size_sqft", "bedrooms", "bathrooms", "age_years", "lot_acres", "distance_km"]
    ]
    columns += [(name, rows[name].to_numpy(object), "BYTES") for name in ["location", "condition"]]
    columns.append(("has_garage", rows["has_garage"].to_numpy(bool), "BOOL"))
    inputs = []
    for name, values, datatype in columns:
        tensor = triton.InferInput(name, [len(rows)], datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_the_triton_client_infers(
    server: LiveServer,
    holdout: pd.DataFrame,
    house_model_file: Path,
    served_project: Path,
    binary: bool,
) -> None:
    rows = holdout.iloc[10:16]  # one row has no lot_acres (NaN)
    v2 = triton.InferenceServerClient(server.url.removeprefix("http://"))
    try:
        assert v2.is_server_live(headers=auth())
        assert v2.is_model_ready(DEPLOYMENT, headers=auth())
        metadata = v2.get_model_metadata(DEPLOYMENT, headers=auth())
        assert [i["name"] for i in metadata["inputs"]][:2] == ["size_sqft", "bedrooms"]
        outputs = [
            triton.InferRequestedOutput(name, binary_data=binary)
            for name in ("predict", "prediction_id")
        ]
        result = v2.infer(
            DEPLOYMENT,
            _triton_inputs(rows, binary=binary),
            outputs=outputs,
            request_id="r-1",
            headers=auth(),
        )
    finally:
        v2.close()
    assert result.get_response()["id"] == "r-1"
    assert result.as_numpy("predict").tolist() == pytest.approx(
        model_predictions(house_model_file, rows), rel=1e-9
    )
    ids = [i.decode() if isinstance(i, bytes) else i for i in result.as_numpy("prediction_id")]
    with open_prediction_log(served_project) as log:
        # Answered by V2 means logged like any prediction (within the writer's interval).
        poll(lambda: log.exists(ids) == set(ids), what="the V2 predictions in the log", timeout=10)


def test_v2_infer_validates_like_the_json_api(http: httpx.Client) -> None:
    request = {"inputs": [{"name": "size_sqft", "shape": [1], "datatype": "FP64", "data": [100.0]}]}
    response = http.post(f"/v2/models/{DEPLOYMENT}/infer", json=request, headers=auth())
    assert response.status_code == 422
    missing = {p["field"] for p in response.json()["problems"]}
    assert missing == {
        "bedrooms",
        "bathrooms",
        "age_years",
        "distance_km",
        "location",
        "condition",
        "has_garage",
    }  # lot_acres is nullable
    assert response.json()["kind"] == "validation_error"  # V2's "error" holds the message


# ---- modelpilot.Client and the command line ---------------------------------------------------
def test_the_python_client_predicts_sends_feedback_and_lists(
    client: modelpilot.Client, holdout: pd.DataFrame, house_model_file: Path
) -> None:
    assert client.ready()
    rows = holdout.iloc[20:23]
    predictions = client.predict(DEPLOYMENT, as_instances(rows))
    assert [p["prediction"] for p in predictions] == pytest.approx(
        model_predictions(house_model_file, rows), rel=1e-9
    )
    assert {p["version"] for p in predictions} == {1}
    assert client.feedback(predictions[0]["id"], 500_000)["accepted"] == 1
    unknown = client.feedback("f" * 32, 1)
    assert (unknown["accepted"], unknown["rejected"]) == (0, 1)
    deployments = client.deployments()
    assert [(d["name"], d["model"], d["alias"]) for d in deployments] == [
        (DEPLOYMENT, DEPLOYMENT, "production"),
        (FLAKY, FLAKY, "production"),
    ]


def test_the_python_client_raises_with_the_servers_problems(
    client: modelpilot.Client, holdout: pd.DataFrame
) -> None:
    [record] = as_instances(holdout.iloc[:1])
    record["age_years"] = -5
    with pytest.raises(ClientError, match=r"HTTP 422: 1 invalid input value") as caught:
        client.predict(DEPLOYMENT, record)
    assert caught.value.status == 422 and caught.value.kind == "validation_error"
    assert caught.value.problems == [
        {"instance": 0, "field": "age_years", "expected": "a number in [0, 200]", "got": -5}
    ]
    with pytest.raises(ClientError, match="HTTP 403") as forbidden:
        client.reload(DEPLOYMENT)
    assert forbidden.value.kind == "forbidden"


def test_cli_predict_then_feedback(
    server: LiveServer,
    holdout: pd.DataFrame,
    house_model_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELPILOT_TOKEN", PREDICT_TOKEN)
    rows = holdout.iloc[30:32]
    code = run(
        ["predict", DEPLOYMENT, "--json", json.dumps(as_instances(rows)), "--url", server.url]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    predictions: list[dict[str, Any]] = json.loads(captured.out)
    assert [p["prediction"] for p in predictions] == pytest.approx(
        model_predictions(house_model_file, rows), rel=1e-9
    )

    assert run(["feedback", predictions[0]["id"], "412000", "--url", server.url]) == 0
    assert json.loads(capsys.readouterr().out)["accepted"] == 1
    assert run(["feedback", "0" * 32, "412000", "--url", server.url]) == 1
    captured = capsys.readouterr()
    assert "is logged" in captured.out
    assert "1 of 1 label(s) rejected" in captured.err


def test_cli_predict_shows_the_servers_error(
    server: LiveServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        [
            "predict",
            DEPLOYMENT,
            "--json",
            '{"size_sqft": 1800}',
            "--url",
            server.url,
            "--token",
            PREDICT_TOKEN,
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "HTTP 422" in err and "bedrooms" in err


# ---- a model that raises on some inputs ------------------------------------------------------
FLAKY_PREDICT = f"/v1/deployments/{FLAKY}/predict"


def _cursed(holdout: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    instances = as_instances(holdout.iloc[:n])
    instances[-1]["size_sqft"] = CURSED_SIZE
    return instances


def test_a_model_error_is_500_with_the_prediction_ids_and_no_traceback(
    server: LiveServer, http: httpx.Client, holdout: pd.DataFrame
) -> None:
    response = http.post(FLAKY_PREDICT, json={"instances": _cursed(holdout, 2)}, headers=auth())
    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "model_error"
    assert len(body["prediction_ids"]) == 2
    assert all(pid in body["message"] for pid in body["prediction_ids"])
    assert "ValueError" in body["message"] and "keeps serving" in body["message"]
    assert "Traceback" not in response.text and "cursed" not in response.text
    # The ids lead to the whole story in the server's log, stack trace included.
    poll(lambda: body["prediction_ids"][0] in server.log, what="the error in the server log")
    assert "size_sqft 1234.5 is cursed" in server.log

    fine = http.post(
        FLAKY_PREDICT, json={"instances": as_instances(holdout.iloc[:2])}, headers=auth()
    )
    assert fine.status_code == 200
    assert http.get("/healthz").status_code == 200 and server.alive()


def test_a_v2_model_error_is_500_too(http: httpx.Client) -> None:
    row = [str(CURSED_SIZE), "3", "2", "10", "0.5", "4", "urban", "good", "true"]
    request = {"inputs": [{"name": "x", "shape": [1, 9], "datatype": "BYTES", "data": [row]}]}
    response = http.post(f"/v2/models/{FLAKY}/infer", json=request, headers=auth())
    assert response.status_code == 500
    assert response.json()["kind"] == "model_error"
    assert "Traceback" not in response.text


def test_a_poisonous_request_fails_alone_and_the_server_keeps_serving(
    server: LiveServer, holdout: pd.DataFrame
) -> None:
    n_requests = 60
    cursed = {i for i in range(n_requests) if i % 5 == 0}
    bodies = [
        {"instances": _cursed(holdout, 2) if i in cursed else as_instances(holdout.iloc[i : i + 2])}
        for i in range(n_requests)
    ]

    async def send_all() -> list[httpx.Response]:  # concurrent: they share model calls
        async with httpx.AsyncClient(base_url=server.url, headers=auth(), timeout=60.0) as s:
            return await asyncio.gather(*(s.post(FLAKY_PREDICT, json=b) for b in bodies))

    responses = asyncio.run(send_all())
    statuses = [r.status_code for r in responses]
    assert statuses == [500 if i in cursed else 200 for i in range(n_requests)]
    assert not any("Traceback" in r.text for r in responses)
    # The other deployment of the same process never noticed.
    with httpx.Client(base_url=server.url, headers=auth(), timeout=30.0) as http:
        assert http.post(PREDICT, json=as_instances(holdout.iloc[[0]])[0]).status_code == 200
    assert server.alive()
