"""The ASGI application: a lean hand-written path for predictions, Starlette for the rest.

Predictions (``POST /v1/deployments/{name}/predict`` and ``POST /v2/models/{name}/infer``)
are handled by a raw ASGI function: Starlette's request and response objects and its router
cost about as much per request as a micro-batched model call, and at 64 connections that
overhead, not the model, bounds throughput (``benchmarks/serving.py``). Everything else
(health, metadata, feedback, admin, OpenAPI, the dashboard) goes through Starlette
(``_routes.py``), where clarity matters more.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from modelpilot.errors import ModelpilotError
from modelpilot.server._connections import FD_RESERVE, ConnectionGuard, descriptor_limit
from modelpilot.server._errors import BodyTooLarge, ModelFailed, NotReady, dumps, error_response
from modelpilot.server._predict import Predictor
from modelpilot.server._routes import starlette_app
from modelpilot.server._state import ServerState
from modelpilot.server._v1 import decode_v1, encode_v1
from modelpilot.server._v2 import decode_request, encode_response, header_length
from modelpilot.types import Message, Receive, Scope, Send

__all__ = ["ServingApp", "create_app"]

logger = logging.getLogger("modelpilot.server")

Headers = list[tuple[bytes, bytes]]
_JSON: Headers = [(b"content-type", b"application/json")]
_WANTED_HEADERS = frozenset(
    {b"authorization", b"x-modelpilot-key", b"inference-header-content-length"}
)


async def _send(send: Send, status: int, body: bytes, headers: Headers | None = None) -> None:
    all_headers = list(headers or _JSON)
    all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


def _limited(scope: Scope, receive: Receive, refusal: BodyTooLarge) -> Receive:
    """``receive`` that raises ``refusal`` (a 413) once the body passes its limit: at once
    when the request declares a larger ``content-length``, else as the bytes arrive, so no
    route ever holds more than its limit in memory."""
    limit = refusal.limit
    for key, value in scope["headers"]:
        if key == b"content-length" and value.isdigit() and int(value) > limit:
            size = [limit + 1]
            break
    else:
        size = [0]

    async def receive_limited() -> Message:
        if size[0] > limit:
            raise refusal
        message = await receive()
        if message["type"] == "http.request":
            size[0] += len(message.get("body", b""))
            if size[0] > limit:
                raise refusal
        return message

    return receive_limited


class ServingApp:
    """The ASGI callable ``modelpilot serve`` runs."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        settings = state.project.spec.serving
        self.max_body = settings.max_body_bytes
        self.feedback_limit = BodyTooLarge(
            settings.max_feedback_body_bytes,
            "serving.max_feedback_body_bytes",
            "send the labels in several requests",
        )
        # A device's upload (up to 2,000 logged predictions) is bulk data like a prediction
        # request, not a small admin object: it gets the prediction routes' limit.
        self.upload_limit = BodyTooLarge(
            settings.max_body_bytes,
            "serving.max_body_bytes",
            "upload the device's log in several requests",
        )
        self.other_limit = BodyTooLarge(
            settings.max_other_body_bytes,
            "serving.max_other_body_bytes",
            "this endpoint takes a small JSON object",
        )
        self.predictor = Predictor(state)
        self.starlette = starlette_app(state)
        self.connection_guard = ConnectionGuard(
            max_connections=settings.max_connections or max(64, descriptor_limit() - FD_RESERVE),
            header_timeout=settings.header_timeout_s,
        )

    def route(self, path: str) -> tuple[str, bool] | None:
        """``(name, is_v2)`` when ``path`` is a prediction route (``POST`` only), else None."""
        if path.startswith("/v1/deployments/") and path.endswith("/predict"):
            name = path[len("/v1/deployments/") : -len("/predict")]
            if name and "/" not in name:
                return name, False
        if path.startswith("/v2/models/") and path.endswith("/infer"):
            name = path[len("/v2/models/") : -len("/infer")]
            if name.count("/") == 2 and "/versions/" in "/" + name:
                name = name.split("/")[0]  # /v2/models/{name}/versions/{v}/infer
            if name and "/" not in name:
                return name, True
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            route = self.route(scope["path"])
            if route is not None:
                status, headers, payload = await self.respond(
                    route[0],
                    route[1],
                    scope["headers"],
                    functools.partial(self._read_body, scope, receive),
                )
                await _send(send, status, payload, headers)
                return
        if scope["type"] == "http":
            path = scope["path"]
            if path == "/v1/feedback":
                limit = self.feedback_limit
            elif path.startswith("/v1/edge/") and path.endswith("/predictions"):
                limit = self.upload_limit
            else:
                limit = self.other_limit
            receive = _limited(scope, receive, limit)
        await self.starlette(scope, receive, send)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        for key, value in scope["headers"]:
            if key == b"content-length" and value.isdigit() and int(value) > self.max_body:
                raise BodyTooLarge(self.max_body)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise asyncio.CancelledError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise BodyTooLarge(self.max_body)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def respond(
        self,
        name: str,
        v2: bool,
        headers: Sequence[tuple[bytes, bytes]],
        body: Callable[[], Awaitable[bytes]],
    ) -> tuple[int, Headers, bytes]:
        """Answer one prediction request: ``(status, headers, body)``.

        The single entry point of both ways a request arrives: through ASGI (``__call__``),
        and through the server's own HTTP protocol (``_http.PredictionProtocol``), which
        skips ASGI's per-request machinery on these two routes. ``body`` reads the request
        body; it is awaited only once the caller is authenticated. The request's metrics are
        recorded here and never fail it.
        """
        metrics = self.state.metrics
        info: dict[str, Any] = {
            "deployment": "(unknown)",
            "version": "",
            "outcome": "ok",
            "instances": 0,
        }
        started = time.perf_counter()
        try:
            return await self._serve(name, v2, headers, body, info)
        finally:
            if metrics is not None:
                try:
                    metrics.observe_request(
                        info["deployment"],
                        info["version"],
                        info["outcome"],
                        time.perf_counter() - started,
                        instances=info["instances"],
                        started=info.get("started", False),
                    )
                except Exception:  # a metric must never fail a prediction
                    logger.exception("recording request metrics failed")

    async def _serve(
        self,
        name: str,
        v2: bool,
        request_headers: Sequence[tuple[bytes, bytes]],
        read_body: Callable[[], Awaitable[bytes]],
        info: dict[str, Any],
    ) -> tuple[int, Headers, bytes]:
        state = self.state
        state.counters.requests += 1
        try:
            headers = {k: v for k, v in request_headers if k in _WANTED_HEADERS}
            auth = headers.get(b"authorization")
            state.tokens.authenticate(auth.decode("latin-1") if auth else None, role="predict")
            if not state.ready and state.load_error is not None:
                # Retrying will not help: say what failed and what to do.
                raise NotReady(
                    f"loading the deployments failed ({state.load_error}); fix the cause "
                    "and restart the server"
                )
            if not state.ready:
                raise NotReady(
                    "the server is still loading its models; retry in a moment "
                    "(GET /readyz says when it is ready)"
                )
            body = await read_body()
            deployment = state.manager.find_by_model(name) if v2 else state.manager.get(name)
            info["deployment"] = deployment.name  # a bounded label: only known deployments
            if state.metrics is not None:
                try:
                    state.metrics.request_started(deployment.name)
                    info["started"] = True
                except Exception:  # a metric must never fail a prediction
                    logger.exception("recording request metrics failed")
            raw_key = headers.get(b"x-modelpilot-key")
            key = raw_key.decode("latin-1") if raw_key else None
            if v2:
                length = header_length(headers.get(b"inference-header-content-length"))
                loaded = deployment.router.choose(key)
                request = decode_request(body, length, loaded.validator.features)
                info["instances"] = len(request.records)
                ids, result, loaded = await self.predictor.predict(
                    deployment, request.records, key, loaded=loaded
                )
                info["version"] = str(loaded.version.version)
                payload, binary_head = encode_response(
                    request,
                    model_name=name,
                    model_version=loaded.version.version,
                    predictions=result.predictions,
                    proba=result.proba,
                    ids=ids,
                )
                extra = _JSON
                if binary_head is not None:
                    extra = [
                        (b"content-type", b"application/octet-stream"),
                        (b"inference-header-content-length", str(binary_head).encode()),
                    ]
                return 200, extra, payload
            records, key = decode_v1(body, key)
            info["instances"] = len(records)
            ids, result, loaded = await self.predictor.predict(deployment, records, key)
            info["version"] = str(loaded.version.version)
            return 200, _JSON, dumps(encode_v1(deployment, loaded, ids, result))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if isinstance(exc, ModelpilotError) and exc.http_status < 500:
                state.counters.errors_4xx += 1
                info["outcome"] = "client_error"
            else:
                state.counters.errors_5xx += 1
                info["outcome"] = "model_error" if isinstance(exc, ModelFailed) else "server_error"
            where = f"the {'v2' if v2 else 'v1'} route of {name!r}"
            status, payload = error_response(exc, v2=v2, where=where)
            return status, _JSON, payload


def create_app(state: ServerState) -> ServingApp:
    return ServingApp(state)
