"""``GET /openapi.json`` against the server's real route table: every route in it, none made up.

The application runs in process without its lifespan, so nothing is loaded: these tests see
the routes, and the token checks that come before any model.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
import yaml
from starlette.routing import BaseRoute, Match

from modelpilot.datasets import HOUSE_FEATURES
from modelpilot.project import Project
from modelpilot.rollout import RolloutController
from modelpilot.server import ServerState, ServingApp, build_state, create_app
from modelpilot.spec import render_project

PREDICT_TOKEN = "predict-token-for-openapi"
ADMIN_TOKEN = "admin-token-for-openapi"
REVIEW_TOKEN = "review-token-for-openapi"
ENVIRON = {
    "MODELPILOT_PREDICT_TOKEN": PREDICT_TOKEN,
    "MODELPILOT_ADMIN_TOKEN": ADMIN_TOKEN,
    "MODELPILOT_REVIEW_TOKEN": REVIEW_TOKEN,
}
# Who may call these, beside their documented role: the requester reads its review, and
# every token asks who it is.
ANY_TOKEN = {("GET", "/v1/reviews/{id}"), ("GET", "/v1/whoami")}
# ServingApp answers these itself, before Starlette's router sees the request.
FAST_PATHS = {
    ("POST", "/v1/deployments/{name}/predict"),
    ("POST", "/v2/models/{name}/infer"),
    ("POST", "/v2/models/{name}/versions/{version}/infer"),
}
ACTION_ROUTE = "/v1/deployments/{name}/{action}"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
SAMPLE = "sample"  # every path parameter's value in a request


class _Client:
    """Requests straight into the ASGI application."""

    def __init__(self, app: ServingApp) -> None:
        self.app = app

    def request(
        self, method: str, path: str, *, token: str | None = None, json: Any = None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}

        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.request(method, path, headers=headers, json=json)

        return asyncio.run(call())


@pytest.fixture(scope="module")
def project_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with no model registered: the route table does not depend on one."""
    directory = tmp_path_factory.mktemp("openapi")
    text = render_project(
        project="houses", task="regression", target="price", features=HOUSE_FEATURES
    )
    (directory / "modelpilot.yaml").write_text(text, encoding="utf-8")
    return directory


@contextlib.contextmanager
def _serving(directory: Path, *, open_predict: bool = False) -> Iterator[ServerState]:
    path = directory / "modelpilot.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["serving"]["open_predict"] = open_predict
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    project = Project.open(directory, environ=ENVIRON)
    state = build_state(project)
    try:
        yield state
    finally:
        state.manager.close()
        project.engine.dispose()


def _document(client: _Client) -> dict[str, Any]:
    response = client.request("GET", "/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", SAMPLE, path)


def _served_by(app: ServingApp, method: str, path: str) -> BaseRoute | None:
    """The Starlette route that answers ``method path``, as its router would pick it."""
    scope = {"type": "http", "method": method, "path": _concrete(path), "root_path": ""}
    for route in app.starlette.routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None


def _methods(route: BaseRoute) -> set[str]:
    # HEAD comes with every GET route; a mount (the static files) answers GET.
    methods: set[str] = getattr(route, "methods", None) or {"GET"}
    return methods - {"HEAD"}


def _role(operation: dict[str, Any]) -> str | None:
    security = operation.get("security", [])
    return str(security[0]["bearer"][0]) if security else None


@pytest.mark.usefixtures("clean_environ")
def test_every_route_of_the_server_is_in_the_document(project_directory: Path) -> None:
    with _serving(project_directory) as state:
        app = create_app(state)
        operations = _operations(_document(_Client(app)))
    covered = set()
    for method, path in operations:
        route = _served_by(app, method, path)
        if route is not None:
            covered.add((method, id(route)))
    missing = [
        f"{method} {getattr(route, 'path', route)}"
        for route in app.starlette.routes
        for method in sorted(_methods(route))
        if (method, id(route)) not in covered
    ]
    missing += [f"{method} {path}" for method, path in sorted(FAST_PATHS - set(operations))]
    assert not missing, f"routes missing from /openapi.json: {missing}"


@pytest.mark.usefixtures("clean_environ")
def test_every_documented_operation_is_served(project_directory: Path) -> None:
    with _serving(project_directory) as state:
        app = create_app(state)
        operations = _operations(_document(_Client(app)))
    made_up = [
        f"{method} {path}"
        for method, path in operations
        if (method, path) not in FAST_PATHS and _served_by(app, method, path) is None
    ]
    assert not made_up, f"/openapi.json documents operations no route serves: {made_up}"


@pytest.mark.usefixtures("clean_environ")
def test_the_fast_paths_are_answered_before_starlette(project_directory: Path) -> None:
    with _serving(project_directory) as state:
        client = _Client(create_app(state))
        for method, path in sorted(FAST_PATHS):
            response = client.request(method, _concrete(path), json={})
            # Starlette would answer 404 (V2) or ask for an admin token (the action route).
            assert response.status_code == 401, (path, response.text)
            assert "needs a predict token" in response.json()["message"], path


@pytest.mark.usefixtures("clean_environ")
def test_each_operation_asks_for_the_token_role_it_documents(project_directory: Path) -> None:
    with _serving(project_directory) as state:
        client = _Client(create_app(state))
        operations = _operations(_document(client))
        for (method, path), operation in sorted(operations.items()):
            role = _role(operation)
            anonymous = client.request(method, _concrete(path))
            with_predict = client.request(method, _concrete(path), token=PREDICT_TOKEN)
            with_review = client.request(method, _concrete(path), token=REVIEW_TOKEN)
            where = f"{method} {path} (documented role {role}): {anonymous.text[:200]}"
            if role is None:
                assert anonymous.status_code not in (401, 403), where
            else:
                assert anonymous.status_code == 401, where
            if role == "admin":
                assert with_predict.status_code == 403, where
                assert with_review.status_code == 403, where
            elif role == "predict":
                assert with_predict.status_code not in (401, 403), where
                if (method, path) not in ANY_TOKEN:
                    assert with_review.status_code == 403, where
            elif role == "review":
                assert with_predict.status_code == 403, where
                assert with_review.status_code not in (401, 403), where


@pytest.mark.usefixtures("clean_environ")
def test_with_open_predict_the_predict_operations_need_no_token(project_directory: Path) -> None:
    with _serving(project_directory, open_predict=True) as state:
        operations = _operations(_document(_Client(create_app(state))))
    predict = operations[("POST", "/v1/deployments/{name}/predict")]
    assert predict["security"] == [{"bearer": ["predict"]}, {}]
    assert operations[("POST", "/v1/retrain")]["security"] == [{"bearer": ["admin"]}]


@pytest.mark.usefixtures("clean_environ")
def test_the_documented_admin_actions_are_the_ones_the_server_knows(
    project_directory: Path,
) -> None:
    with _serving(project_directory) as state:
        app = create_app(state)
        client = _Client(app)
        documented = {
            path.rsplit("/", 1)[1]
            for method, path in _operations(_document(client))
            if (method, path) not in FAST_PATHS
            and getattr(_served_by(app, method, path), "path", None) == ACTION_ROUTE
        }
        # A stand-in controller: the handler dispatches the action, then looks the deployment
        # up, which is not loaded, so every request ends in a 404 that says which it was.
        state.controller = mock.Mock(spec=RolloutController)
        for action in sorted(documented):
            response = client.request(
                "POST", f"/v1/deployments/{SAMPLE}/{action}", token=ADMIN_TOKEN, json={"version": 2}
            )
            assert response.status_code == 404, (action, response.text)
            assert response.json()["message"].startswith(f"deployment '{SAMPLE}'"), action
        unknown = client.request(
            "POST", f"/v1/deployments/{SAMPLE}/nonsense", token=ADMIN_TOKEN, json={"version": 2}
        ).json()["message"]
    assert unknown.startswith("action 'nonsense' was not found")
    hint = unknown.split("; use ", 1)[1]
    assert set(re.findall(r"[a-z_]+", hint)) - {"or"} == documented


@pytest.mark.parametrize("open_predict", [False, True])
@pytest.mark.usefixtures("clean_environ")
def test_the_document_is_valid_openapi_3_1(project_directory: Path, open_predict: bool) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    with _serving(project_directory, open_predict=open_predict) as state:
        document = _document(_Client(create_app(state)))
    assert document["openapi"] == "3.1.0"
    validator.validate(document)


@pytest.mark.usefixtures("clean_environ")
def test_the_error_schema_is_what_an_error_response_holds(project_directory: Path) -> None:
    with _serving(project_directory) as state:
        client = _Client(create_app(state))
        schema = _document(client)["components"]["schemas"]["Error"]
        body = client.request("POST", "/v1/retrain").json()  # no token: 401
    assert set(schema["required"]) <= set(body) <= set(schema["properties"])


@pytest.mark.usefixtures("clean_environ")
def test_each_answer_has_a_documented_status_and_fits_its_schema(project_directory: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    with _serving(project_directory) as state:
        client = _Client(create_app(state))
        document = _document(client)
        wrong = []
        for (method, path), operation in sorted(_operations(document).items()):
            for token in (None, ADMIN_TOKEN):
                response = client.request(method, _concrete(path), token=token)
                documented = operation["responses"].get(str(response.status_code))
                if documented is None:
                    wrong.append(f"{method} {path}: {response.status_code} is not documented")
                    continue
                media = documented.get("content", {}).get("application/json")
                if media is None or "schema" not in media:
                    continue
                # The schema's $refs point into the document: validate with it at the root.
                schema = {**media["schema"], "components": document["components"]}
                errors = jsonschema.Draft202012Validator(schema).iter_errors(response.json())
                wrong += [f"{method} {path} {response.status_code}: {e.message}" for e in errors]
    assert not wrong, "\n".join(wrong)
