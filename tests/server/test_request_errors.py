"""Requests that can be wrong: each gets a 4xx that says what to send, never a 500.

Most tests run the application in process without its lifespan, as ``test_openapi_routes``
does: nothing is loaded, so they show the order of the checks. The token comes first, then the
request itself (its body, its fields, its query), and only then what it names: a caller
without a token learns nothing, not even which deployments exist. The last test sends the same
mistakes to the module's live server, where the deployment, the review queue and the
retraining loop exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from live_server import ADMIN_TOKEN, DEPLOYMENT, auth, poll
from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.project import Project
from modelpilot.server import ServingApp, build_state, create_app
from modelpilot.spec import render_project

PREDICT_TOKEN = "predict-token-for-request-errors"
ADMIN = "admin-token-for-request-errors"
ENVIRON = {"MODELPILOT_PREDICT_TOKEN": PREDICT_TOKEN, "MODELPILOT_ADMIN_TOKEN": ADMIN}
ERROR_KEYS = {"error", "message", "problems"}  # the Error object (ModelpilotError.to_dict)
AUTOMATION = f"/v1/deployments/{DEPLOYMENT}/automation"
DEPLOY = f"/v1/deployments/{DEPLOYMENT}/deploy"
DECISION = "/v1/reviews/some-review/decision"


class _Client:
    """Requests straight into the ASGI application (no lifespan: nothing is loaded)."""

    def __init__(self, app: ServingApp) -> None:
        self.app = app

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        content: bytes | None = None,
        json: Any = None,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.request(
                    method, path, headers=headers, content=content, json=json
                )

        return asyncio.run(call())


@pytest.fixture(scope="module")
def project_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with no model registered: every check here comes before any model."""
    directory = tmp_path_factory.mktemp("request-errors")
    text = render_project(
        project=DEPLOYMENT, task="regression", target="price", features=HOUSE_FEATURES
    )
    spec = yaml.safe_load(text)
    spec["serving"]["open_predict"] = False
    (directory / "modelpilot.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    return directory


@pytest.fixture
def client(project_directory: Path, clean_environ: None) -> Iterator[_Client]:
    project = Project.open(project_directory, environ=ENVIRON)
    state = build_state(project)
    try:
        yield _Client(create_app(state))
    finally:
        state.manager.close()
        project.engine.dispose()


def _error(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """The Error object of a ``status`` answer of this ``kind``; fails on anything else."""
    where = f"{response.request.method} {response.request.url.path}: {response.text[:300]}"
    assert response.status_code == status, where
    body: dict[str, Any] = response.json()
    assert body["error"] == kind, where
    assert set(body) <= ERROR_KEYS and isinstance(body["message"], str), where
    return body


# ---- the token first --------------------------------------------------------------------------
# Every handler that needs a token, with a request that is wrong in every other way too: an
# unknown deployment or review, a body that is not JSON, a query parameter that is no number.
GUARDED = [
    ("admin", "POST", AUTOMATION),
    ("admin", "POST", "/v1/deployments/no-such-deployment/automation"),
    ("predict", "GET", "/v1/deployments/no-such-deployment/automation"),
    ("admin", "POST", "/v1/deployments/no-such-deployment/reload"),
    ("admin", "POST", "/v1/deployments/no-such-deployment/deploy"),
    ("admin", "POST", "/v1/deployments/no-such-deployment/rollback"),
    ("admin", "POST", "/v1/deployments/no-such-deployment/no-such-action"),
    ("predict", "GET", "/v1/deployments/no-such-deployment/status"),
    ("predict", "GET", "/v1/deployments"),
    ("review", "GET", "/v1/reviews?limit=abc&status=nonsense"),
    ("review", "GET", "/v1/reviews/next"),
    ("predict", "GET", "/v1/reviews/no-such-review"),
    ("review", "POST", "/v1/reviews/no-such-review/decision"),
    ("review", "GET", "/v1/reviews/agreement?since=abc"),
    ("predict", "GET", "/v1/models/no-such-model"),
    ("predict", "GET", "/v1/deployments/no-such-deployment/history?since=abc"),
    ("predict", "GET", "/v1/deployments/no-such-deployment/drift"),
    ("admin", "POST", "/v1/alerts/no-such-alert/silence"),
    ("admin", "POST", "/v1/retrain"),
    ("predict", "POST", "/v1/feedback"),
    ("predict", "GET", "/v1/alerts"),
    ("predict", "GET", "/v1/metrics/names"),
    ("predict", "GET", "/v1/metrics/series?since=abc"),
    ("predict", "GET", "/v1/project"),
]


@pytest.mark.parametrize(("role", "method", "path"), GUARDED, ids=[g[2] for g in GUARDED])
def test_the_token_is_checked_before_anything_else(
    client: _Client, role: str, method: str, path: str
) -> None:
    content = b"{not json" if method == "POST" else None
    anonymous = _error(client.request(method, path, content=content), 401, "unauthorized")
    article = "an" if role == "admin" else "a"
    assert f"needs {article} {role} token" in anonymous["message"]
    if role in ("admin", "review"):
        with_predict = client.request(method, path, token=PREDICT_TOKEN, content=content)
        assert "has role 'predict'" in _error(with_predict, 403, "forbidden")["message"]


def test_without_a_token_a_known_and_an_unknown_deployment_look_the_same(
    client: _Client,
) -> None:
    # Before the fix the automation handler answered 404 for an unknown name first.
    for method in ("GET", "POST"):
        answers = {
            client.request(method, f"/v1/deployments/{name}/automation", json={}).text
            for name in (DEPLOYMENT, "no-such-deployment")
        }
        assert len(answers) == 1, answers


# ---- bodies -----------------------------------------------------------------------------------
POSTS = [
    (AUTOMATION, "set_automation"),
    (DEPLOY, "deploy"),
    (f"/v1/deployments/{DEPLOYMENT}/rollback", "rollback"),
    (f"/v1/deployments/{DEPLOYMENT}/pause", "pause"),
    (DECISION, "decision"),
    ("/v1/retrain", "retrain"),
]


@pytest.mark.parametrize(("path", "name"), POSTS, ids=[p[1] for p in POSTS])
@pytest.mark.parametrize("body", [b"{not json", b'{"reason": "x"', b"\xff\xfe", b"NaN"])
def test_a_body_that_is_not_json_is_a_400_saying_what_to_send(
    client: _Client, path: str, name: str, body: bytes
) -> None:
    error = _error(client.request("POST", path, token=ADMIN, content=body), 400, "bad_request")
    assert error["message"].startswith(f"the request body of POST {path} is not valid JSON (")
    assert "; send a JSON object such as {" in error["message"]


def test_a_feedback_body_that_is_not_json_is_a_400(client: _Client) -> None:
    error = _error(
        client.request("POST", "/v1/feedback", token=PREDICT_TOKEN, content=b"{x"),
        400,
        "bad_request",
    )
    assert "POST /v1/feedback is not valid JSON (" in error["message"]
    assert '"prediction_id"' in error["message"]


@pytest.mark.parametrize(("path", "name"), POSTS, ids=[p[1] for p in POSTS])
@pytest.mark.parametrize(
    ("body", "got"),
    [(b"[1, 2]", "an array"), (b'"degree"', "a string"), (b"3", "a number"), (b"null", "null")],
)
def test_a_body_that_is_not_a_json_object_is_a_400(
    client: _Client, path: str, name: str, body: bytes, got: str
) -> None:
    error = _error(client.request("POST", path, token=ADMIN, content=body), 400, "bad_request")
    assert error["message"].startswith(
        f"the request body of POST {path} must be a JSON object, got {got}; send "
    )


@pytest.mark.parametrize("path", ["/v1/retrain", AUTOMATION, f"/v1/deployments/{DEPLOYMENT}/abort"])
def test_an_empty_body_is_an_empty_object_where_every_field_is_optional(
    client: _Client, path: str
) -> None:
    # Nothing is loaded: past the body, these ask for what loading creates (or, for the
    # automation, the deployment: none is loaded).
    response = client.request("POST", path, token=ADMIN)
    assert response.status_code in (404, 503), response.text


WRONG_FIELDS = [
    ("/v1/retrain", {"force": "false"}, "force", "true or false"),
    ("/v1/retrain", {"reason": 5}, "reason", "a string"),
    (AUTOMATION, {"degree": 3}, "degree", "a string"),
    (AUTOMATION, {"degree": ["full"]}, "degree", "a string"),
    (AUTOMATION, {"apply_proposal": "yes"}, "apply_proposal", "true or false"),
    (AUTOMATION, {"degree": "full", "reason": {"why": 1}}, "reason", "a string"),
    (DEPLOY, {}, "version", "a version number"),
    (DEPLOY, {"version": True}, "version", "a version number"),
    (DEPLOY, {"version": "2"}, "version", "a version number"),
    (DEPLOY, {"version": 2.5}, "version", "a version number"),
    (DEPLOY, {"version": 2**40}, "version", "a version number"),
    (DEPLOY, {"version": 0}, "version", "a version number"),
    (DEPLOY, {"version": 2, "force": "false"}, "force", "true or false"),
    (DEPLOY, {"version": 2, "strategy": 1}, "strategy", "a string"),
    (f"/v1/deployments/{DEPLOYMENT}/rollback", {"reason": 1}, "reason", "a string"),
    (DECISION, {}, "value", "the decision (a label)"),
    (DECISION, {"value": None}, "value", "the decision (a label)"),
]


@pytest.mark.parametrize(
    ("path", "body", "field", "expected"),
    WRONG_FIELDS,
    ids=[f"{p.rsplit('/', 1)[1]}-{b}" for p, b, _, _ in WRONG_FIELDS],
)
def test_a_field_of_the_wrong_type_is_a_422_naming_it(
    client: _Client, path: str, body: dict[str, Any], field: str, expected: str
) -> None:
    error = _error(client.request("POST", path, token=ADMIN, json=body), 422, "validation_error")
    (problem,) = error["problems"]
    assert (problem["field"], problem["expected"]) == (field, expected)
    assert f"{field}: expected {expected}, got " in error["message"]


@pytest.mark.parametrize(
    ("item", "field", "expected"),
    [
        ({"prediction_id": 5, "label": 1}, "prediction_id", "a prediction id string"),
        ({"prediction_id": "p", "label": 1, "kind": 1}, "kind", "a string"),
        ({"prediction_id": "p", "label": 1, "source": ["a"]}, "source", "a string"),
        ({"prediction_id": "p", "label": 1, "source": "s" * 201}, "source", "a string"),
    ],
    ids=["prediction_id", "kind", "source-type", "source-length"],
)
def test_a_feedback_item_of_the_wrong_shape_is_a_422(
    client: _Client, item: dict[str, Any], field: str, expected: str
) -> None:
    for body in (item, {"items": [item]}, [item]):
        response = client.request("POST", "/v1/feedback", token=PREDICT_TOKEN, json=body)
        (problem,) = _error(response, 422, "validation_error")["problems"]
        assert (problem["instance"], problem["field"]) == (0, field)
        assert expected in problem["expected"]


# ---- query parameters -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "parameter", "expected"),
    [
        ("limit=abc", "limit", "a whole number from 1 to 10000"),
        ("limit=-1", "limit", "a whole number from 1 to 10000"),
        ("limit=0", "limit", "a whole number from 1 to 10000"),
        ("limit=2.5", "limit", "a whole number from 1 to 10000"),
        ("limit=100001", "limit", "a whole number from 1 to 10000"),
        ("status=pendng", "status", "one of pending, decided, expired, all"),
    ],
)
def test_a_bad_query_parameter_of_the_review_list_is_a_400(
    client: _Client, query: str, parameter: str, expected: str
) -> None:
    response = client.request("GET", f"/v1/reviews?{query}", token=ADMIN)
    message = _error(response, 400, "bad_request")["message"]
    assert message.startswith(f"the query parameter {parameter!r} must be {expected}, got ")
    assert "GET /v1/reviews?status=pending&limit=100" in message


@pytest.mark.parametrize(
    "query",
    [
        "name=bad-name",
        "name=x&since=abc",
        "name=x&since=nan",
        "name=x&points=1.5",
        "name=x&labels=k",
    ],
)
def test_a_bad_query_parameter_of_the_metric_series_is_a_400(client: _Client, query: str) -> None:
    response = client.request("GET", f"/v1/metrics/series?{query}", token=PREDICT_TOKEN)
    assert "the query parameter " in _error(response, 400, "bad_request")["message"]


# ---- methods ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", f"/v1/deployments/{DEPLOYMENT}/status", "GET, HEAD"),
        ("DELETE", "/v1/reviews", "GET, HEAD"),
        ("GET", "/v1/retrain", "POST"),
        ("PUT", AUTOMATION, "GET, HEAD, POST"),
        ("GET", DEPLOY, "POST"),
    ],
)
@pytest.mark.parametrize("token", [None, ADMIN])
def test_a_method_a_path_does_not_allow_is_a_405_with_an_allow_header(
    client: _Client, method: str, path: str, allow: str, token: str | None
) -> None:
    response = client.request(method, path, token=token)
    error = _error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == allow
    assert error["message"] == (
        f"{method} is not allowed on {path}; it allows {allow} (see /openapi.json)"
    )


# ---- the document -----------------------------------------------------------------------------
DOCUMENTED = [
    ("POST", "/v1/deployments/{name}/automation", AUTOMATION),
    ("POST", "/v1/deployments/{name}/deploy", DEPLOY),
    ("POST", "/v1/deployments/{name}/rollback", f"/v1/deployments/{DEPLOYMENT}/rollback"),
    ("POST", "/v1/reviews/{id}/decision", DECISION),
    ("POST", "/v1/retrain", "/v1/retrain"),
    ("POST", "/v1/feedback", "/v1/feedback"),
]


def test_openapi_documents_each_of_these_answers(client: _Client) -> None:
    operations = client.request("GET", "/openapi.json").json()["paths"]
    wrong = []
    for method, template, path in DOCUMENTED:
        documented = operations[template][method.lower()]["responses"]
        for body in (b"{not json", b"[1]", b'{"reason": 1, "force": "no", "value": null}'):
            response = client.request(method, path, token=ADMIN, content=body)
            if str(response.status_code) not in documented:
                wrong.append(f"{method} {path} {body!r}: {response.status_code} undocumented")
    for query in ("limit=abc", "status=nope"):
        response = client.request("GET", f"/v1/reviews?{query}", token=ADMIN)
        if str(response.status_code) not in operations["/v1/reviews"]["get"]["responses"]:
            wrong.append(f"GET /v1/reviews?{query}: {response.status_code} undocumented")
    assert not wrong, "\n".join(wrong)


# ---- the live server --------------------------------------------------------------------------
def test_the_live_server_answers_the_same_mistakes_with_a_4xx(http: httpx.Client) -> None:
    admin = auth(ADMIN_TOKEN)

    def automation() -> dict[str, Any] | None:
        response = http.get(AUTOMATION, headers=admin)
        return response.json() if response.status_code == 200 else None

    # /readyz answers once the models are loaded; the automation starts right after them.
    degree = poll(automation, what="the automation of the live server")["degree"]
    mistakes: list[tuple[str, str, bytes | None, int]] = [
        ("POST", AUTOMATION, b"[1, 2]", 400),
        ("POST", AUTOMATION, b'"full"', 400),
        ("POST", AUTOMATION, b'{"apply_proposal": "false"}', 422),
        ("POST", "/v1/retrain", b"{not json", 400),
        ("POST", "/v1/retrain", b"[]", 400),
        ("POST", "/v1/retrain", b'{"force": "false"}', 422),
        ("POST", DEPLOY, b'{"version": true}', 422),
        ("POST", DECISION, b'{"value": null}', 422),
        ("GET", "/v1/reviews?limit=abc", None, 400),
        ("GET", "/v1/reviews?limit=-5", None, 400),
        ("POST", f"/v1/deployments/{DEPLOYMENT}/status", None, 405),
    ]
    wrong = []
    for method, path, body, status in mistakes:
        response = http.request(method, path, content=body, headers=admin)
        if response.status_code != status or set(response.json()) - ERROR_KEYS:
            wrong.append(f"{method} {path} {body!r}: {response.status_code} {response.text}")
    assert not wrong, "\n".join(wrong)
    # The deployment exists here: without a token it is still a 401, as for an unknown one.
    for name in (DEPLOYMENT, "no-such-deployment"):
        response = http.post(f"/v1/deployments/{name}/automation", json={"degree": "human"})
        assert response.status_code == 401, response.text
    assert http.get(AUTOMATION, headers=admin).json()["degree"] == degree  # nothing changed
