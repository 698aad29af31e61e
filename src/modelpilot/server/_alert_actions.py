"""What an admin does with an alert: acknowledge it, silence it for a while (or lift the
silence). Both are audited; ``GET /v1/alerts`` shows them (``modelpilot.alerting.AlertHandling``).
"""

from __future__ import annotations

import asyncio
import functools
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelpilot.alerting import AlertHandling
from modelpilot.errors import NotFoundError, ValidationFailed
from modelpilot.server._errors import need
from modelpilot.server._requests import authorize, check_types, json_object, json_response
from modelpilot.server._state import ServerState

__all__ = ["AlertRoutes"]


def _duration(body: dict[str, Any]) -> float:
    value = body.get("duration_s")
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValidationFailed(
            [
                {
                    "field": "duration_s",
                    "expected": "seconds to silence the alert for (0 lifts the silence)",
                    "got": value if "duration_s" in body else "(missing)",
                }
            ]
        )
    return float(value)


class AlertRoutes:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/alerts/{id}/acknowledge", self.acknowledge, methods=["POST"]),
            Route("/v1/alerts/{id}/silence", self.silence, methods=["POST"]),
        ]

    def _handling(self, request: Request) -> tuple[AlertHandling, int]:
        raw = request.path_params["id"]
        if not (raw.isascii() and raw.isdigit()):
            raise NotFoundError("alert", raw, hint="an alert's id is a number (GET /v1/alerts)")
        engine = need(self.state.alerts, "alerts start once the deployments are loaded")
        handling = need(engine.handling, "alerts are kept in memory only")
        return handling, int(raw)

    async def acknowledge(self, request: Request) -> Response:
        who = authorize(self.state.tokens, request, "admin")
        handling, alert_id = self._handling(request)
        loop = asyncio.get_running_loop()
        call = functools.partial(handling.acknowledge, alert_id, actor=who.name)
        return json_response((await loop.run_in_executor(None, call)).to_dict())

    async def silence(self, request: Request) -> Response:
        who = authorize(self.state.tokens, request, "admin")
        example = 'a JSON object such as {"duration_s": 3600, "reason": "known, fix deploying"}'
        body = await json_object(request, example=example)
        check_types(body, {"reason": str})
        duration = _duration(body)
        handling, alert_id = self._handling(request)
        loop = asyncio.get_running_loop()
        call = functools.partial(
            handling.silence,
            alert_id,
            duration_s=duration,
            actor=who.name,
            reason=body.get("reason") or "",
        )
        return json_response((await loop.run_in_executor(None, call)).to_dict())
