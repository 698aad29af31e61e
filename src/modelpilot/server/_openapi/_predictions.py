"""The prediction paths that the raw ASGI function of ``_app.py`` answers before Starlette."""

from __future__ import annotations

from typing import Any

from modelpilot.server._openapi._blocks import (
    NOT_READY,
    ROUTING_KEY,
    json_response,
    obj,
    operation,
    ref,
    request_body,
)

__all__ = ["PREDICT_ERRORS", "infer_operation", "predict_operation"]

PREDICT_ERRORS = {
    "400": "bad_request: the body is not JSON, or not a JSON object",
    "404": "not_found: no such deployment",
    "413": "body_too_large: the body is larger than serving.max_body_bytes",
    "422": "validation_error: every invalid value; or no instances, or more than "
    "serving.max_instances",
    "500": "model_error: the model (or a pipeline step) raised; prediction_ids name the request",
    "503": f"{NOT_READY}; log_queue_full: the prediction log is behind, nothing was done",
}


def predict_operation(operation_id: str, summary: str, record: dict[str, Any]) -> dict[str, Any]:
    many = obj(
        {
            "instances": {"type": "array", "items": record, "minItems": 1},
            "key": {"type": "string", "description": "sticky routing key"},
        },
        required=["instances"],
    )
    return operation(
        operation_id,
        summary,
        tag="predictions",
        role="predict",
        description='Send {"instances": [...]} or one record. Each prediction has an id for '
        "POST /v1/feedback.",
        parameters=[ROUTING_KEY],
        body=request_body({"anyOf": [many, record]}),
        ok=json_response(ref("PredictResponse"), "one prediction per instance, in order"),
        errors=PREDICT_ERRORS,
    )


def infer_operation(operation_id: str, summary: str) -> dict[str, Any]:
    binary = {
        "schema": {
            "description": "the JSON request (Inference-Header-Content-Length bytes), then "
            "the tensors' raw bytes"
        }
    }
    header_length = {
        "name": "Inference-Header-Content-Length",
        "in": "header",
        "schema": {"type": "integer", "minimum": 0},
        "description": "binary tensor extension: the length of the JSON part of the body",
    }
    ok = {
        "description": "the outputs predict, predict_proba (classifiers) and prediction_id; "
        "in binary when the request asks for it",
        "headers": {
            "Inference-Header-Content-Length": {
                "schema": {"type": "integer"},
                "description": "with binary outputs: the length of the JSON part",
            }
        },
        "content": {
            "application/json": {"schema": ref("V2InferenceResponse")},
            "application/octet-stream": binary,
        },
    }
    errors = {**PREDICT_ERRORS, "400": "bad_request: not JSON, or malformed tensors or outputs"}
    return operation(
        operation_id,
        summary,
        tag="v2",
        role="predict",
        description="The Open Inference Protocol (KServe V2) with the binary tensor extension. "
        "Errors carry the message in `error`, the kind in `kind`.",
        parameters=[ROUTING_KEY, header_length],
        body={
            "required": True,
            "content": {
                "application/json": {"schema": ref("V2InferenceRequest")},
                "application/octet-stream": binary,
            },
        },
        ok=ok,
        errors=errors,
    )
