"""The document itself: the paths of every route, the loaded deployments' feature schemas."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot._version import __version__
from modelpilot.server._openapi._blocks import DEPLOYMENT, V2_MODEL, path_param
from modelpilot.server._openapi._control import automation_paths, deployment_paths
from modelpilot.server._openapi._edge import edge_paths
from modelpilot.server._openapi._predictions import infer_operation, predict_operation
from modelpilot.server._openapi._routes import health_paths, monitoring_paths
from modelpilot.server._openapi._schemas import component_schemas
from modelpilot.server._openapi._screens import screen_paths
from modelpilot.spec import FeatureSpec

if TYPE_CHECKING:
    from modelpilot.server._state import ServerState

__all__ = ["openapi_document"]


_BOOLEAN_TEXT = {
    "type": "string",
    "pattern": r"^\s*([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|[Yy][Ee][Ss]|[Nn][Oo]"
    r"|[YyNnTtFf01])\s*$",
}


def _feature_schema(feature: FeatureSpec) -> dict[str, Any]:
    schema: dict[str, Any]
    if feature.type == "numeric":
        schema = {"type": "number"}
        if feature.range is not None:
            schema["minimum"], schema["maximum"] = feature.range
    elif feature.type == "boolean":
        # What the validator takes for a boolean: true/false, 0/1, and their usual spellings.
        schema = {"anyOf": [{"type": "boolean"}, {"enum": [0, 1]}, _BOOLEAN_TEXT]}
    elif feature.type == "categorical":
        schema = {"type": ["string", "number"], "description": "a number is read as its text"}
        if feature.categories:
            schema["examples"] = feature.categories
    else:
        schema = {"type": "string"}
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


_TAGS = {
    "predictions": "Predictions (JSON API)",
    "v2": "The Open Inference Protocol (KServe V2)",
    "feedback": "Ground truth for logged predictions",
    "deployments": "Deployments and the versions they serve",
    "rollout": "Canary, shadow, blue-green and rolling deployments",
    "automation": "Degrees of automation and retraining",
    "reviews": "The human review queue",
    "registry": "Registered models, their versions and aliases",
    "alerts": "Alerts",
    "monitoring": "Metrics",
    "dashboard": "The dashboard and the data it reads",
    "health": "Health and this document",
    "edge": "Edge devices: uploads, assignments, bundles, fleet rollouts",
}


def openapi_document(state: ServerState) -> dict[str, Any]:
    """The server's API; the predict paths of loaded deployments carry their feature schema."""
    generic = {"type": "object", "description": "one record: feature name to value"}
    paths: dict[str, Any] = {
        "/v1/deployments/{name}/predict": {
            "parameters": [DEPLOYMENT],
            "post": predict_operation("predict", "Predict with a deployment", generic),
        },
    }
    for deployment in state.manager.all():
        paths[f"/v1/deployments/{deployment.name}/predict"] = {
            "post": predict_operation(
                f"predict_{deployment.name}",
                f"Predict with {deployment.name} ({deployment.spec.model}@{deployment.spec.alias})",
                _record_schema(deployment.primary.validator.features),
            )
        }
    paths["/v2/models/{name}/infer"] = {
        "parameters": [V2_MODEL],
        "post": infer_operation("v2_infer", "V2 inference"),
    }
    paths["/v2/models/{name}/versions/{version}/infer"] = {
        "parameters": [V2_MODEL, path_param("version", "ignored: the deployment's router chooses")],
        "post": infer_operation("v2_infer_version", "V2 inference (the version is not pinned)"),
    }
    paths.update(
        {
            **deployment_paths(),
            **automation_paths(),
            **monitoring_paths(),
            **screen_paths(),
            **health_paths(),
            **edge_paths(),
        }
    )
    # The series' window is bounded by how long points are kept.
    for parameter in paths["/v1/metrics/series"]["get"]["parameters"]:
        if parameter["name"] == "since":
            retention = state.project.spec.monitoring.retention_days * 86400
            parameter["schema"] = {**parameter["schema"], "maximum": retention}
    # Links: where a listed deployment's name goes next (a client, or a stateful test such as
    # schemathesis's, follows them from the list to a prediction).
    first = "$response.body#/deployments/0/name"
    listed = paths["/v1/deployments"]["get"]["responses"]["200"]
    listed["links"] = {
        "predict": {"operationId": "predict", "parameters": {"name": first}},
        "v2_infer": {"operationId": "v2_infer", "parameters": {"name": first}},
        "v2_model": {"operationId": "v2_model", "parameters": {"name": first}},
        "rollout_status": {"operationId": "rollout_status", "parameters": {"name": first}},
    }
    named = {
        "v2_infer": {"operationId": "v2_infer", "parameters": {"name": "$response.body#/name"}}
    }
    paths["/v2/models/{name}"]["get"]["responses"]["200"]["links"] = named
    paths["/v1/deployments/{name}/reload"]["post"]["responses"]["200"]["links"] = dict(named)
    if state.tokens.open_predict:
        for item in paths.values():
            for operation in item.values():
                if isinstance(operation, dict) and operation.get("security") == [
                    {"bearer": ["predict"]}
                ]:
                    operation["security"] = [{"bearer": ["predict"]}, {}]  # {}: or no token
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"modelpilot: {state.project.spec.project}",
            "version": __version__,
            "description": "Every error answers with the Error object. An operation's bearer "
            "scope is the role its token needs: predict, review (the review queue only) or "
            "admin (an admin token works everywhere).",
        },
        "tags": [{"name": name, "description": text} for name, text in _TAGS.items()],
        "components": {
            "schemas": component_schemas(),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`modelpilot token create NAME --role "
                    "predict|review|admin`, or MODELPILOT_PREDICT_TOKEN / "
                    "MODELPILOT_REVIEW_TOKEN / MODELPILOT_ADMIN_TOKEN",
                }
            },
        },
        "paths": paths,
    }
