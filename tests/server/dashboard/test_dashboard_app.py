"""The dashboard's routes in the server's application, in process (no models loaded)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from modelpilot.project import Project
from modelpilot.server import ServingApp, build_state, create_app

DATA = ("/v1/project", "/v1/metrics/names", "/v1/metrics/series?name=request_rate&since=60")


class _Client:
    """GET requests straight into the ASGI application (no lifespan: nothing is loaded)."""

    def __init__(self, app: ServingApp) -> None:
        self.app = app

    def get(self, path: str) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.get(path)

        return asyncio.run(call())


@contextlib.contextmanager
def _client(directory: Path, *, open_predict: bool) -> Iterator[_Client]:
    """The server's application on a project with no model registered."""
    path = directory / "modelpilot.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    spec["serving"]["open_predict"] = open_predict
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    project = Project.open(directory, environ={})
    state = build_state(project)
    try:
        yield _Client(create_app(state))
    finally:
        state.manager.close()
        project.engine.dispose()


@pytest.mark.usefixtures("clean_environ")
def test_with_tokens_the_page_asks_for_one_before_any_data_request(project_dir: Path) -> None:
    with _client(project_dir, open_predict=False) as client:
        page = client.get("/")
        assert page.status_code == 200
        assert '<body data-auth="token">' in page.text
        for path in DATA:
            assert client.get(path).status_code == 401, path


@pytest.mark.usefixtures("clean_environ")
def test_with_open_predict_the_page_and_its_data_need_no_token(project_dir: Path) -> None:
    with _client(project_dir, open_predict=True) as client:
        assert '<body data-auth="open">' in client.get("/").text
        # Before the models are loaded, the series come straight from the database.
        assert client.get("/v1/metrics/names").json() == {"names": []}
        series = client.get(DATA[2]).json()
        assert series["series"] == [] and series["since"] == 60.0
        project = client.get("/v1/project").json()
        assert project["server"]["ready"] is False
        assert project["project"] == "houses"


@pytest.mark.usefixtures("clean_environ")
def test_an_unknown_static_file_is_a_404(project_dir: Path) -> None:
    with _client(project_dir, open_predict=False) as client:
        assert client.get("/static/nope.js").status_code == 404
        assert client.get("/static/app.js").status_code == 200
