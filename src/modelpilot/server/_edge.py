"""The routes of a fleet of edge devices (``modelpilot.edge``; docs/edge.md).

- ``POST /v1/edge/{name}/predictions`` (predict): a device's log, uploaded; stored with
  ``source="edge"`` and its ``device``, once per prediction id (retries are harmless).
- ``GET /v1/edge/{name}/assignment?device=ID`` (predict): the version this device should
  run, signed with the project's key, and the bundle's sha256 and address.
- ``GET /v1/edge/{name}/bundles/{version}`` (predict): the signed bundle (a zip), exported on
  first request.
- ``GET /v1/edge/{name}/devices`` (predict): the fleet: its version, its rollout, each device.
- ``GET``/``POST /v1/edge/{name}/rollout`` (predict / admin): an edge canary, its gates; start
  one (``{"version": V, "share": 50}``). ``POST .../rollout/promote|rollback`` (admin).

Devices hold predict tokens, as any client that predicts. The work (database, exports) runs in
worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelpilot.edge import (
    MAX_RECORDS,
    BundleCache,
    DevicePoints,
    EdgeFleet,
    SigningKey,
    ingest,
    load_signing_key,
)
from modelpilot.errors import NotFoundError, ValidationFailed
from modelpilot.registry import ModelVersion
from modelpilot.server._requests import (
    BadQueryParameter,
    authorize,
    check_types,
    json_object,
    json_response,
)
from modelpilot.server._state import ServerState
from modelpilot_edge import DEVICE_PATTERN, sign_document

__all__ = ["EdgeRoutes"]

_ACTIONS = {"promote": "promoted", "rollback": "rolled_back"}
_UPLOAD = '{"device": "pos-17", "dropped": 0, "records": [{"id": ..., "ts": ..., ...}]}'


def _device(value: Any) -> str:
    if not isinstance(value, str) or not DEVICE_PATTERN.match(value):
        raise ValidationFailed(
            [
                {
                    "field": "device",
                    "expected": "1 to 64 letters, digits and . _ : - (starting with a letter "
                    "or digit)",
                    "got": value,
                }
            ]
        )
    return value


class EdgeRoutes:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        project = state.project
        self.fleet = EdgeFleet(project, clock=state.clock)
        self.bundles = BundleCache(project, trust=state.manager.trust, clock=state.clock)
        self.points = DevicePoints(project, clock=state.clock)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/edge/{name}/predictions", self.upload, methods=["POST"]),
            Route("/v1/edge/{name}/assignment", self.assignment),
            Route("/v1/edge/{name}/bundles/{version}", self.bundle),
            Route("/v1/edge/{name}/devices", self.devices),
            Route("/v1/edge/{name}/rollout", self.rollout, methods=["GET", "POST"]),
            Route("/v1/edge/{name}/rollout/{action}", self.end_rollout, methods=["POST"]),
        ]

    async def _run(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(function, *args, **kwargs))

    def _key(self) -> SigningKey:
        project = self.state.project
        return load_signing_key(project.directory, project.environ)

    # ---- uploads --------------------------------------------------------------------------
    async def upload(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "predict")
        body = await json_object(request, example=_UPLOAD)
        name = request.path_params["name"]
        check_types(body, {"dropped": int})
        device = _device(body.get("device"))
        records = body.get("records")
        if not isinstance(records, list) or not 0 < len(records) <= MAX_RECORDS:
            got = f"{len(records)} records" if isinstance(records, list) else type(records).__name__
            raise ValidationFailed(
                [
                    {
                        "field": "records",
                        "expected": f"a list of 1 to {MAX_RECORDS} records",
                        "got": got,
                    }
                ]
            )
        dropped = int(body.get("dropped") or 0)
        result = await self._run(self._ingest, name, device, records, dropped)
        return json_response({"deployment": name, "device": device, **result})

    def _ingest(self, name: str, device: str, records: list[Any], dropped: int) -> dict[str, int]:
        spec = self.fleet.deployment(name)
        project = self.state.project
        model = spec.model or project.spec.model_name
        versions: dict[int, ModelVersion | None] = {}

        def version_of(number: int) -> ModelVersion | None:
            if number not in versions:
                try:
                    versions[number] = project.registry.get(model, number)
                except NotFoundError:
                    versions[number] = None
            return versions[number]

        result = ingest(
            project.prediction_log,
            model=model,
            device=device,
            records=records,
            version_of=version_of,
        )
        now = self.state.clock()
        self.fleet.store.seen(
            name,
            device,
            now=now,
            uploaded=result.accepted,
            duplicates=result.duplicates,
            dropped=dropped,
        )
        self.points.after_upload(name, model, device, uploaded=result.accepted, dropped=dropped)
        self.fleet.judge(name)
        return {"accepted": result.accepted, "duplicates": result.duplicates}

    # ---- assignments and bundles ----------------------------------------------------------
    async def assignment(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "predict")
        name = request.path_params["name"]
        device = request.query_params.get("device", "")
        if not DEVICE_PATTERN.match(device):
            raise BadQueryParameter(
                "device",
                "the device's id (1 to 64 letters, digits and . _ : -)",
                device,
                f"GET /v1/edge/{name}/assignment?device=pos-17",
            )
        return json_response(await self._run(self._assignment, name, device))

    def _assignment(self, name: str, device: str) -> dict[str, Any]:
        model, version, rollout = self.fleet.version_for(name, device)
        key = self._key()
        path, digest = self.bundles.bundle(key, name, model, version)
        now = self.state.clock()
        document = {
            "deployment": name,
            "device": device,
            "model": model,
            "version": version,
            "rollout": None if rollout is None else rollout.id,
            "bundle": {
                "sha256": digest,
                "bytes": path.stat().st_size,
                "url": f"/v1/edge/{name}/bundles/{version}",
            },
            "issued_at": now,
        }
        self.fleet.store.seen(name, device, now=now, assigned=version)
        return sign_document(key.private, document)

    async def bundle(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "predict")
        name = request.path_params["name"]
        raw = request.path_params["version"]
        if not (raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**31):
            raise NotFoundError("bundle", f"{name}/{raw}", hint="the version is a number")
        data = await self._run(self._bundle_bytes, name, int(raw))
        return Response(data, media_type="application/zip")

    def _bundle_bytes(self, name: str, version: int) -> bytes:
        spec = self.fleet.deployment(name)
        model = spec.model or self.state.project.spec.model_name
        self.state.project.registry.get(model, version)  # 404 for a version that is not there
        path, _ = self.bundles.bundle(self._key(), name, model, version)
        return path.read_bytes()

    # ---- the fleet and its rollouts -------------------------------------------------------
    async def devices(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "predict")
        return json_response(await self._run(self.fleet.status, request.path_params["name"]))

    async def rollout(self, request: Request) -> Response:
        name = request.path_params["name"]
        if request.method == "GET":
            authorize(self.state.tokens, request, "predict")
            return json_response(await self._run(self.fleet.status, name))
        who = authorize(self.state.tokens, request, "admin")
        body = await json_object(request, example='{"version": 3, "share": 50, "force": false}')
        check_types(body, {"version": int, "force": bool})
        version, share = body.get("version"), body.get("share", 50)
        problems = []
        if not isinstance(version, int) or isinstance(version, bool) or not 0 < version < 2**31:
            problems.append({"field": "version", "expected": "a version number", "got": version})
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= 100:
            problems.append(
                {"field": "share", "expected": "a percentage in (0, 100]", "got": share}
            )
        if problems:
            raise ValidationFailed(problems)
        force = bool(body.get("force", False))
        await self._run(self.fleet.start, name, version, float(share), actor=who.name, force=force)
        return json_response(await self._run(self.fleet.status, name))

    async def end_rollout(self, request: Request) -> Response:
        name, action = request.path_params["name"], request.path_params["action"]
        who = authorize(self.state.tokens, request, "admin")
        if action not in _ACTIONS:
            raise NotFoundError("action", action, hint="use promote or rollback")
        body = await json_object(request, example='{"reason": "..."} (or no body)', empty={})
        check_types(body, {"reason": str})
        reason = body.get("reason") or f"{action} by {who.name}"
        await self._run(self.fleet.end, name, _ACTIONS[action], actor=who.name, reason=reason)
        return json_response(await self._run(self.fleet.status, name))
