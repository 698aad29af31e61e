"""The ASGI application: a lean hand-written path for predictions, Starlette for the rest.

Predictions (``POST /v1/deployments/{name}/predict`` and ``POST /v2/models/{name}/infer``)
are handled by a raw ASGI function: Starlette's request and response objects and its router
cost about as much per request as a micro-batched model call, and at 64 connections that
overhead, not the model, bounds throughput (``benchmarks/serving.py``). Everything else
(health, metadata, feedback, admin, OpenAPI) goes through Starlette, where clarity matters more.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelpilot.errors import ModelpilotError, NotFoundError, ValidationFailed
from modelpilot.serving._deployments import Deployment, LoadedVersion
from modelpilot.serving._logwriter import LogEntry
from modelpilot.serving._openapi import openapi_document
from modelpilot.serving._pipeline import StepFailed
from modelpilot.serving._requests import (
    check_types,
    choice_parameter,
    integer_parameter,
    json_body,
    json_object,
    refuse_other_methods,
)
from modelpilot.serving._scoring import (
    BatchFailed,
    BatchJob,
    JobResult,
    failure_entries,
    prediction_entries,
)
from modelpilot.serving._state import ServerState
from modelpilot.serving._v2 import decode_request, encode_response, model_metadata
from modelpilot.store import FeedbackItem, new_ids

__all__ = ["create_app"]

logger = logging.getLogger("modelpilot.serving")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_WANTED_HEADERS = frozenset(
    {b"authorization", b"x-modelpilot-key", b"inference-header-content-length"}
)


class ModelFailed(ModelpilotError):
    """The model raised on a request; the ids let a person find it in the server log."""

    http_status = 500
    kind = "model_error"

    def __init__(self, ids: list[str], exc: BaseException) -> None:
        self.prediction_ids = ids
        what = (
            f"step {exc.step!r} of the pipeline failed on this request ({type(exc.cause).__name__})"
            if isinstance(exc, StepFailed)
            else f"the model failed on this request ({type(exc).__name__})"
        )
        super().__init__(
            f"{what}; the server keeps serving. Prediction id(s) {', '.join(ids[:5])} "
            "identify it in the server log"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.kind, "message": self.message, "prediction_ids": self.prediction_ids}


class NotReady(ModelpilotError):
    http_status = 503
    kind = "not_ready"


class BodyTooLarge(ModelpilotError):
    http_status = 413
    kind = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the request body is larger than {limit:,} bytes "
            "(serving.max_body_bytes); send fewer instances per request"
        )


class BadRequest(ModelpilotError):
    kind = "bad_request"


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


async def _send(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    all_headers = list(headers or _JSON)
    all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


def _error_body(exc: ModelpilotError, *, v2: bool) -> bytes:
    payload = exc.to_dict()
    if v2:  # the Open Inference Protocol's error object is {"error": "<message>"}
        payload = {**payload, "error": exc.message, "kind": exc.kind}
    return _dumps(payload)


class ServingApp:
    """The ASGI callable ``modelpilot serve`` runs."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.max_body = state.project.spec.serving.max_body_bytes
        self.max_instances = state.project.spec.serving.max_instances
        self._background: set[asyncio.Task[None]] = set()
        self.starlette = _starlette(state, self)

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
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
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
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
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
                length = headers.get(b"inference-header-content-length")
                loaded = deployment.router.choose(key)
                request = decode_request(
                    body, int(length) if length else None, loaded.validator.features
                )
                info["instances"] = len(request.records)
                ids, result, loaded = await self._predict(
                    deployment, request.records, key, loaded=loaded
                )
                info["version"] = str(loaded.version.version)
                payload, header_length = encode_response(
                    request,
                    model_name=name,
                    model_version=loaded.version.version,
                    predictions=result.predictions,
                    proba=result.proba,
                    ids=ids,
                )
                extra = [(b"content-type", b"application/json")]
                if header_length is not None:
                    extra = [
                        (b"content-type", b"application/octet-stream"),
                        (b"inference-header-content-length", str(header_length).encode()),
                    ]
                return 200, extra, payload
            records, key = _v1_records(body, key)
            info["instances"] = len(records)
            ids, result, loaded = await self._predict(deployment, records, key)
            info["version"] = str(loaded.version.version)
            return 200, _JSON, _dumps(_v1_response(deployment, loaded, ids, result))
        except ModelpilotError as exc:
            if exc.http_status >= 500:
                state.counters.errors_5xx += 1
                info["outcome"] = "model_error" if isinstance(exc, ModelFailed) else "server_error"
            else:
                state.counters.errors_4xx += 1
                info["outcome"] = "client_error"
            return exc.http_status, _JSON, _error_body(exc, v2=v2)
        except asyncio.CancelledError:
            raise
        except Exception:
            state.counters.errors_5xx += 1
            info["outcome"] = "server_error"
            logger.exception("unexpected error on the %s route of %r", "v2" if v2 else "v1", name)
            return (
                500,
                _JSON,
                _dumps(
                    {
                        "error": "internal_error",
                        "message": "an unexpected error occurred; see the server log",
                    }
                ),
            )

    async def _predict(
        self,
        deployment: Deployment,
        records: list[Any],
        key: str | None,
        *,
        loaded: LoadedVersion | None = None,
    ) -> tuple[list[str], JobResult, LoadedVersion]:
        state = self.state
        if not records:
            raise ValidationFailed(
                [{"field": "instances", "expected": "at least one instance", "got": []}]
            )
        if len(records) > self.max_instances:
            raise ValidationFailed(
                [
                    {
                        "field": "instances",
                        "expected": f"at most {self.max_instances} instances",
                        "got": f"{len(records)} instances",
                    }
                ]
            )
        target = loaded or deployment.router.choose(key)
        validator = target.validator
        names = validator.names
        metrics = state.metrics
        n = len(records)
        degree = state.degree_of(deployment.name)
        # With full automation the answer is the model's as is, so the model thread logs it
        # with the rest of its micro-batch; other degrees change answers first, then log here.
        in_batch = degree == "full"
        rows = validator.numeric_rows(records)  # the fast path: clean, all-numeric records
        if rows is not None:
            job = BatchJob(n, rows=rows, deployment=deployment.name, log=in_batch)
            missing: dict[str, int] = {}
            out_of_range: dict[str, int] = {}
            unseen: dict[str, int] = {}
            problems: list[dict[str, Any]] = []
        else:
            checked = validator.validate_records(records)
            job = BatchJob(n, columns=checked.columns, deployment=deployment.name, log=in_batch)
            missing, out_of_range, unseen = checked.missing, checked.out_of_range, checked.unseen
            problems = checked.problems
        if metrics is not None:
            try:
                metrics.observe_inputs(deployment.name, names, n, missing, out_of_range, unseen)
            except Exception:  # a metric must never fail a prediction
                logger.exception("recording input metrics failed")
        if problems:
            raise ValidationFailed(problems)
        state.writer.check_capacity(n)
        if degree == "human":  # the model is not consulted at all
            result = JobResult([None] * n, None, None, ids=new_ids(n, clock=state.clock))
        else:
            try:
                result = await target.batcher.submit(job)
            except BatchFailed as exc:
                state.counters.model_errors += 1
                cause = exc.cause
                where = f"step {cause.step!r} of" if isinstance(cause, StepFailed) else "model"
                logger.error(
                    "%s %s failed on prediction ids %s",
                    where,
                    target.label,
                    exc.ids,
                    exc_info=cause,
                )
                if not exc.logged:
                    state.writer.submit(
                        failure_entries(
                            target.version,
                            job.records(names),
                            exc.ids,
                            cause,
                            exc.latency_ms,
                            state.clock(),
                        )
                    )
                raise ModelFailed(exc.ids, cause) from None
        ids = result.ids
        inputs: list[dict[str, Any]] | None = None
        if not result.logged:
            inputs = job.records(names)
            if degree != "full":
                columns = {name: [record[name] for record in inputs] for name in names}
                result = await self._automate(
                    deployment, target, degree, ids, inputs, columns, result
                )
            await self._log(
                prediction_entries(target.version, inputs, result, state.clock(), deferred=degree)
            )
            if metrics is not None:
                try:
                    confidence = (
                        [max(row) for row in result.proba] if result.proba is not None else None
                    )
                    metrics.observe_outputs(
                        deployment.name, str(target.version.version), result.predictions, confidence
                    )
                except Exception:  # a metric must never fail a prediction
                    logger.exception("recording output metrics failed")
        state.counters.predictions += n
        mirrors = deployment.router.mirrors(target)
        if mirrors:
            loop = asyncio.get_running_loop()
            shared = inputs if inputs is not None else job.records(names)
            for mirror in mirrors:
                # After this request's answer: a mirror never delays or fails the primary's.
                task = loop.create_task(self._mirror(mirror, shared, ids))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        return ids, result, target

    async def _automate(
        self,
        deployment: Deployment,
        target: LoadedVersion,
        degree: str,
        ids: list[str],
        inputs: list[dict[str, Any]],
        columns: dict[str, list[Any]],
        result: JobResult,
    ) -> JobResult:
        """Apply the deployment's degree of automation: which answers go to a person."""
        from modelpilot.automation import margin_confidence, typicality_confidence

        settings = self.state.project.spec.automation
        if result.proba is not None:
            confidence = margin_confidence(result.proba)
        elif degree == "human":
            confidence = [0.0] * len(ids)
        else:
            confidence = typicality_confidence(
                columns, target.validator.features, target.version.profile
            )
        if degree == "partial":
            deferred = [i for i, c in enumerate(confidence) if c < settings.threshold]
            status, visible = "deferred", True
        else:  # assist: a suggestion to confirm; shadow / human: a person decides unaided
            deferred = list(range(len(ids)))
            status, visible = "pending_review", degree == "assist"
        reviews: dict[int, tuple[str, str, bool]] = {}
        if deferred:
            items = [(ids[i], inputs[i], result.predictions[i], confidence[i]) for i in deferred]
            loop = asyncio.get_running_loop()
            created = await loop.run_in_executor(
                None,
                functools.partial(
                    self.state.reviews.add,
                    deployment.name,
                    target.version.name,
                    target.version.version,
                    degree,
                    items,
                ),
            )
            reviews = {
                i: (item.id, status, visible) for i, item in zip(deferred, created, strict=True)
            }
        return dataclasses.replace(result, confidence=confidence, reviews=reviews)

    async def _mirror(
        self, loaded: LoadedVersion, inputs: list[dict[str, Any]], ids: list[str]
    ) -> None:
        """Score a copy of a request with another version; log it as ``source="shadow"``."""
        await asyncio.sleep(0)  # let the primary's response go out first
        state = self.state
        started = time.perf_counter()
        outputs: list[dict[str, Any]]
        try:
            checked = loaded.validator.validate_records(inputs)
            if checked.problems:
                raise ValidationFailed(checked.problems)
            result = await loaded.batcher.submit(
                BatchJob(len(inputs), columns=checked.columns, log=False)
            )
            outputs = [{"prediction": p} for p in result.predictions]
            if result.proba is not None and result.classes is not None:
                for out, row in zip(outputs, result.proba, strict=True):
                    out["probabilities"] = dict(zip(result.classes, row, strict=True))
                    out["confidence"] = max(row)
        except Exception as exc:
            cause = exc.cause if isinstance(exc, BatchFailed) else exc
            outputs = [{"prediction": None, "error": type(cause).__name__} for _ in inputs]
        latency_ms = (time.perf_counter() - started) * 1000
        now = state.clock()
        try:
            state.writer.submit(
                [
                    LogEntry(
                        pid,
                        now,
                        loaded.version.name,
                        loaded.version.version,
                        record,
                        out,
                        latency_ms,
                        source="shadow",
                    )
                    for pid, record, out in zip(ids, inputs, outputs, strict=True)
                ]
            )
        except ModelpilotError:
            logger.warning("shadow result of %s not logged: the log is full", loaded.label)

    async def _log(self, entries: list[LogEntry]) -> None:
        writer = self.state.writer
        if not self.state.durable:
            writer.submit(entries)
            return
        loop = asyncio.get_running_loop()
        committed: asyncio.Future[None] = loop.create_future()

        def done(error: BaseException | None) -> None:
            def resolve() -> None:
                if committed.done():
                    return
                if error is None:
                    committed.set_result(None)
                else:
                    committed.set_exception(error)

            loop.call_soon_threadsafe(resolve)

        writer.submit(entries, done)
        await committed


def _v1_records(body: bytes, key: str | None) -> tuple[list[Any], str | None]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"the request body is not valid JSON ({exc}); send "
            '{"instances": [{...}, ...]} or one record {...}'
        ) from None
    if not isinstance(payload, dict):
        raise BadRequest(
            'the request body must be a JSON object: {"instances": [...]} or one '
            f"record; got a {type(payload).__name__}"
        )
    if "instances" in payload:
        instances = payload["instances"]
        if not isinstance(instances, list):
            raise ValidationFailed(
                [
                    {
                        "field": "instances",
                        "expected": "a list of records",
                        "got": type(instances).__name__,
                    }
                ]
            )
        request_key = payload.get("key")
        return instances, key or (str(request_key) if request_key is not None else None)
    return [payload], key


def _v1_response(
    deployment: Deployment, loaded: LoadedVersion, ids: list[str], result: JobResult
) -> dict[str, Any]:
    predictions = []
    reviews = result.reviews or {}
    for index, pid in enumerate(ids):
        item: dict[str, Any] = {"id": pid, "prediction": result.predictions[index]}
        if result.proba is not None and result.classes is not None:
            row = result.proba[index]
            item["probabilities"] = dict(zip(result.classes, row, strict=True))
            item["confidence"] = max(row)
        if result.confidence is not None:
            item["confidence"] = result.confidence[index]
        if index in reviews:
            review_id, status, visible = reviews[index]
            # A deferred answer is the person's to give: the model's is only a suggestion.
            suggestion = item.pop("prediction")
            item.pop("probabilities", None)
            item.update({"status": status, "review_id": review_id})
            if visible and suggestion is not None:
                item["suggestion"] = suggestion
            else:
                item.pop("confidence", None)
        elif result.reviews is not None:
            item["status"] = "decided_by_model"
        predictions.append(item)
    return {
        "deployment": deployment.name,
        "model": loaded.version.name,
        "version": loaded.version.version,
        "predictions": predictions,
    }


# ---- the Starlette part ---------------------------------------------------------------------
def _json(value: Any, status: int = 200) -> Response:
    return Response(_dumps(value), status_code=status, media_type="application/json")


def _starlette(state: ServerState, app: ServingApp) -> Starlette:
    def principal(request: Request, role: str) -> Any:
        return state.tokens.authenticate(request.headers.get("authorization"), role=role)  # type: ignore[arg-type]

    async def healthz(request: Request) -> Response:
        return _json({"status": "live"})

    async def readyz(request: Request) -> Response:
        if state.ready:
            return _json({"status": "ready", "deployments": [d.name for d in state.manager.all()]})
        return _json(
            {
                "status": "loading" if state.load_error is None else "failed",
                "error": state.load_error,
            },
            503,
        )

    async def v2_live(request: Request) -> Response:
        return _json({"live": True})

    async def v2_ready(request: Request) -> Response:
        return _json({"ready": state.ready}, 200 if state.ready else 503)

    async def v2_server(request: Request) -> Response:
        from modelpilot import __version__

        return _json({"name": "modelpilot", "version": __version__, "extensions": ["binary_data"]})

    async def v2_model(request: Request) -> Response:
        if not state.ready:
            raise NotReady("the server is still loading its models")
        deployment = state.manager.find_by_model(request.path_params["name"])
        version = deployment.primary.version
        return _json(
            model_metadata(
                request.path_params["name"],
                [v.version.version for v in deployment.router.versions],
                deployment.primary.validator.features,  # what requests send (a pipeline's own)
                flavor=version.flavor,
                task=version.task,
            )
        )

    async def v2_model_ready(request: Request) -> Response:
        if not state.ready:
            return _json({"name": request.path_params["name"], "ready": False}, 503)
        state.manager.find_by_model(request.path_params["name"])
        return _json({"name": request.path_params["name"], "ready": True})

    async def deployments(request: Request) -> Response:
        principal(request, "predict")
        return _json({"deployments": [_describe(d) for d in state.manager.all()]})

    async def reload(request: Request) -> Response:
        who = principal(request, "admin")
        name = request.path_params["name"]
        loop = asyncio.get_running_loop()
        before = state.manager.get(name).primary.version.version
        deployment = await loop.run_in_executor(None, state.manager.reload, name)
        after = deployment.primary.version.version
        state.project.registry.audit(
            who.name, "deployment.reload", name, {"from": before, "to": after}
        )
        return _json(_describe(deployment))

    async def feedback(request: Request) -> Response:
        principal(request, "predict")
        example = '{"prediction_id": "...", "label": ...}, {"items": [...]} or a list of items'
        items = _feedback_items(await json_body(request, example=example))
        loop = asyncio.get_running_loop()
        # A label may follow its prediction within milliseconds: commit what is queued first,
        # so a just-answered prediction id is never reported as unknown.
        await loop.run_in_executor(None, state.writer.wait_flushed, 10.0)
        results = await loop.run_in_executor(None, state.project.prediction_log.add_feedback, items)
        state.counters.feedback += sum(r.accepted for r in results)
        if state.metrics is not None:
            try:
                for item, outcome in zip(items, results, strict=True):
                    if outcome.accepted:
                        state.metrics.feedback.labels(item.kind).inc()
            except Exception:  # a metric must never fail the feedback it counts
                logger.exception("recording feedback metrics failed")
        body = {
            "accepted": sum(r.accepted for r in results),
            "rejected": sum(not r.accepted for r in results),
            "results": [
                {
                    "prediction_id": r.prediction_id,
                    "accepted": r.accepted,
                    **({"error": r.error} if r.error else {}),
                }
                for r in results
            ],
        }
        status = (
            200
            if all(r.accepted for r in results)
            else 207
            if any(r.accepted for r in results)
            else 422
        )
        return _json(body, status)

    def controller() -> Any:
        if state.controller is None:
            raise NotReady("the server is still loading its models; retry in a moment")
        return state.controller

    async def admin(request: Request) -> Response:
        name = request.path_params["name"]
        action = request.path_params["action"]
        actions = ("deploy", "rollback", "promote", "pause", "resume", "abort")
        if action not in actions:
            refuse_other_methods(request)  # POST .../status: a 405, not an unknown action
        who = principal(request, "admin")
        if action not in actions:
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
        version = body.get("version")
        # bool is an int to Python; the version columns are 32-bit integers.
        if action == "deploy" and (
            not isinstance(version, int) or isinstance(version, bool) or not 0 < version < 2**31
        ):
            raise ValidationFailed(
                [{"field": "version", "expected": "a version number", "got": version}]
            )
        ctl = controller()
        reason = body.get("reason") or ""
        loop = asyncio.get_running_loop()
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
        state.manager.get(name)
        return _json(await loop.run_in_executor(None, call))

    async def status(request: Request) -> Response:
        principal(request, "predict")
        name = request.path_params["name"]
        state.manager.get(name)
        loop = asyncio.get_running_loop()
        return _json(await loop.run_in_executor(None, controller().status, name))

    async def metrics(request: Request) -> Response:
        from modelpilot.monitoring import CONTENT_TYPE

        body = state.metrics.exposition() if state.metrics is not None else b""
        return Response(body, media_type=CONTENT_TYPE)

    async def alerts(request: Request) -> Response:
        principal(request, "predict")
        engine = state.extra.get("alerts")
        if engine is None:
            raise NotReady("alerts start once the deployments are loaded; retry in a moment")
        loop = asyncio.get_running_loop()
        return _json(await loop.run_in_executor(None, engine.snapshot))

    def need(component: Any) -> Any:
        if component is None:
            raise NotReady("the server is still loading; retry in a moment")
        return component

    async def reviews_list(request: Request) -> Response:
        principal(request, "admin")
        params, example = request.query_params, "GET /v1/reviews?status=pending&limit=100"
        status_filter = choice_parameter(
            params,
            "status",
            default="pending",
            choices=("pending", "decided", "expired", "all"),
            example=example,
        )
        limit = integer_parameter(params, "limit", default=100, low=1, high=10_000, example=example)
        queue = need(state.reviews)
        items = queue.list(
            status=None if status_filter == "all" else status_filter,
            deployment=params.get("deployment"),
            limit=limit,
        )
        return _json(
            {
                "reviews": [i.to_dict(show_suggestion=False) for i in items],
                "stats": queue.stats(request.query_params.get("deployment")),
            }
        )

    async def reviews_next(request: Request) -> Response:
        principal(request, "admin")
        item = need(state.reviews).next(deployment=request.query_params.get("deployment"))
        if item is None:
            return _json({"review": None, "message": "the review queue is empty"})
        return _json({"review": item.to_dict(show_suggestion=False)})

    async def review_get(request: Request) -> Response:
        principal(request, "predict")  # the requester polls for the person's decision
        return _json(
            need(state.reviews).get(request.path_params["id"]).to_dict(show_suggestion=False)
        )

    async def review_decide(request: Request) -> Response:
        who = principal(request, "admin")
        example = 'a JSON object such as {"value": ...} (the decision: a label)'
        body = await json_object(request, example=example)
        if body.get("value") is None:  # a null decision would close the review unlabeled
            raise ValidationFailed(
                [
                    {
                        "field": "value",
                        "expected": "the decision (a label)",
                        "got": body.get("value", "(missing)"),
                    }
                ]
            )
        loop = asyncio.get_running_loop()
        item = await loop.run_in_executor(
            None,
            functools.partial(
                need(state.reviews).decide, request.path_params["id"], body["value"], actor=who.name
            ),
        )
        return _json(item.to_dict())

    async def automation(request: Request) -> Response:
        # The token before the name: without one, no answer tells which deployments exist.
        name = request.path_params["name"]
        if request.method == "GET":
            principal(request, "predict")
            state.manager.get(name)
            current = need(state.ladder).state(name)
            return _json({**current.to_dict(), "review": need(state.reviews).stats(name)})
        who = principal(request, "admin")
        example = 'a JSON object such as {"degree": "partial", "reason": "..."}'
        body = await json_object(request, example=example, empty={})
        check_types(body, {"degree": str, "apply_proposal": bool, "reason": str})
        state.manager.get(name)
        ladder = need(state.ladder)
        current = ladder.state(name)
        degree = body.get("degree") or (current.proposal if body.get("apply_proposal") else None)
        if degree is None:
            raise ValidationFailed(
                [
                    {
                        "field": "degree",
                        "expected": "human, shadow, assist, "
                        "partial or full (or apply_proposal: true)",
                        "got": body.get("degree"),
                    }
                ]
            )
        updated = ladder.set(
            name, degree, actor=who.name, reason=body.get("reason") or "set by an admin"
        )
        state.degrees[name] = updated.degree
        return _json(updated.to_dict())

    async def retrain(request: Request) -> Response:
        who = principal(request, "admin")
        example = 'a JSON object such as {"reason": "new labels", "force": false} (or no body)'
        body = await json_object(request, example=example, empty={})
        check_types(body, {"reason": str, "force": bool})
        loop = asyncio.get_running_loop()
        run = await loop.run_in_executor(
            None,
            functools.partial(
                need(state.retrain).trigger,
                reason=body.get("reason") or "api",
                actor=who.name,
                force=bool(body.get("force")),
            ),
        )
        return _json(run.to_dict())

    async def openapi(request: Request) -> Response:
        return _json(openapi_document(state))

    async def on_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ModelpilotError):
            return Response(
                _error_body(exc, v2=request.url.path.startswith("/v2/")),
                status_code=exc.http_status,
                media_type="application/json",
            )
        logger.exception("unexpected error on %s", request.url.path, exc_info=exc)
        return _json(
            {
                "error": "internal_error",
                "message": "an unexpected error occurred; see the server log",
            },
            500,
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        return _json(
            {
                "error": "not_found",
                "message": f"no endpoint {request.method} {request.url.path}; see /openapi.json",
            },
            404,
        )

    async def method_not_allowed(request: Request, exc: Exception) -> Response:
        # The router's Allow header lists a set, in no particular order.
        header = (getattr(exc, "headers", None) or {}).get("Allow", "")
        allow = ", ".join(sorted(m.strip() for m in header.split(",") if m.strip()))
        response = _json(
            {
                "error": "method_not_allowed",
                "message": f"{request.method} is not allowed on {request.url.path}; "
                f"it allows {allow or 'no method'} (see /openapi.json)",
            },
            405,
        )
        response.headers["Allow"] = allow  # RFC 9110: a 405 says which methods are allowed
        return response

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        state.writer.start()
        loop = asyncio.get_running_loop()

        def load() -> None:
            from modelpilot.rollout import RolloutController

            try:
                # Ready (readyz 200, predictions accepted) only once everything a request may
                # touch is up: the controller, the automation, the monitor.
                state.manager.load_all(ready=False)
                ctl = RolloutController(state.project, state.manager, clock=state.clock)
                ctl.attach()
                state.controller = ctl
                _start_automation(state)
                if state.metrics is not None:
                    from modelpilot.monitoring import Monitor

                    state.monitor = Monitor(
                        state.project, state.metrics, state.manager, clock=state.clock
                    )
                    state.monitor.reviews = state.reviews
                    from modelpilot.alerting import AlertEngine

                    # Alert rules on every new batch of the monitor's points (issue 6 §3).
                    alerting = AlertEngine.from_project(
                        state.project, controller=ctl, metrics=state.metrics, clock=state.clock
                    )
                    state.monitor.listeners.append(alerting.on_points)
                    state.monitor.series_ended.append(alerting.resolve_absent)
                    state.extra["alerts"] = alerting
                    from modelpilot.monitoring import MonitorLeader

                    # One worker process records the time series and evaluates the alerts.
                    state.extra["monitor_leader"] = MonitorLeader(
                        state.monitor, ctl.store, ctl.worker_id, alerts=alerting
                    )
                    _register_automation_actions(state, alerting)
                state.manager.ready = True
            except Exception as exc:  # readyz reports it; the process stays up to say so
                state.load_error = str(exc)
                state.manager.ready = False
                logger.error("loading the deployments failed: %s", exc)
            if state.extra.get("tune_gc"):  # a server process of its own (`modelpilot serve`)
                _tune_gc()

        def control() -> None:
            ctl = state.controller
            if ctl is None:
                return
            ctl.heartbeat()
            # One worker process runs the rollouts' analysis, the automation ladder, the
            # retraining schedule and the log's compaction; every worker follows the state.
            leading = ctl.store.acquire_lease(_CONTROLLER_LEASE, ctl.worker_id, ttl=5.0)
            if leading:
                ctl.tick()
            else:
                ctl.reconcile()
            if state.extra.get("monitor_leader") is not None:
                state.extra["monitor_leader"].tick()
            _tick_automation(state, leading=leading)
            if leading:
                _compact_log(state)

        async def control_loop() -> None:
            while True:
                await asyncio.sleep(state.tick_seconds)
                try:
                    await loop.run_in_executor(None, control)
                except Exception:
                    logger.exception("the rollout controller failed; retrying")

        loading = loop.run_in_executor(None, load)
        controlling = loop.create_task(control_loop())
        try:
            yield
        finally:
            controlling.cancel()
            await asyncio.wait_for(asyncio.shield(loading), timeout=None)
            # The drain: uvicorn has finished the in-flight requests; commit what they logged.
            state.manager.close()
            await loop.run_in_executor(None, state.writer.stop)
            if state.extra.get("alerts") is not None:  # deliver queued notifications
                await loop.run_in_executor(None, state.extra["alerts"].close, 5.0)
            if state.controller is not None:  # another worker (or the next start) takes over now
                await loop.run_in_executor(None, _release_leases, state.controller)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/v2/health/live", v2_live),
        Route("/v2/health/ready", v2_ready),
        Route("/v2", v2_server),
        Route("/v2/models/{name}", v2_model),
        Route("/v2/models/{name}/ready", v2_model_ready),
        Route("/v2/models/{name}/versions/{version}", v2_model),
        Route("/v1/deployments", deployments),
        Route("/v1/deployments/{name}/reload", reload, methods=["POST"]),
        Route("/v1/feedback", feedback, methods=["POST"]),
        Route("/v1/deployments/{name}/status", status),
        Route("/v1/alerts", alerts),
        Route("/v1/deployments/{name}/automation", automation, methods=["GET", "POST"]),
        Route("/v1/reviews", reviews_list),
        Route("/v1/reviews/next", reviews_next),
        Route("/v1/reviews/{id}", review_get),
        Route("/v1/reviews/{id}/decision", review_decide, methods=["POST"]),
        Route("/v1/retrain", retrain, methods=["POST"]),
        Route("/v1/deployments/{name}/{action}", admin, methods=["POST"]),
        Route("/openapi.json", openapi),
        Route("/metrics", metrics),
    ]
    from modelpilot.dashboard import dashboard_routes

    routes += dashboard_routes(state)  # GET /, /static, /v1/metrics/*, /v1/project
    for extra in state.extra.get("routes", []):
        routes.append(extra)
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            Exception: on_error,
            ModelpilotError: on_error,
            NotFoundError: on_error,
            404: not_found,
            405: method_not_allowed,
        },
    )


def _tune_gc() -> None:
    """Keep the garbage collector and the GIL's hand-overs off the request path.

    What is loaded by now (the models, scikit-learn, pandas, the routes) lives as long as the
    process: ``gc.freeze`` takes it out of the collector's sight, so the collections that
    remain scan only what requests created. Before, every full collection walked the whole
    heap: 7-14% of the server's CPU at 64 connections (``benchmarks/serving.py``, perf). The
    thresholds stay at their defaults: a larger first threshold makes collections rarer but
    each one longer (a 50,000 threshold showed as 5-10 ms pauses at the 99th percentile)
    without saving work, since young collections cost what is alive when they run.
    """
    import gc
    import sys

    gc.collect()
    gc.freeze()
    # The model and log-writer threads hold the GIL while they run Python code; the event
    # loop waits up to the switch interval (5 ms by default) to get it back. 1 ms bounds
    # that wait at a small cost in switches.
    sys.setswitchinterval(0.001)


def _start_automation(state: ServerState) -> None:
    """Review queue, degrees of automation and the retraining loop of a starting server."""
    from modelpilot.automation import Ladder, RetrainLoop, ReviewQueue

    project = state.project
    settings = project.spec.automation
    state.reviews = ReviewQueue(
        project.engine,
        project.prediction_log,
        clock=state.clock,
        tolerance=settings.agreement_tolerance,
    )
    state.ladder = Ladder(
        project.engine, state.reviews, settings, audit=project.registry.audit, clock=state.clock
    )
    for deployment in state.manager.all():
        state.degrees[deployment.name] = state.ladder.state(
            deployment.name, default=deployment.spec.automation
        ).degree

    def deploy(version: int, reason: str) -> Any:
        name = project.spec.deployment_specs[0].name
        return state.controller.deploy(
            name, version, project.spec.retrain.deploy, actor="retrain", reason=reason
        )

    state.retrain = RetrainLoop(project, clock=state.clock, deploy=deploy)
    state.extra["last_ladder"] = 0.0
    state.extra["last_schedule"] = state.clock()


def _register_automation_actions(state: ServerState, alerting: Any) -> None:
    """The alert actions of the closed loop: lower the automation degree, retrain."""

    def lower(alert: Any) -> str:
        if not state.project.spec.automation.lower_on_alerts:
            return "automation.lower_on_alerts is false; the degree stays"
        before = state.ladder.state(alert.deployment).degree
        after = state.ladder.lower(
            alert.deployment,
            actor="alerts",
            reason=f"alert {alert.rule} firing (value {alert.value})",
        )
        state.degrees[alert.deployment] = after.degree
        if after.degree == before:
            return f"{alert.deployment} is already at {before}; nothing lower"
        return f"lowered {alert.deployment} from {before} to {after.degree}"

    def retrain(alert: Any) -> str:
        try:
            run = state.retrain.trigger(reason=f"alert {alert.rule}", actor="alerts")
        except ModelpilotError as exc:  # cooldown, too few labels, no trainer: say so
            return f"retraining not started: {exc.message}"
        return f"retraining run {run.id} started"

    alerting.register_action("lower_automation", lower)
    alerting.register_action("retrain", retrain)


_CONTROLLER_LEASE = "rollout-controller"


def _release_leases(controller: Any) -> None:
    """Give up this worker's leases at a graceful stop, so nobody waits for them to expire."""
    for name in (_CONTROLLER_LEASE, "monitor"):
        try:
            controller.store.release_lease(name, controller.worker_id)
        except Exception as exc:  # the database is gone: the leases simply expire
            logger.info("lease %s not released: %s", name, exc)


def _compact_log(state: ServerState) -> None:
    """Every ``logging.compact_interval_s``, merge the log's small segments older than one
    interval, in a thread of its own (a backlog may take a while; the control loop's
    heartbeats and leases must not wait for it)."""
    settings = state.project.spec.logging
    now = state.clock()
    if not settings.compact_interval_s:
        return
    if "next_compaction" not in state.extra:  # not while the server starts and warms up
        state.extra["next_compaction"] = now + settings.compact_interval_s
    if now < float(state.extra["next_compaction"]):
        return
    running = state.extra.get("compactor")
    if running is not None and running.is_alive():
        return
    state.extra["next_compaction"] = now + settings.compact_interval_s
    thread = threading.Thread(
        target=_run_compaction,
        args=(state, now - settings.compact_interval_s, settings.compact_rows),
        name="modelpilot-compactor",
        daemon=True,  # a run cut short by the exit is rolled back by the database
    )
    state.extra["compactor"] = thread
    thread.start()


def _run_compaction(state: ServerState, older_than: float, target_rows: int) -> None:
    from modelpilot.store import compact_segments

    try:
        result = compact_segments(
            state.project.engine, older_than=older_than, target_rows=target_rows
        )
    except Exception as exc:  # the next interval tries again
        logger.warning("compacting the prediction log failed: %s", exc)
        return
    if result.segments_merged:
        logger.info(
            "prediction log: %d segments merged into %d (%d rows)",
            result.segments_merged,
            result.segments_written,
            result.rows,
        )


def _tick_automation(state: ServerState, *, leading: bool = True) -> None:
    """Follow degree changes made elsewhere; the leading worker also runs the ladder and the
    retraining schedule (once for all workers)."""
    if state.ladder is None:
        return
    now = state.clock()
    for deployment in state.manager.all():
        state.degrees[deployment.name] = state.ladder.state(deployment.name).degree
    if not leading:
        return
    if now - float(state.extra.get("last_ladder", 0.0)) >= 10.0:
        state.extra["last_ladder"] = now
        for deployment in state.manager.all():
            state.ladder.evaluate(deployment.name)
        state.reviews.expire(state.project.spec.automation.review_max_age_s)
    schedule = state.project.spec.retrain.schedule_s
    if schedule and now - float(state.extra.get("last_schedule", now)) >= schedule:
        state.extra["last_schedule"] = now
        try:
            state.retrain.trigger(reason="schedule", actor="schedule")
        except ModelpilotError as exc:
            logger.info("scheduled retraining not started: %s", exc.message)


def _describe(deployment: Deployment) -> dict[str, Any]:
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


def _feedback_items(payload: Any) -> list[FeedbackItem]:
    raw = payload.get("items", [payload]) if isinstance(payload, dict) else payload
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed(
            [
                {
                    "field": "(body)",
                    "expected": '{"prediction_id": ..., '
                    '"label": ...} or {"items": [...]} or a list of them',
                    "got": type(payload).__name__,
                }
            ]
        )
    items, problems = [], []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("prediction_id"), str):
            problems.append(
                {
                    "instance": index,
                    "field": "prediction_id",
                    "expected": "a prediction id string",
                    "got": item.get("prediction_id") if isinstance(item, dict) else item,
                }
            )
            continue
        kind = "label" if item.get("kind") is None else item["kind"]
        source = "api" if item.get("source") is None else item["source"]
        if not isinstance(kind, str):
            problems.append(
                {
                    "instance": index,
                    "field": "kind",
                    "expected": "a string: label, redo or correction",
                    "got": kind,
                }
            )
        elif not isinstance(source, str) or len(source) > 200:  # the column's width
            problems.append(
                {
                    "instance": index,
                    "field": "source",
                    "expected": "a string of at most 200 characters",
                    "got": source,
                }
            )
        else:
            items.append(FeedbackItem(item["prediction_id"], item.get("label"), kind, source))
    if problems:
        raise ValidationFailed(problems)
    return items


def create_app(state: ServerState) -> ServingApp:
    return ServingApp(state)
