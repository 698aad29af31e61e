"""Health, V2 metadata, feedback, metrics, alerts and the dashboard: the read-mostly routes."""

from __future__ import annotations

from typing import Any

from modelpilot.server._openapi._blocks import (
    NOT_READY,
    STRING,
    V2_MODEL,
    json_response,
    nullable,
    obj,
    operation,
    path_param,
    query_param,
    ref,
    request_body,
)

__all__ = ["health_paths", "monitoring_paths"]


def health_paths() -> dict[str, Any]:
    live = obj({"status": {"type": "string", "const": "live"}}, required=["status"])
    v2_live = obj({"live": {"type": "boolean"}}, required=["live"])
    readiness = obj(
        {
            "status": {"type": "string", "enum": ["ready", "loading", "failed"]},
            "deployments": {"type": "array", "items": STRING},
            "failed": {"type": "object", "additionalProperties": STRING},
            "error": nullable(STRING),
        },
        required=["status"],
    )
    v2_ready = obj({"ready": {"type": "boolean"}}, required=["ready"])
    model_ready = obj({"name": STRING, "ready": {"type": "boolean"}}, required=["name", "ready"])
    not_loaded = "the models are still loading, or failed to load"
    metadata_errors = {"404": "not_found: no such deployment or model", "503": NOT_READY}
    metadata = json_response(ref("V2ModelMetadata"), "inputs, outputs and versions")
    return {
        "/healthz": {
            "get": operation(
                "healthz", "Liveness", tag="health", role=None, ok=json_response(live, "live")
            )
        },
        "/readyz": {
            "get": operation(
                "readyz",
                "Readiness: 200 once the models are loaded",
                tag="health",
                role=None,
                ok=json_response(
                    readiness,
                    "ready; with a token, the deployments' names and why any failed to load",
                ),
                responses={"503": json_response(readiness, f"{not_loaded}; error says why")},
            )
        },
        "/v2/health/live": {
            "get": operation(
                "v2_live", "V2 liveness", tag="v2", role=None, ok=json_response(v2_live, "live")
            )
        },
        "/v2/health/ready": {
            "get": operation(
                "v2_ready",
                "V2 readiness",
                tag="v2",
                role=None,
                ok=json_response(v2_ready, "ready"),
                responses={"503": json_response(v2_ready, not_loaded)},
            )
        },
        "/v2": {
            "get": operation(
                "v2_server",
                "V2 server metadata",
                tag="v2",
                role=None,
                ok=json_response(
                    obj(
                        {
                            "name": STRING,
                            "version": STRING,
                            "extensions": {"type": "array", "items": STRING},
                        },
                        required=["name", "version", "extensions"],
                    )
                ),
            )
        },
        "/v2/models/{name}": {
            "parameters": [V2_MODEL],
            "get": operation(
                "v2_model",
                "V2 model metadata",
                tag="v2",
                role=None,
                ok=metadata,
                errors=metadata_errors,
            ),
        },
        "/v2/models/{name}/versions/{version}": {
            "parameters": [V2_MODEL, path_param("version", "a version; the answer lists them all")],
            "get": operation(
                "v2_model_version",
                "V2 model metadata",
                tag="v2",
                role=None,
                ok=metadata,
                errors=metadata_errors,
            ),
        },
        "/v2/models/{name}/ready": {
            "parameters": [V2_MODEL],
            "get": operation(
                "v2_model_ready",
                "V2 model readiness",
                tag="v2",
                role=None,
                ok=json_response(model_ready, "ready"),
                errors={"404": "not_found: no such deployment or model"},
                responses={"503": json_response(model_ready, not_loaded)},
            ),
        },
    }


def monitoring_paths() -> dict[str, Any]:
    html = {"description": "the page", "content": {"text/html": {"schema": STRING}}}
    return {
        "/v1/feedback": {
            "post": operation(
                "feedback",
                "Ground-truth labels by prediction id, one or many",
                tag="feedback",
                role="predict",
                body=request_body(
                    {
                        "anyOf": [
                            ref("FeedbackItem"),
                            obj(
                                {"items": {"type": "array", "items": ref("FeedbackItem")}},
                                required=["items"],
                            ),
                            {"type": "array", "items": ref("FeedbackItem")},
                        ]
                    }
                ),
                ok=json_response(ref("FeedbackResponse"), "every item accepted"),
                responses={
                    "207": json_response(
                        ref("FeedbackResponse"), "some items accepted; see results"
                    ),
                    "422": json_response(
                        {"anyOf": [ref("FeedbackResponse"), ref("Error")]},
                        "no item accepted (the results say why), or a malformed body "
                        "(validation_error: no items, or an item's prediction_id, kind or "
                        "source of the wrong type)",
                    ),
                },
                errors={"400": "bad_request: the body is not JSON"},
            )
        },
        "/v1/alerts": {
            "get": operation(
                "alerts",
                "Active and recent alerts",
                tag="alerts",
                role="predict",
                ok=json_response(
                    obj(
                        {
                            "active": {"type": "array", "items": ref("Alert")},
                            "recent": {"type": "array", "items": ref("Alert")},
                            "silences": {"type": "array", "items": ref("Silence")},
                        },
                        required=["active", "recent", "silences"],
                    )
                ),
                errors={"503": NOT_READY},
            )
        },
        "/metrics": {
            "get": operation(
                "metrics",
                "Prometheus metrics",
                tag="monitoring",
                role=None,
                ok={
                    "description": "the Prometheus text format (empty when monitoring is off)",
                    "content": {"text/plain": {"schema": STRING}},
                },
            )
        },
        "/v1/metrics/names": {
            "get": operation(
                "metric_names",
                "The names of the stored metric series",
                tag="dashboard",
                role="predict",
                ok=json_response(
                    obj({"names": {"type": "array", "items": STRING}}, required=["names"])
                ),
            )
        },
        "/v1/metrics/series": {
            "get": operation(
                "metric_series",
                "Time series of stored metrics, thinned for a chart",
                tag="dashboard",
                role="predict",
                parameters=[
                    {
                        **query_param(
                            "name",
                            {
                                "type": "string",
                                "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(,[A-Za-z_][A-Za-z0-9_]*)*$",
                            },
                            "1 to 20 metric names, separated by commas",
                        ),
                        "required": True,
                    },
                    query_param("deployment", STRING, "only this deployment's series"),
                    query_param(
                        "labels",
                        {"type": "string", "pattern": r"^[^=,]+=[^,]*(,[^=,]+=[^,]*)*$"},
                        "k=v pairs separated by commas",
                    ),
                    query_param(
                        "since",
                        {"type": "number", "default": 3600, "exclusiveMinimum": 0},
                        "seconds back (at most monitoring.retention_days)",
                    ),
                    query_param(
                        "points",
                        {"type": "integer", "default": 600, "minimum": 2, "maximum": 10_000},
                        "at most, per series",
                    ),
                ],
                ok=json_response(ref("Series")),
                errors={
                    "400": "bad_request: a query parameter is missing or malformed",
                    "422": "query_too_large: more than 20 names, 100,000 stored points to read "
                    "or 50,000 points to answer",
                },
            )
        },
        "/v1/project": {
            "get": operation(
                "project",
                "The project: task, features, targets, objectives, deployments",
                tag="dashboard",
                role="predict",
                ok=json_response(ref("Project")),
            )
        },
        "/": {"get": operation("dashboard", "The dashboard", tag="dashboard", role=None, ok=html)},
        "/static/{path}": {
            "parameters": [path_param("path", "a file of the dashboard: app.js, style.css")],
            "get": operation(
                "static_file",
                "The dashboard's script and style sheet",
                tag="dashboard",
                role=None,
                ok={"description": "the file"},
                errors={"404": "not_found: no such file"},
            ),
        },
        "/openapi.json": {
            "get": operation(
                "openapi",
                "This document",
                tag="health",
                role=None,
                ok=json_response({"type": "object"}, "the OpenAPI 3.1 document"),
            )
        },
    }
