"""Every route but the two prediction routes, as one Starlette app (``ServingApp`` answers
those itself), with the handlers that turn errors into responses (``_errors.py``)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from modelpilot.errors import ModelpilotError
from modelpilot.server._alert_actions import AlertRoutes
from modelpilot.server._deployments import DeploymentRoutes
from modelpilot.server._drift import DriftRoutes
from modelpilot.server._edge import EdgeRoutes
from modelpilot.server._errors import MethodNotAllowed, NoRoute, error_response
from modelpilot.server._feedback import FeedbackRoutes
from modelpilot.server._health import HealthRoutes
from modelpilot.server._history import HistoryRoutes
from modelpilot.server._lifespan import lifespan
from modelpilot.server._models import ModelRoutes
from modelpilot.server._observe import ObservationRoutes
from modelpilot.server._people import PeopleRoutes
from modelpilot.server._state import ServerState
from modelpilot.server.dashboard import dashboard_routes

__all__ = ["starlette_app"]


def starlette_app(state: ServerState) -> Starlette:
    """The Starlette app of a server on ``state``."""
    deployments = DeploymentRoutes(state)
    routes: list[BaseRoute] = [
        *HealthRoutes(state).routes(),
        *deployments.routes(),
        *FeedbackRoutes(state).routes(),
        *PeopleRoutes(state).routes(),
        *ObservationRoutes(state).routes(),
        *EdgeRoutes(state).routes(),  # devices: uploads, assignments, bundles, rollouts
        # The dashboard's screens: registry, history, drift detail, alert handling.
        *ModelRoutes(state).routes(),
        *HistoryRoutes(state).routes(),
        *DriftRoutes(state).routes(),
        *AlertRoutes(state).routes(),
        *deployments.action_routes(),
        *dashboard_routes(state),  # GET /, /static, /v1/metrics/*, /v1/project
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan(state),
        # ModelpilotError by name: Starlette hands a handler of Exception only to its
        # ServerErrorMiddleware, which answers, then raises again (and logs a traceback).
        exception_handlers={
            ModelpilotError: _on_error,
            Exception: _on_error,
            404: _not_found,
            405: _method_not_allowed,
        },
    )


def _response(request: Request, exc: Exception, *, routed: bool = True) -> Response:
    # The Open Inference Protocol's error shape on its routes; a path no route serves has none.
    path = request.url.path
    status, body = error_response(exc, v2=routed and path.startswith("/v2/"), where=path)
    # Past a body limit the rest of the body is still on its way: close the connection
    # (uvicorn does on this header) rather than read it to find the next request.
    headers = {"connection": "close"} if status == 413 else None
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def _on_error(request: Request, exc: Exception) -> Response:
    return _response(request, exc)


async def _not_found(request: Request, exc: Exception) -> Response:
    return _response(request, NoRoute(request.method, request.url.path), routed=False)


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    # The router's Allow header lists a set, in no particular order.
    header = (getattr(exc, "headers", None) or {}).get("Allow", "")
    allow = ", ".join(sorted(m.strip() for m in header.split(",") if m.strip()))
    refused = MethodNotAllowed(request.method, request.url.path, allow)
    response = _response(request, refused, routed=False)
    response.headers["Allow"] = allow  # RFC 9110: a 405 says which methods are allowed
    return response
