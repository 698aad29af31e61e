"""What the Starlette handlers read from a request: its JSON body, its fields, its query.

Each reader refuses a malformed request with a 4xx that names what was wrong, where, what is
expected and what to send instead; a handler calls them after the token check and before it
looks up anything the request names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from modelpilot.errors import ModelpilotError, ValidationFailed
from modelpilot.server._auth import Principal, Role, TokenStore
from modelpilot.server._errors import dumps

__all__ = [
    "MAX_TEXT_CHARS",
    "BadQueryParameter",
    "MalformedBody",
    "authorize",
    "check_types",
    "choice_parameter",
    "integer_parameter",
    "json_body",
    "json_object",
    "json_response",
    "refuse_other_methods",
]

_EXPECTED = {str: "a string", bool: "true or false", int: "an integer"}
#: Free text a request may store (a reason, a note): stored in the audit log and shown back
#: on every read, so a few paragraphs at most, not megabytes.
MAX_TEXT_CHARS = 2000


def authorize(tokens: TokenStore, request: Request, role: Role) -> Principal:
    """Who sent ``request``, if their token allows ``role`` (401 or 403 otherwise)."""
    return tokens.authenticate(request.headers.get("authorization"), role=role)


def json_response(value: Any, status: int = 200) -> Response:
    return Response(dumps(value), status_code=status, media_type="application/json")


class MalformedBody(ModelpilotError):
    """The request body is not JSON, or not the JSON value the endpoint takes."""

    kind = "bad_request"

    def __init__(self, where: str, problem: str, example: str) -> None:
        super().__init__(f"the request body of {where} {problem}; send {example}")


class BadQueryParameter(ModelpilotError):
    """A query parameter is malformed or out of range.

    Examples
    --------
    >>> print(BadQueryParameter("limit", "a whole number from 1 to 10000", "abc", "GET /v1/x"))
    the query parameter 'limit' must be a whole number from 1 to 10000, got 'abc'; for example GET /v1/x
    """  # noqa: E501

    kind = "bad_request"

    def __init__(self, parameter: str, expected: str, got: str, example: str) -> None:
        self.parameter = parameter
        super().__init__(
            f"the query parameter {parameter!r} must be {expected}, got {got!r}; "
            f"for example {example}"
        )


def _json_type(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words.

    Examples
    --------
    >>> [_json_type(v) for v in ([1], "a", 2.5, True, None, {})]
    ['an array', 'a string', 'a number', 'true or false', 'null', 'an object']
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


async def json_body(request: Request, *, example: str, empty: Any = None) -> Any:
    """The body parsed as JSON; ``empty`` (when not None) stands for an empty body."""
    raw = await request.body()
    if not raw and empty is not None:
        return empty
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        where = f"{request.method} {request.url.path}"
        raise MalformedBody(where, f"is not valid JSON ({exc})", example) from None


async def json_object(
    request: Request, *, example: str, empty: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The body as a JSON object (a 400 for any other JSON value)."""
    body = await json_body(request, example=example, empty=empty)
    if not isinstance(body, dict):
        where = f"{request.method} {request.url.path}"
        raise MalformedBody(where, f"must be a JSON object, got {_json_type(body)}", example)
    return body


def check_types(body: Mapping[str, Any], types: Mapping[str, type]) -> None:
    """Refuse, with a 422 naming every one, the fields of ``body`` of the wrong JSON type,
    and strings longer than ``MAX_TEXT_CHARS``.

    An absent field passes (the handler applies its default); null does not: it is not a
    value of the field's type, and the OpenAPI document says so.

    Examples
    --------
    >>> check_types({"force": True}, {"force": bool, "reason": str})
    >>> check_types({"force": "false", "version": True}, {"force": bool, "version": int})
    Traceback (most recent call last):
    ...
    modelpilot.errors.ValidationFailed: 2 invalid input value(s): force: expected true or false, got 'false'; version: expected an integer, got True
    """  # noqa: E501
    problems = [
        {"field": name, "expected": _EXPECTED[kind], "got": body[name]}
        for name, kind in types.items()
        if name in body
        # JSON's true and false are Python's bool, a subclass of int: not a number here.
        and (not isinstance(body[name], kind) or (kind is int and isinstance(body[name], bool)))
    ]
    problems += [
        {
            "field": name,
            "expected": f"at most {MAX_TEXT_CHARS:,} characters",
            "got": f"{len(body[name]):,} characters",
        }
        for name, kind in types.items()
        if kind is str and isinstance(body.get(name), str) and len(body[name]) > MAX_TEXT_CHARS
    ]
    if problems:
        raise ValidationFailed(problems)


def integer_parameter(
    params: Mapping[str, str], name: str, *, default: int, low: int, high: int, example: str
) -> int:
    """A whole-number query parameter in ``[low, high]``; absent, ``default`` (empty is not
    a number).

    Examples
    --------
    >>> integer_parameter({"limit": "20"}, "limit", default=100, low=1, high=1000, example="")
    20
    >>> integer_parameter({}, "limit", default=100, low=1, high=1000, example="")
    100
    """
    raw = params.get(name)
    if raw is None:
        return default
    # str.isdigit alone admits other scripts' digits; int() admits signs, spaces and "_".
    if not (raw.isascii() and raw.isdigit() and low <= int(raw) <= high):
        raise BadQueryParameter(name, f"a whole number from {low} to {high}", raw, example)
    return int(raw)


def choice_parameter(
    params: Mapping[str, str], name: str, *, default: str, choices: Sequence[str], example: str
) -> str:
    """A query parameter that is one of ``choices``; absent, ``default`` (empty is none of
    them).

    Examples
    --------
    >>> choice_parameter({"status": "pendng"}, "status", default="pending",
    ...                  choices=("pending", "all"), example="GET /v1/reviews")
    Traceback (most recent call last):
    ...
    modelpilot.server._requests.BadQueryParameter: the query parameter 'status' must be one of pending, all, got 'pendng'; ...
    """  # noqa: E501
    raw = params.get(name, default)
    if raw not in choices:
        raise BadQueryParameter(name, f"one of {', '.join(choices)}", raw, example)
    return raw


def refuse_other_methods(request: Request) -> None:
    """Answer 405, as the router would, when another route serves this path with other methods.

    A route with a path parameter where another route has a fixed segment
    (``POST /v1/deployments/{name}/{action}`` beside ``GET /v1/deployments/{name}/status``)
    matches the request the other route refused: the router never gets to say 405.
    """
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        methods = getattr(route, "methods", None)
        if match is Match.PARTIAL and methods:
            raise HTTPException(405, headers={"Allow": ", ".join(sorted(methods))})
