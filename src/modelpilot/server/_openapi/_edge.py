"""The edge devices' routes (``server/_edge.py``): uploads, assignments, bundles, rollouts."""

from __future__ import annotations

from typing import Any

from modelpilot.edge import MAX_RECORDS
from modelpilot.server._openapi._blocks import (
    ANY,
    BOOLEAN,
    DEPLOYMENT,
    INTEGER,
    NUMBER,
    STRING,
    array,
    enum,
    json_response,
    mapping,
    nullable,
    obj,
    operation,
    path_param,
    query_param,
    request_body,
)

__all__ = ["edge_paths"]

_NOT_FOUND = "not_found: no such deployment (or version)"
_BODY = {"400": "bad_request: the body is not a JSON object"}
_KEY = "no_signing_key: the server has no edge signing key (`modelpilot keys create`)"


# The device id's rule (modelpilot_edge.DEVICE_PATTERN), as the server checks it.
_DEVICE = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"}


def _record() -> dict[str, Any]:
    return obj(
        {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,32}$"},
            "ts": NUMBER,
            "model": STRING,
            "version": INTEGER,
            "inputs": mapping(ANY),
            "outputs": obj(
                {"prediction": ANY, "probabilities": mapping(NUMBER), "error": STRING},
                required=["prediction"],
            ),
            "latency_ms": nullable(NUMBER),
        },
        required=["id", "ts", "model", "version", "inputs", "outputs"],
        description="one prediction of the device's log",
    )


def _rollout() -> dict[str, Any]:
    return obj(
        {
            "id": INTEGER,
            "primary_version": INTEGER,
            "candidate_version": INTEGER,
            "share": NUMBER,
            "state": enum(["running", "promoted", "rolled_back"]),
            "started_at": NUMBER,
            "ended_at": nullable(NUMBER),
            "reason": STRING,
            "failures": INTEGER,
            "gates": array({"type": "object"}),
        },
        required=["id", "candidate_version", "share", "state"],
    )


def _fleet() -> dict[str, Any]:
    device = obj(
        {
            "device": STRING,
            "first_seen": NUMBER,
            "last_seen": NUMBER,
            "assigned_version": nullable(INTEGER),
            "last_sync": nullable(NUMBER),
            "uploaded": INTEGER,
            "duplicates": INTEGER,
            "dropped": INTEGER,
            "canary": BOOLEAN,
            "drift_share": nullable(NUMBER),
        },
        required=["device"],
    )
    return obj(
        {
            "deployment": STRING,
            "model": STRING,
            "version": INTEGER,
            "rollout": {"anyOf": [_rollout(), {"type": "null"}]},
            "devices": array(device),
        },
        required=["deployment", "model", "version", "rollout", "devices"],
    )


def edge_paths() -> dict[str, Any]:
    fleet = json_response(_fleet(), "the fleet's version, its rollout and its devices")
    return {
        "/v1/edge/{name}/predictions": {
            "parameters": [DEPLOYMENT],
            "post": operation(
                "edge_upload",
                "Upload a device's logged predictions",
                tag="edge",
                role="predict",
                description="Stored with source edge and the device's id; a prediction id "
                "already logged is counted as a duplicate, not stored again.",
                body=request_body(
                    obj(
                        {
                            "device": _DEVICE,
                            "dropped": INTEGER,
                            "records": {**array(_record()), "minItems": 1, "maxItems": MAX_RECORDS},
                        },
                        required=["device", "records"],
                    )
                ),
                ok=json_response(
                    obj(
                        {
                            "deployment": STRING,
                            "device": STRING,
                            "accepted": INTEGER,
                            "duplicates": INTEGER,
                        },
                        required=["accepted", "duplicates"],
                    )
                ),
                errors={
                    **_BODY,
                    "404": _NOT_FOUND,
                    "422": "validation_error: every malformed record, or the device id",
                },
            ),
        },
        "/v1/edge/{name}/assignment": {
            "parameters": [DEPLOYMENT],
            "get": operation(
                "edge_assignment",
                "The version a device should run, signed",
                tag="edge",
                role="predict",
                parameters=[
                    {**query_param("device", _DEVICE, "the device's id"), "required": True}
                ],
                ok=json_response(
                    obj(
                        {"document": {"type": "object"}, "signature": STRING},
                        required=["document", "signature"],
                    ),
                    "the assignment (deployment, device, model, version, rollout, bundle: "
                    "sha256, bytes, url; issued_at) and its Ed25519 signature in hex",
                ),
                errors={
                    "400": "bad_request: no device, or a malformed one; or the version cannot "
                    "be exported",
                    "404": _NOT_FOUND,
                    "409": _KEY,
                },
            ),
        },
        "/v1/edge/{name}/bundles/{version}": {
            "parameters": [DEPLOYMENT, path_param("version", "a version of the model")],
            "get": operation(
                "edge_bundle",
                "A signed bundle of a version (a zip)",
                tag="edge",
                role="predict",
                ok={
                    "description": "the bundle",
                    "content": {"application/zip": {"schema": {**STRING, "format": "binary"}}},
                },
                errors={"400": "the version cannot be exported", "404": _NOT_FOUND, "409": _KEY},
            ),
        },
        "/v1/edge/{name}/devices": {
            "parameters": [DEPLOYMENT],
            "get": operation(
                "edge_devices",
                "The fleet: its version, its rollout, every device",
                tag="edge",
                role="predict",
                ok=fleet,
                errors={"404": _NOT_FOUND},
            ),
        },
        "/v1/edge/{name}/rollout": {
            "parameters": [DEPLOYMENT],
            "get": operation(
                "edge_rollout",
                "The fleet's rollout and its gates (judged when due)",
                tag="edge",
                role="predict",
                ok=fleet,
                errors={"404": _NOT_FOUND},
            ),
            "post": operation(
                "edge_rollout_start",
                "Give a version to a share of the devices",
                tag="edge",
                role="admin",
                body=request_body(
                    obj(
                        {
                            "version": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                            "share": {
                                "type": "number",
                                "exclusiveMinimum": 0,
                                "maximum": 100,
                                "default": 50,
                            },
                            "force": BOOLEAN,
                        },
                        required=["version"],
                    )
                ),
                ok=fleet,
                errors={
                    **_BODY,
                    "404": _NOT_FOUND,
                    "409": "conflict: a rollout runs, or the version is rejected or runs already",
                    "422": "validation_error: version or share",
                },
            ),
        },
        "/v1/edge/{name}/rollout/{action}": {
            "parameters": [DEPLOYMENT, path_param("action", "promote or rollback")],
            "post": operation(
                "edge_rollout_end",
                "Promote or roll back the fleet's rollout",
                tag="edge",
                role="admin",
                body=request_body(obj({"reason": STRING}), required=False),
                ok=fleet,
                errors={
                    **_BODY,
                    "404": "not_found: no such deployment or action",
                    "409": "conflict: no rollout is running",
                    "422": "validation_error: reason is not a string",
                },
            ),
        },
    }
