"""The dashboard's routes: the page at ``/``, its static files, and the JSON it polls.

The page is hand-written HTML, CSS and JavaScript modules shipped in the package
(``static/``): no build step, no library, nothing fetched from the internet, so it works on a
server without outside access. The HTML itself holds no data and needs no token; the JSON its
screens read needs a predict token (or none with ``serving.open_predict: true``), the review
queue a review token, handling alerts an admin token.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from modelpilot._version import __version__
from modelpilot.monitoring import TimeSeriesStore
from modelpilot.server._observe import ALERTS_PATH
from modelpilot.server.dashboard._series import SeriesQuery, series_payload

if TYPE_CHECKING:
    from modelpilot.server._state import ServerState

__all__ = ["dashboard_routes"]

# The page loads only its own script and style sheet and talks only to its own server: a
# script injected through a metric label or an alert text could not run, nor call out.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def _json(value: Any) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")


def dashboard_routes(state: ServerState) -> list[BaseRoute]:
    """The routes the server adds for the dashboard.

    ``GET /`` (the page), ``/static/{file}`` (its scripts and style sheet),
    ``GET /v1/metrics/names``, ``GET /v1/metrics/series`` and ``GET /v1/project``.
    """
    page = (resources.files("modelpilot.server.dashboard") / "static" / "index.html").read_text(
        encoding="utf-8"
    )
    fallback: list[TimeSeriesStore] = []

    def allow(request: Request) -> None:
        state.tokens.authenticate(request.headers.get("authorization"), role="predict")

    def store() -> TimeSeriesStore:
        # The monitor's store once the models are loaded; before that (or without metrics)
        # the same table, read directly, so the charts show the history of earlier runs.
        if state.monitor is not None:
            series: TimeSeriesStore = state.monitor.series
            return series
        if not fallback:
            fallback.append(TimeSeriesStore(state.project.engine, clock=state.clock))
        return fallback[0]

    async def index(request: Request) -> Response:
        # The one server-side value of the page: whether it must ask for a token before its
        # first request (a request bound to fail would show up as an error in the console).
        auth = "open" if state.tokens.open_predict else "token"
        return HTMLResponse(
            page.replace("__AUTH__", auth),
            headers={"content-security-policy": _CSP, "cache-control": "no-cache"},
        )

    async def names(request: Request) -> Response:
        allow(request)
        loop = asyncio.get_running_loop()
        return _json({"names": await loop.run_in_executor(None, store().names)})

    async def series(request: Request) -> Response:
        allow(request)
        retention = state.project.spec.monitoring.retention_days * 86400
        query = SeriesQuery.from_params(request.query_params, max_since=retention)
        now = state.clock()
        loop = asyncio.get_running_loop()
        # One query at a time, off the event loop, encoded there too: several large ones at
        # once cost the predictions' event loop its share of the interpreter.
        body = await loop.run_in_executor(_QUERIES, _payload, store(), query, now)
        return Response(body, media_type="application/json")

    async def project(request: Request) -> Response:
        allow(request)
        routes = getattr(request.app, "routes", [])
        alerts = any(getattr(route, "path", None) == ALERTS_PATH for route in routes)
        return _json(describe_project(state, alerts=alerts))

    return [
        Route("/", index),
        Mount("/static", app=StaticFiles(packages=[("modelpilot.server.dashboard", "static")])),
        Route("/v1/metrics/names", names),
        Route("/v1/metrics/series", series),
        Route("/v1/project", project),
    ]


_QUERIES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelpilot-series")


def _payload(store: TimeSeriesStore, query: SeriesQuery, now: float) -> bytes:
    return orjson.dumps(series_payload(store, query, now=now))


def describe_project(state: ServerState, *, alerts: bool) -> dict[str, Any]:
    """What ``GET /v1/project`` answers: the project's name, task, targets and objectives."""
    spec = state.project.spec
    monitoring = spec.monitoring
    return {
        "project": spec.project,
        "task": spec.task,
        "target": spec.target,
        "model": spec.model_name,
        "features": [{"name": f.name, "type": f.type} for f in spec.features],
        "key_metrics": [
            {"name": m.name, "op": m.op, "target": m.target, "text": str(m)}
            for m in spec.key_metrics
        ],
        "service_objectives": spec.service_objectives.model_dump(),
        "monitoring": {
            "interval_s": monitoring.interval_s,
            "drift_interval_s": monitoring.drift.interval_s,
            "retention_days": monitoring.retention_days,
        },
        "deployments": [d.name for d in spec.deployment_specs],
        "endpoints": {"alerts": alerts},
        "server": {"version": __version__, "started_at": state.started_at, "ready": state.ready},
    }
