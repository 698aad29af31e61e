"""The server's errors, and the one place where an error becomes a response.

Every response that reports an error has one body shape: ``{"error": <kind>, "message": <what
happened and what to do>}`` and, where they apply, ``problems`` (a 422's every problem) or
``prediction_ids`` (a 500 of a model that raised). The Open Inference Protocol's routes
(``/v2/...``) must answer ``{"error": "<message>"}``: the same fields there, with the message
under ``error`` and the kind under ``kind``. Anything that is not a ``ModelpilotError`` is a
bug: one line in the server log with an error id (the traceback at debug level only: a hostile
client repeating a request that trips a bug must not fill the disk with tracebacks) and a 500
that shows nothing of it but the id.
"""

from __future__ import annotations

import logging
import secrets
import traceback
from typing import Any, TypeVar

import orjson

from modelpilot.errors import ModelpilotError
from modelpilot.inference import StepFailed

__all__ = [
    "BadRequest",
    "BodyTooLarge",
    "MethodNotAllowed",
    "ModelFailed",
    "NoRoute",
    "NotReady",
    "dumps",
    "error_body",
    "error_response",
    "log_unexpected",
    "need",
]

logger = logging.getLogger("modelpilot.server")
T = TypeVar("T")


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

    def __init__(
        self,
        limit: int,
        setting: str = "serving.max_body_bytes",
        advice: str = "send fewer instances per request",
    ) -> None:
        self.limit = limit
        super().__init__(f"the request body is larger than {limit:,} bytes ({setting}); {advice}")


class BadRequest(ModelpilotError):
    kind = "bad_request"


class NoRoute(ModelpilotError):
    http_status = 404
    kind = "not_found"

    def __init__(self, method: str, path: str) -> None:
        super().__init__(f"no endpoint {method} {path}; see /openapi.json")


class MethodNotAllowed(ModelpilotError):
    http_status = 405
    kind = "method_not_allowed"

    def __init__(self, method: str, path: str, allow: str) -> None:
        super().__init__(
            f"{method} is not allowed on {path}; it allows {allow or 'no method'} "
            "(see /openapi.json)"
        )


class _Unexpected(ModelpilotError):
    """What a bug looks like from outside: nothing of it but that it happened."""

    http_status = 500
    kind = "internal_error"

    def __init__(self, error_id: str) -> None:
        self.error_id = error_id
        super().__init__(
            f"an unexpected error occurred (error id {error_id}); the server log has one line "
            "with this id"
        )


def dumps(value: Any) -> bytes:
    """JSON as the server writes it (NumPy values included)."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def error_body(exc: ModelpilotError, *, v2: bool = False) -> bytes:
    """The body of the response to ``exc`` (see the module's docstring).

    Examples
    --------
    >>> error_body(BadRequest("not JSON"))
    b'{"error":"bad_request","message":"not JSON"}'
    >>> error_body(BadRequest("not JSON"), v2=True)
    b'{"error":"not JSON","message":"not JSON","kind":"bad_request"}'
    """
    payload = exc.to_dict()
    if v2:  # the Open Inference Protocol's error object is {"error": "<message>"}
        payload = {**payload, "error": exc.message, "kind": exc.kind}
    return dumps(payload)


def log_unexpected(exc: BaseException, where: str) -> str:
    """Log a bug in one line (its traceback at debug level); returns the line's error id.

    Examples
    --------
    >>> len(log_unexpected(ValueError("x"), "a test"))
    12
    """
    error_id = secrets.token_hex(6)
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    origin = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
    text = " ".join(str(exc).split())[:300]
    logger.error(
        "unexpected error %s on %s: %s: %s%s",
        error_id,
        where or "a request",
        type(exc).__name__,
        text,
        origin,
    )
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("error %s in full", error_id, exc_info=exc)
    return error_id


def error_response(exc: BaseException, *, v2: bool = False, where: str = "") -> tuple[int, bytes]:
    """``(status, body)`` for any exception a request ended with; a bug is logged here, in
    one line (:func:`log_unexpected`)."""
    if not isinstance(exc, ModelpilotError):
        exc = _Unexpected(log_unexpected(exc, where))
    return exc.http_status, error_body(exc, v2=v2)


def need(component: T | None, what: str = "the server is still loading") -> T:
    """``component``, or a 503 when start-up has not built it yet.

    Examples
    --------
    >>> need(3)
    3
    >>> need(None, "alerts start once the deployments are loaded")
    Traceback (most recent call last):
    ...
    modelpilot.server._errors.NotReady: alerts start once the deployments are loaded; retry in a moment
    """  # noqa: E501
    if component is None:
        raise NotReady(f"{what}; retry in a moment")
    return component
