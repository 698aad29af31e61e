"""Liveness, readiness and the Open Inference Protocol's server and model metadata."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelpilot._version import __version__
from modelpilot.errors import NotFoundError
from modelpilot.inference import Deployment
from modelpilot.server._errors import NotReady
from modelpilot.server._requests import json_response
from modelpilot.server._state import ServerState
from modelpilot.server._v2 import model_metadata

__all__ = ["HealthRoutes"]


class HealthRoutes:
    """``/healthz``, ``/readyz`` and the V2 ``/v2...`` metadata routes (no token)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/healthz", self.healthz),
            Route("/readyz", self.readyz),
            Route("/v2/health/live", self.v2_live),
            Route("/v2/health/ready", self.v2_ready),
            Route("/v2", self.v2_server),
            Route("/v2/models/{name}", self.v2_model),
            Route("/v2/models/{name}/ready", self.v2_model_ready),
            Route("/v2/models/{name}/versions/{version}", self.v2_model),
        ]

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "live"})

    def _insider(self, request: Request) -> bool:
        # Without a token, these routes tell only what they are for (ready or not, this model
        # exists or not): deployment names and why one failed (artifact paths, sha256
        # prefixes) are for token holders.
        return self.state.tokens.holds_token(request.headers.get("authorization"))

    async def readyz(self, request: Request) -> Response:
        state = self.state
        if state.draining:  # a load balancer stops sending requests; those that come are served
            return json_response({"status": "draining"}, 503)
        insider = self._insider(request)
        if state.ready:
            body: dict[str, Any] = {"status": "ready"}
            if insider:
                body["deployments"] = [d.name for d in state.manager.all()]
                if state.manager.load_errors:
                    body["failed"] = dict(state.manager.load_errors)
            return json_response(body)
        status = "loading" if state.load_error is None else "failed"
        body = {"status": status}
        if insider:
            body["error"] = state.load_error
        elif state.load_error is not None:
            body["error"] = "loading the deployments failed; a token holder sees why"
        return json_response(body, 503)

    def _find(self, request: Request) -> Deployment:
        try:
            return self.state.manager.find_by_model(request.path_params["name"])
        except NotFoundError as exc:
            if self._insider(request):
                raise
            raise NotFoundError("model", request.path_params["name"]) from exc

    async def v2_live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def v2_ready(self, request: Request) -> Response:
        ready = self.state.ready and not self.state.draining
        return json_response({"ready": ready}, 200 if ready else 503)

    async def v2_server(self, request: Request) -> Response:
        return json_response(
            {"name": "modelpilot", "version": __version__, "extensions": ["binary_data"]}
        )

    async def v2_model(self, request: Request) -> Response:
        state = self.state
        if not state.ready:
            raise NotReady("the server is still loading its models")
        deployment = self._find(request)
        version = deployment.primary.version
        return json_response(
            model_metadata(
                request.path_params["name"],
                [v.version.version for v in deployment.router.versions],
                deployment.primary.validator.features,  # what requests send (a pipeline's own)
                flavor=version.flavor,
                task=version.task,
                classes=deployment.primary.runtime.classes,
            )
        )

    async def v2_model_ready(self, request: Request) -> Response:
        name = request.path_params["name"]
        if not self.state.ready:
            return json_response({"name": name, "ready": False}, 503)
        self._find(request)
        return json_response({"name": name, "ready": True})
