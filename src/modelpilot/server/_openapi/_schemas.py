"""The schemas of the OpenAPI document: the one error object, and every request and response body.

Each schema mirrors the code that builds the JSON (``ModelpilotError.to_dict``,
``RolloutController.status``, ``ReviewItem.to_dict``, ...): a change there is a change here too.
The document itself is put together in ``_document.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelpilot.rollout import STRATEGIES
from modelpilot.server._openapi._blocks import (
    ANY,
    BOOLEAN,
    INTEGER,
    NUMBER,
    STRING,
    TEXT,
    array,
    enum,
    mapping,
    nullable,
    obj,
    ref,
)
from modelpilot.server._openapi._operation_schemas import operation_schemas
from modelpilot.server._openapi._screens import screen_schemas
from modelpilot.server._v2_tensors import DATATYPES, MAX_DIMENSIONS
from modelpilot.spec import DEGREES

__all__ = ["component_schemas"]


def _errors() -> dict[str, Any]:
    return {
        "Error": obj(
            {
                "error": {
                    "type": "string",
                    "description": "the kind of error (not_found, validation_error, "
                    "unauthorized, forbidden, conflict, not_ready, ...); on /v2 paths the "
                    "message, as the Open Inference Protocol asks",
                },
                "message": {
                    "type": "string",
                    "description": "what was wrong, what is allowed, and what to do next",
                },
                "kind": {"type": "string", "description": "on /v2 paths only: the kind"},
                "problems": {
                    "type": "array",
                    "description": "validation_error: every invalid value; config_error: "
                    "every problem of the configuration, as text",
                    "items": {"anyOf": [ref("Problem"), STRING]},
                },
                "prediction_ids": {
                    "type": "array",
                    "items": STRING,
                    "description": "model_error: the ids under which the server log and the "
                    "prediction log hold the failed request",
                },
            },
            required=["error", "message"],
            description="Every error response (ModelpilotError.to_dict).",
        ),
        "Problem": obj(
            {
                "instance": {"type": "integer", "description": "index of the instance"},
                "field": {"type": "string", "description": "the feature or field"},
                "expected": {"type": "string"},
                "got": {"description": "the value received, or (missing)"},
            },
            required=["field", "expected", "got"],
            description="One invalid value of a validation_error.",
        ),
    }


def _predictions() -> dict[str, Any]:
    tensor_parameters = obj(
        {
            "binary_data_size": {
                "type": "integer",
                "description": "the tensor is this many bytes after the JSON header",
            },
            "binary_data": {"type": "boolean", "description": "outputs: answer in binary"},
        }
    )
    return {
        "Prediction": obj(
            {
                "id": {"type": "string", "description": "the prediction id, for feedback"},
                "prediction": ANY,
                "probabilities": mapping(NUMBER),
                "confidence": NUMBER,
                "status": enum(
                    ["deferred", "pending_review", "decided_by_model"],
                    "with a degree of automation below full: who answers",
                ),
                "review_id": {"type": "string", "description": "GET /v1/reviews/{id} polls it"},
                "suggestion": {"description": "assist and partial: the model's answer"},
            },
            required=["id"],
        ),
        "PredictResponse": obj(
            {
                "deployment": STRING,
                "model": STRING,
                "version": INTEGER,
                "predictions": array(ref("Prediction")),
            },
            required=["deployment", "model", "version", "predictions"],
        ),
        "V2InferenceRequest": obj(
            {
                "id": STRING,
                "parameters": obj({"binary_data_output": BOOLEAN}),
                "inputs": {
                    **array(
                        {
                            # JSON data, or binary data after the header (its size declared).
                            "anyOf": [
                                {"required": ["data"]},
                                {
                                    "required": ["parameters"],
                                    "properties": {
                                        "parameters": {"required": ["binary_data_size"]}
                                    },
                                },
                            ],
                            **obj(
                                {
                                    "name": STRING,
                                    "shape": {
                                        **array({"type": "integer", "minimum": 0}),
                                        "minItems": 1,
                                        "maxItems": MAX_DIMENSIONS,
                                    },
                                    "datatype": enum(DATATYPES),
                                    "parameters": tensor_parameters,
                                    "data": {
                                        "description": "the values, flat or nested as the shape: "
                                        "exactly as many as the shape says"
                                    },
                                },
                                required=["name", "shape", "datatype"],
                            ),
                        }
                    ),
                    "minItems": 1,
                },
                "outputs": array(
                    obj({"name": STRING, "parameters": tensor_parameters}, required=["name"])
                ),
            },
            required=["inputs"],
            description="One tensor per feature ([n] or [n, 1]), or one [n, n_features] tensor.",
        ),
        "V2InferenceResponse": obj(
            {
                "id": STRING,
                "model_name": STRING,
                "model_version": STRING,
                "outputs": array(
                    obj(
                        {
                            "name": enum(["predict", "predict_proba", "prediction_id"]),
                            "datatype": STRING,
                            "shape": array(INTEGER),
                            "data": array(ANY),
                            "parameters": tensor_parameters,
                        },
                        required=["name", "datatype", "shape"],
                    )
                ),
            },
            required=["model_name", "model_version", "outputs"],
        ),
        "V2ModelMetadata": obj(
            {
                "name": STRING,
                "versions": array(STRING),
                "platform": STRING,
                "inputs": array(ref("V2TensorMetadata")),
                "outputs": array(ref("V2TensorMetadata")),
            },
            required=["name", "versions", "platform", "inputs", "outputs"],
        ),
        "V2TensorMetadata": obj(
            {"name": STRING, "datatype": STRING, "shape": array(INTEGER)},
            required=["name", "datatype", "shape"],
        ),
        "FeedbackItem": obj(
            {
                "prediction_id": {"type": "string", "minLength": 1, "maxLength": 32},
                "label": {
                    "description": "the ground truth (required for kind label): one of the "
                    "model's classes for a classifier, a finite number for a regressor"
                },
                "kind": enum(["label", "redo", "correction"]),
                "source": {"type": "string", "default": "api", "maxLength": 200},
                "replace": {
                    "type": "boolean",
                    "default": False,
                    "description": "correct the prediction's label: the earlier one is kept "
                    "as history and no longer counts",
                },
            },
            required=["prediction_id"],
        ),
        "FeedbackResponse": obj(
            {
                "accepted": INTEGER,
                "rejected": INTEGER,
                "results": array(
                    obj(
                        {"prediction_id": STRING, "accepted": BOOLEAN, "error": STRING},
                        required=["prediction_id", "accepted"],
                    )
                ),
            },
            required=["accepted", "rejected", "results"],
        ),
    }


def _deployments(strategies: Iterable[str]) -> dict[str, Any]:
    rollout = obj(
        {
            "id": INTEGER,
            "deployment": STRING,
            "strategy": enum(strategies),
            "candidate_version": INTEGER,
            "primary_version": nullable(INTEGER),
            "status": {
                "type": "string",
                "description": "running, switched (blue-green), promoted, rolled_back, aborted",
            },
            "step": INTEGER,
            "step_started_at": NUMBER,
            "paused": BOOLEAN,
            "config": {"type": "object"},
            "reason": TEXT,
            "created_at": NUMBER,
            "created_by": STRING,
            "finished_at": nullable(NUMBER),
            "history": array({"type": "object"}),
            "step_of": {"type": "string", "description": "canary: e.g. 2/4"},
            "weight": {"type": "number", "description": "canary: the candidate's percent"},
            "next_step_in_s": nullable(NUMBER),
            "gates": array({"type": "object"}),
            "shadow": {"type": "object", "description": "shadow: the comparison so far"},
            "workers": array({"type": "object"}),
            "standby_version": INTEGER,
            "standby_until": nullable(NUMBER),
        },
        required=["id", "deployment", "strategy", "candidate_version", "status"],
        description="A rollout (RolloutRecord.to_dict, with progress while it is active).",
    )
    return {
        "Deployment": obj(
            {
                "name": STRING,
                "model": STRING,
                "alias": STRING,
                "versions": array(
                    obj(
                        {
                            "version": INTEGER,
                            "status": STRING,
                            "batches": INTEGER,
                            "rows": INTEGER,
                        },
                        required=["version", "status"],
                    )
                ),
            },
            required=["name", "model", "alias", "versions"],
        ),
        "Rollout": rollout,
        "RolloutStatus": obj(
            {
                "deployment": STRING,
                "model": nullable(STRING),
                "version": INTEGER,
                "last_good_version": nullable(INTEGER),
                "routing": obj(
                    {
                        "kind": enum(["static", "canary", "shadow"]),
                        "traffic": mapping(NUMBER),
                        "shadow": INTEGER,
                    },
                    required=["kind", "traffic"],
                    description="percent of traffic per version",
                ),
                "rollout": {"anyOf": [ref("Rollout"), {"type": "null"}]},
                "recent": array(ref("Rollout")),
            },
            required=["deployment", "version", "routing", "rollout", "recent"],
            description="RolloutController.status: what serves now, the active rollout.",
        ),
        "DeployRequest": obj(
            {
                "version": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                "strategy": {**enum(strategies), "default": "canary"},
                "force": {
                    "type": "boolean",
                    "default": False,
                    "description": "deploy a rejected version; required by direct",
                },
                "reason": TEXT,
            },
            required=["version"],
        ),
        "ActionRequest": obj(
            {"reason": TEXT}, description="Optional; the reason goes to the audit log."
        ),
    }


def component_schemas() -> dict[str, Any]:
    """``components.schemas`` of the document."""
    return {
        **_errors(),
        **_predictions(),
        **_deployments(STRATEGIES),
        **operation_schemas(DEGREES),
        **screen_schemas(),
    }
