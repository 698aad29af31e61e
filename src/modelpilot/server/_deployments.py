"""The deployments' routes: list them, read a rollout's status, and the admin actions
(deploy, rollback, promote, pause, resume, abort, reload)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelpilot.errors import NotFoundError, ValidationFailed
from modelpilot.inference import Deployment
from modelpilot.rollout import RolloutController
from modelpilot.server._errors import NotReady, need
from modelpilot.server._lifespan import start_components
from modelpilot.server._requests import (
    authorize,
    check_types,
    json_object,
    json_response,
    refuse_other_methods,
)
from modelpilot.server._state import ServerState

__all__ = ["DeploymentRoutes", "describe_deployment"]

_ACTIONS = ("deploy", "rollback", "promote", "pause", "resume", "abort")


def describe_deployment(deployment: Deployment) -> dict[str, Any]:
    """A deployment as ``GET /v1/deployments`` lists it."""
    return {
        "name": deployment.name,
        "model": deployment.spec.model,
        "alias": deployment.spec.alias,
        "versions": [
            {
                "version": v.version.version,
                "status": v.version.status,
                "batches": v.batcher.stats.calls,
                "rows": v.batcher.stats.rows,
            }
            for v in deployment.router.versions
        ],
    }


def _version_number(value: Any) -> int:
    # bool is an int to Python; the version columns are 32-bit integers. JSON has one kind of
    # number: 3.0 is the integer 3 (as JSON Schema's "integer" says).
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 2**31:
        raise ValidationFailed([{"field": "version", "expected": "a version number", "got": value}])
    return value


class DeploymentRoutes:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/deployments", self.deployments),
            Route("/v1/deployments/{name}/reload", self.reload, methods=["POST"]),
            Route("/v1/deployments/{name}/status", self.status),
        ]

    def action_routes(self) -> list[BaseRoute]:
        """``POST /v1/deployments/{name}/{action}``: after every other route, whose fixed
        paths (``.../reload``, ``.../automation``) it would match too."""
        return [Route("/v1/deployments/{name}/{action}", self.act, methods=["POST"])]

    def _controller(self) -> RolloutController:
        return need(self.state.controller, "the server is still loading its models")

    async def deployments(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "predict")
        return json_response(
            {"deployments": [describe_deployment(d) for d in self.state.manager.all()]}
        )

    async def reload(self, request: Request) -> Response:
        state = self.state
        who = authorize(state.tokens, request, "admin")
        name = request.path_params["name"]
        loop = asyncio.get_running_loop()
        if not state.ready:
            if state.load_error is None:
                raise NotReady("the server is still loading its models; retry in a moment")
            # Start-up failed (an artifact missing or changed): load everything again now
            # that the cause may be fixed; a failure again is answered with its reason.
            start = functools.partial(start_components, state, raise_errors=True)
            await loop.run_in_executor(None, start)
        loaded = name in {d.name for d in state.manager.all()}
        before = state.manager.get(name).primary.version.version if loaded else None
        deployment = await loop.run_in_executor(None, state.manager.reload, name)
        after = deployment.primary.version.version
        state.project.registry.audit(
            who.name, "deployment.reload", name, {"from": before, "to": after}
        )
        return json_response(describe_deployment(deployment))

    async def status(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "predict")
        name = request.path_params["name"]
        self.state.manager.get(name)
        loop = asyncio.get_running_loop()
        return json_response(await loop.run_in_executor(None, self._controller().status, name))

    async def act(self, request: Request) -> Response:
        name = request.path_params["name"]
        action = request.path_params["action"]
        if action not in _ACTIONS:
            refuse_other_methods(request)  # POST .../status: a 405, not an unknown action
        who = authorize(self.state.tokens, request, "admin")
        if action not in _ACTIONS:
            raise NotFoundError(
                "action", action, hint="use deploy, rollback, promote, pause, resume or abort"
            )
        example = (
            '{"version": 2, "strategy": "canary", "force": false, "reason": "..."}'
            if action == "deploy"
            else '{"reason": "..."} (or no body)'
        )
        body = await json_object(request, example=f"a JSON object such as {example}", empty={})
        deploying = {"strategy": str, "force": bool} if action == "deploy" else {}
        check_types(body, {"reason": str, **deploying})
        version = _version_number(body.get("version")) if action == "deploy" else 0
        ctl = self._controller()
        reason = body.get("reason") or ""
        call: Callable[[], dict[str, Any]]
        if action == "deploy":
            call = functools.partial(
                ctl.deploy,
                name,
                version,
                "canary" if body.get("strategy") is None else body["strategy"],
                actor=who.name,
                force=bool(body.get("force")),
                reason=reason,
            )
        elif action in ("rollback", "promote", "abort"):
            call = functools.partial(getattr(ctl, action), name, actor=who.name, reason=reason)
        else:  # pause, resume
            call = functools.partial(getattr(ctl, action), name, actor=who.name)
        self.state.manager.get(name)
        loop = asyncio.get_running_loop()
        return json_response(await loop.run_in_executor(None, call))
