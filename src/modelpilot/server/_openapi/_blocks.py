"""The building blocks of the document: operations, parameters, responses, schema helpers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

__all__ = [
    "ANY",
    "BOOLEAN",
    "DEPLOYMENT",
    "INTEGER",
    "NOT_READY",
    "NUMBER",
    "ROUTING_KEY",
    "STRING",
    "V2_MODEL",
    "Role",
    "array",
    "enum",
    "error_response",
    "json_response",
    "mapping",
    "nullable",
    "obj",
    "operation",
    "path_param",
    "query_param",
    "ref",
    "request_body",
]

Role = Literal["predict", "review", "admin"] | None

_ROLE_TEXT: dict[Role, str] = {
    None: "No token.",
    "predict": "Needs a predict or admin token (none with serving.open_predict: true).",
    "review": "Needs a review or admin token.",
    "admin": "Needs an admin token.",
}
ANY: dict[str, Any] = {}  # any JSON value: a label, a prediction, a decision
STRING = {"type": "string"}
#: Free text a request stores (a reason): capped (server/_requests.py MAX_TEXT_CHARS).
TEXT = {"type": "string", "maxLength": 2000}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
BOOLEAN = {"type": "boolean"}


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if set(schema) == {"type"} and isinstance(schema["type"], str):
        return {"type": [schema["type"], "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def obj(
    properties: dict[str, Any],
    *,
    required: Iterable[str] = (),
    description: str = "",
    additional: Any = None,
) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    needed = list(required)
    if needed:
        schema["required"] = needed
    if description:
        schema["description"] = description
    if additional is not None:
        schema["additionalProperties"] = additional
    return schema


def json_response(schema: dict[str, Any], description: str = "ok") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error_response(description: str) -> dict[str, Any]:
    return json_response(ref("Error"), description)


def request_body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": STRING,
        "description": description,
    }


def query_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


DEPLOYMENT = path_param("name", "the deployment's name")
V2_MODEL = path_param("name", "the deployment's name, or the name of the model it serves")
ROUTING_KEY = {
    "name": "X-Modelpilot-Key",
    "in": "header",
    "schema": STRING,
    "description": "sticky routing key: during a canary, one key always meets one version",
}
_AUTH_ERRORS = {
    "401": "unauthorized: no token, not 'Authorization: Bearer TOKEN', or an unknown token",
    "403": "forbidden: a predict token; this needs an admin token",
    "403 review": "forbidden: a predict token; this needs a review or admin token",
    "403 predict": "forbidden: a review token, which reads and decides reviews only",
}
NOT_READY = "not_ready: the server is still loading its models (or failed to); retry"


def operation(
    operation_id: str,
    summary: str,
    *,
    tag: str,
    role: Role,
    ok: dict[str, Any],
    errors: dict[str, str] | None = None,
    description: str = "",
    body: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    responses: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One operation; its 401 (and for admin 403) follow from ``role``."""
    failures = dict(errors or {})
    if role is not None:
        failures["401"] = _AUTH_ERRORS["401"]
    if role == "admin":
        failures["403"] = _AUTH_ERRORS["403"]
    elif role is not None:
        failures["403"] = _AUTH_ERRORS[f"403 {role}"]
    all_responses = {"200": ok, **(responses or {})}
    all_responses.update({status: error_response(text) for status, text in failures.items()})
    all_responses = dict(sorted(all_responses.items()))
    all_responses["default"] = error_response("any other error, e.g. 500 internal_error")
    op: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "description": f"{_ROLE_TEXT[role]} {description}".strip(),
        "tags": [tag],
        "security": [{"bearer": [role]}] if role is not None else [],
    }
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    op["responses"] = all_responses
    return op


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def mapping(values: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": values}


def enum(values: Iterable[str], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "enum": list(values)}
    if description:
        schema["description"] = description
    return schema
