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
    nullable,
    obj,
    ref,
)
from modelpilot.spec import DEGREES

__all__ = ["component_schemas"]


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _map(values: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": values}


def _enum(values: Iterable[str], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "enum": list(values)}
    if description:
        schema["description"] = description
    return schema


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
                "probabilities": _map(NUMBER),
                "confidence": NUMBER,
                "status": _enum(
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
                "predictions": _array(ref("Prediction")),
            },
            required=["deployment", "model", "version", "predictions"],
        ),
        "V2InferenceRequest": obj(
            {
                "id": STRING,
                "parameters": obj({"binary_data_output": BOOLEAN}),
                "inputs": _array(
                    obj(
                        {
                            "name": STRING,
                            "shape": _array(INTEGER),
                            "datatype": STRING,
                            "parameters": tensor_parameters,
                            "data": {"description": "the values, flat or nested"},
                        },
                        required=["name", "shape"],
                    )
                ),
                "outputs": _array(
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
                "outputs": _array(
                    obj(
                        {
                            "name": _enum(["predict", "predict_proba", "prediction_id"]),
                            "datatype": STRING,
                            "shape": _array(INTEGER),
                            "data": _array(ANY),
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
                "versions": _array(STRING),
                "platform": STRING,
                "inputs": _array(ref("V2TensorMetadata")),
                "outputs": _array(ref("V2TensorMetadata")),
            },
            required=["name", "versions", "platform", "inputs", "outputs"],
        ),
        "V2TensorMetadata": obj(
            {"name": STRING, "datatype": STRING, "shape": _array(INTEGER)},
            required=["name", "datatype", "shape"],
        ),
        "FeedbackItem": obj(
            {
                "prediction_id": STRING,
                "label": {"description": "the ground truth (required for kind label)"},
                "kind": _enum(["label", "redo", "correction"]),
                "source": {"type": "string", "default": "api"},
            },
            required=["prediction_id"],
        ),
        "FeedbackResponse": obj(
            {
                "accepted": INTEGER,
                "rejected": INTEGER,
                "results": _array(
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
            "strategy": _enum(strategies),
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
            "reason": STRING,
            "created_at": NUMBER,
            "created_by": STRING,
            "finished_at": nullable(NUMBER),
            "history": _array({"type": "object"}),
            "step_of": {"type": "string", "description": "canary: e.g. 2/4"},
            "weight": {"type": "number", "description": "canary: the candidate's percent"},
            "next_step_in_s": nullable(NUMBER),
            "gates": _array({"type": "object"}),
            "shadow": {"type": "object", "description": "shadow: the comparison so far"},
            "workers": _array({"type": "object"}),
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
                "versions": _array(
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
                        "kind": _enum(["static", "canary", "shadow"]),
                        "traffic": _map(NUMBER),
                        "shadow": INTEGER,
                    },
                    required=["kind", "traffic"],
                    description="percent of traffic per version",
                ),
                "rollout": {"anyOf": [ref("Rollout"), {"type": "null"}]},
                "recent": _array(ref("Rollout")),
            },
            required=["deployment", "version", "routing", "rollout", "recent"],
            description="RolloutController.status: what serves now, the active rollout.",
        ),
        "DeployRequest": obj(
            {
                "version": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                "strategy": {**_enum(strategies), "default": "canary"},
                "force": {
                    "type": "boolean",
                    "default": False,
                    "description": "deploy a rejected version; required by direct",
                },
                "reason": STRING,
            },
            required=["version"],
        ),
        "ActionRequest": obj(
            {"reason": STRING}, description="Optional; the reason goes to the audit log."
        ),
    }


def _operations(degrees: Iterable[str]) -> dict[str, Any]:
    degree = _enum(degrees)
    agreement = _map(obj({"rate": NUMBER, "cases": INTEGER}))
    return {
        "Alert": obj(
            {
                "id": nullable(INTEGER),
                "rule": STRING,
                "deployment": STRING,
                "labels": _map(STRING),
                "state": _enum(["pending", "firing", "resolved"]),
                "severity": STRING,
                "metric": nullable(STRING),
                "comparison": nullable(STRING),
                "value": nullable(NUMBER),
                "threshold": NUMBER,
                "clear_threshold": NUMBER,
                "started_at": NUMBER,
                "fired_at": nullable(NUMBER),
                "resolved_at": nullable(NUMBER),
                "annotations": _map(STRING),
                "actions": _map({"type": "object"}),
            },
            required=["rule", "deployment", "state", "severity"],
        ),
        "AutomationState": obj(
            {
                "deployment": STRING,
                "degree": degree,
                "proposal": nullable(degree),
                "proposal_reason": nullable(STRING),
                "updated_at": NUMBER,
                "updated_by": STRING,
                "reason": STRING,
                "review": ref("ReviewStats"),
            },
            required=["deployment", "degree", "updated_at", "updated_by", "reason"],
        ),
        "AutomationChange": obj(
            {
                "degree": degree,
                "apply_proposal": {
                    "type": "boolean",
                    "description": "set the degree the ladder proposes",
                },
                "reason": STRING,
            },
            description="degree, or apply_proposal: true.",
        ),
        "Review": obj(
            {
                "id": STRING,
                "deployment": STRING,
                "model": STRING,
                "version": nullable(INTEGER),
                "prediction_id": STRING,
                "degree": degree,
                "status": _enum(["pending", "decided", "expired"]),
                "created_at": NUMBER,
                "inputs": {"type": "object"},
                "suggestion": {"description": "null while shadow/human items are pending"},
                "confidence": nullable(NUMBER),
                "decided_at": nullable(NUMBER),
                "decided_by": nullable(STRING),
                "decision": ANY,
                "agreed": nullable(BOOLEAN),
            },
            required=["id", "deployment", "prediction_id", "degree", "status", "inputs"],
        ),
        "ReviewStats": obj(
            {
                "pending": INTEGER,
                "oldest_age_s": NUMBER,
                "agreement": agreement,
                "agreement_by_class": agreement,
            },
            required=["pending", "oldest_age_s", "agreement", "agreement_by_class"],
        ),
        "RetrainRun": obj(
            {
                "id": INTEGER,
                "model": STRING,
                "trigger": STRING,
                "status": STRING,
                "started_at": NUMBER,
                "finished_at": nullable(NUMBER),
                "version": nullable(INTEGER),
                "details": {"type": "object"},
                "started_by": STRING,
            },
            required=["id", "model", "trigger", "status", "started_at"],
        ),
        "Project": obj(
            {
                "project": STRING,
                "task": STRING,
                "target": STRING,
                "model": STRING,
                "features": _array(obj({"name": STRING, "type": STRING})),
                "key_metrics": _array(
                    obj({"name": STRING, "op": STRING, "target": NUMBER, "text": STRING})
                ),
                "service_objectives": {"type": "object"},
                "monitoring": obj(
                    {"interval_s": NUMBER, "drift_interval_s": NUMBER, "retention_days": NUMBER}
                ),
                "deployments": _array(STRING),
                "endpoints": obj({"alerts": BOOLEAN}),
                "server": obj(
                    {"version": STRING, "started_at": NUMBER, "ready": BOOLEAN},
                ),
            },
            required=["project", "task", "features", "deployments", "server"],
            description="describe_project: what the dashboard shows about the project.",
        ),
        "Series": obj(
            {
                "now": NUMBER,
                "since": NUMBER,
                "labels": _map(STRING),
                "series": _array(
                    obj(
                        {
                            "name": STRING,
                            "deployment": STRING,
                            "labels": _map(STRING),
                            "points": _array(
                                obj(
                                    {
                                        "ts": NUMBER,
                                        "value": nullable(NUMBER),
                                        "labels": _map(STRING),
                                    }
                                )
                            ),
                        }
                    )
                ),
            },
            required=["now", "since", "labels", "series"],
        ),
    }


def component_schemas() -> dict[str, Any]:
    """``components.schemas`` of the document."""
    return {
        **_errors(),
        **_predictions(),
        **_deployments(STRATEGIES),
        **_operations(DEGREES),
    }
