"""The OpenAPI document of a running server, with each deployment's input schema in it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot.spec import FeatureSpec

if TYPE_CHECKING:
    from modelpilot.serving._state import ServerState


def _feature_schema(feature: FeatureSpec) -> dict[str, Any]:
    schema: dict[str, Any]
    if feature.type == "numeric":
        schema = {"type": "number"}
        if feature.range is not None:
            schema["minimum"], schema["maximum"] = feature.range
    elif feature.type == "boolean":
        schema = {"type": "boolean"}
    else:
        schema = {"type": "string"}
        if feature.categories:
            schema["examples"] = feature.categories
    if feature.nullable:
        schema = {"anyOf": [schema, {"type": "null"}]}
    if feature.description:
        schema["description"] = feature.description
    return schema


def _record_schema(features: list[FeatureSpec]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.name: _feature_schema(f) for f in features},
        "required": [f.name for f in features if not f.nullable],
    }


_ERROR = {
    "description": "error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "error": {"type": "string"},
                    "message": {"type": "string"},
                    "problems": {"type": "array", "items": {"type": "object"}},
                },
            }
        }
    },
}


def openapi_document(state: ServerState) -> dict[str, Any]:
    from modelpilot import __version__

    paths: dict[str, Any] = {}
    for deployment in state.manager.all():
        record = _record_schema(deployment.primary.validator.features)
        paths[f"/v1/deployments/{deployment.name}/predict"] = {
            "post": {
                "summary": f"Predict with {deployment.name} ({deployment.spec.model}"
                f"@{deployment.spec.alias})",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    {
                                        "type": "object",
                                        "properties": {
                                            "instances": {"type": "array", "items": record},
                                            "key": {
                                                "type": "string",
                                                "description": "sticky routing key",
                                            },
                                        },
                                        "required": ["instances"],
                                    },
                                    record,
                                ]
                            }
                        }
                    },
                },
                "responses": {
                    "200": {"description": "one prediction per instance"},
                    "401": _ERROR,
                    "404": _ERROR,
                    "413": _ERROR,
                    "422": _ERROR,
                    "500": _ERROR,
                    "503": _ERROR,
                },
            }
        }
    simple = {"responses": {"200": {"description": "ok"}}}
    paths.update(
        {
            "/v2/models/{name}/infer": {
                "post": {
                    "summary": "Open Inference Protocol V2 inference",
                    "security": [{"bearer": []}],
                    "responses": {"200": {"description": "ok"}, "422": _ERROR},
                }
            },
            "/v2/models/{name}": {"get": {"summary": "V2 model metadata", **simple}},
            "/v2/models/{name}/ready": {"get": {"summary": "V2 model readiness", **simple}},
            "/v2/health/live": {"get": {"summary": "V2 liveness", **simple}},
            "/v2/health/ready": {"get": {"summary": "V2 readiness", **simple}},
            "/v1/feedback": {
                "post": {
                    "summary": "Ground-truth labels by prediction id",
                    "security": [{"bearer": []}],
                    **simple,
                }
            },
            "/v1/deployments": {"get": {"summary": "Deployments and their versions", **simple}},
            "/v1/deployments/{name}/reload": {
                "post": {
                    "summary": "Admin: load the version the deployment's alias points to now",
                    "security": [{"bearer": []}],
                    **simple,
                }
            },
            "/healthz": {"get": {"summary": "Liveness", **simple}},
            "/readyz": {"get": {"summary": "Readiness: 200 once the models are loaded", **simple}},
        }
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": f"modelpilot: {state.project.spec.project}", "version": __version__},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }
