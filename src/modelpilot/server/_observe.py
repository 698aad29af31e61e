"""What the server tells about itself: Prometheus metrics, alerts, the OpenAPI document."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelpilot.monitoring import CONTENT_TYPE
from modelpilot.server._errors import need
from modelpilot.server._openapi import openapi_document
from modelpilot.server._requests import authorize, json_response
from modelpilot.server._state import ServerState

__all__ = ["ALERTS_PATH", "ObservationRoutes"]

ALERTS_PATH = "/v1/alerts"


class ObservationRoutes:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [
            Route(ALERTS_PATH, self.alerts),
            Route("/openapi.json", self.openapi),
            Route("/metrics", self.metrics),
        ]

    async def metrics(self, request: Request) -> Response:
        metrics = self.state.metrics
        body = metrics.exposition() if metrics is not None else b""
        return Response(body, media_type=CONTENT_TYPE)

    async def alerts(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "predict")
        engine = need(self.state.alerts, "alerts start once the deployments are loaded")
        loop = asyncio.get_running_loop()
        return json_response(await loop.run_in_executor(None, engine.snapshot))

    async def openapi(self, request: Request) -> Response:
        return json_response(openapi_document(self.state))
