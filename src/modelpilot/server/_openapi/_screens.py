"""The operations behind the dashboard's screens: who a token is, the reviewers' agreement over
time, the registry, a deployment's history and drift detail, and handling alerts."""

from __future__ import annotations

from typing import Any

from modelpilot.server._openapi._blocks import (
    BOOLEAN,
    DEPLOYMENT,
    INTEGER,
    NOT_READY,
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
    ref,
    request_body,
)

__all__ = ["screen_paths", "screen_schemas"]

_ENTRY_KINDS = ["rollout", "alert", "retrain", "audit"]


def screen_schemas() -> dict[str, Any]:
    """The schemas of these operations' bodies."""
    check = obj(
        {
            "metric": STRING,
            "op": STRING,
            "target": NUMBER,
            "value": nullable(NUMBER),
            "passed": BOOLEAN,
            "reason": STRING,
        }
    )
    distribution = obj(
        {
            "kind": enum(["histogram", "categories"]),
            "labels": array(STRING),
            "reference": array(NUMBER),
            "current": array(NUMBER),
            "edges": array(NUMBER),
        },
        required=["kind", "labels", "reference", "current"],
    )
    return {
        "ReviewAnswer": obj(
            {"kind": enum(["number", "class"]), "classes": array(STRING)},
            required=["kind", "classes"],
            description="What a decision is: a number (regression), or one of the classes.",
        ),
        "ModelVersionSummary": obj(
            {
                "version": INTEGER,
                "status": enum(["registered", "rejected", "archived"]),
                "flavor": STRING,
                "aliases": array(STRING),
                "serving": array(STRING),
                "created_at": NUMBER,
                "created_by": STRING,
                "checks": array(check),
                "metrics": {"type": "object"},
                "lineage": {"type": "object"},
                "tags": mapping(STRING),
                "profiled": BOOLEAN,
                "importance": nullable(mapping(NUMBER)),
            },
            required=["version", "status", "aliases", "serving", "created_at", "created_by"],
        ),
        "AliasMove": obj(
            {
                "id": INTEGER,
                "model_name": STRING,
                "alias": STRING,
                "version": INTEGER,
                "previous_version": nullable(INTEGER),
                "at": NUMBER,
                "by": STRING,
                "reason": STRING,
            },
            required=["alias", "version", "at", "by"],
        ),
        "HistoryEntry": obj(
            {
                "kind": enum(_ENTRY_KINDS),
                "at": NUMBER,
                "by": STRING,
                "steps": array(
                    {
                        "type": "object",
                        "description": "a rollout's history entry, as its strategy wrote it: "
                        "at, step, weight, gates, event and any other field",
                    }
                ),
            },
            required=["kind", "at"],
            description="One event: a rollout (its fields and steps), an alert, a retraining "
            "run, or an audit entry (action, target, details).",
        ),
        "DriftFeature": obj(
            {
                "name": STRING,
                "kind": STRING,
                "method": STRING,
                "statistic": NUMBER,
                "p_value": nullable(NUMBER),
                "p_value_adjusted": nullable(NUMBER),
                "threshold": NUMBER,
                "threshold_on": enum(["p_value", "statistic"]),
                "drifted": BOOLEAN,
                "effect_size": NUMBER,
                "n_reference": INTEGER,
                "n_current": INTEGER,
                "summary": distribution,
                "importance": nullable(NUMBER),
            },
            required=["name", "method", "statistic", "threshold", "drifted", "summary"],
        ),
        "Silence": obj(
            {
                "rule": STRING,
                "deployment": STRING,
                "labels": STRING,
                "starts_at": NUMBER,
                "ends_at": NUMBER,
                "created_by": STRING,
                "reason": STRING,
            },
            required=["rule", "deployment", "starts_at", "ends_at", "created_by"],
        ),
    }


def _registry_paths() -> dict[str, Any]:
    model = path_param("name", "the registered model's name")
    not_found = {"404": "not_found: no such model (or version)"}
    return {
        "/v1/models": {
            "get": operation(
                "list_models",
                "The registered models",
                tag="registry",
                role="predict",
                ok=json_response(
                    obj(
                        {
                            "models": array(
                                obj(
                                    {
                                        "name": STRING,
                                        "versions": INTEGER,
                                        "latest": INTEGER,
                                        "updated_at": NUMBER,
                                        "aliases": mapping(INTEGER),
                                    }
                                )
                            )
                        },
                        required=["models"],
                    )
                ),
            )
        },
        "/v1/models/{name}": {
            "parameters": [model],
            "get": operation(
                "get_model",
                "A model's versions (newest first), aliases and their history",
                tag="registry",
                role="predict",
                ok=json_response(
                    obj(
                        {
                            "name": STRING,
                            "versions": array(ref("ModelVersionSummary")),
                            "aliases": mapping(INTEGER),
                            "alias_history": array(ref("AliasMove")),
                            "deployments": array(STRING),
                        },
                        required=["name", "versions", "aliases", "alias_history"],
                    )
                ),
                errors=not_found,
            ),
        },
        "/v1/models/{name}/versions/{version}": {
            "parameters": [model, path_param("version", "the version's number")],
            "get": operation(
                "get_model_version",
                "One version: checks, lineage, profile, alias moves and its rollouts",
                tag="registry",
                role="predict",
                ok=json_response(
                    {
                        "allOf": [
                            ref("ModelVersionSummary"),
                            obj(
                                {
                                    "name": STRING,
                                    "sha256": STRING,
                                    "profile": nullable({"type": "object"}),
                                    "features": array({"type": "object"}),
                                    "alias_history": array(ref("AliasMove")),
                                    "rollouts": array({"type": "object"}),
                                },
                                required=["name", "rollouts"],
                            ),
                        ]
                    }
                ),
                errors=not_found,
            ),
        },
    }


def _alert_paths() -> dict[str, Any]:
    alert_id = path_param("id", "the alert's id (GET /v1/alerts)")
    errors = {
        "404": "not_found: no such alert",
        "409": "conflict: the alert resolved already",
        "503": NOT_READY,
    }
    return {
        "/v1/alerts/{id}/acknowledge": {
            "parameters": [alert_id],
            "post": operation(
                "acknowledge_alert",
                "Acknowledge an open alert: someone is on it (audited)",
                tag="alerts",
                role="admin",
                ok=json_response(ref("Alert"), "the alert, acknowledged"),
                errors=errors,
            ),
        },
        "/v1/alerts/{id}/silence": {
            "parameters": [alert_id],
            "post": operation(
                "silence_alert",
                "Mute the notifications of an alert's series for a while (audited)",
                description="The alert still shows, resolves and runs its actions; nobody is "
                "notified until the silence ends. duration_s 0 lifts a silence.",
                tag="alerts",
                role="admin",
                body=request_body(
                    obj(
                        {
                            "duration_s": {"type": "number", "minimum": 0, "maximum": 2592000},
                            "reason": STRING,
                        },
                        required=["duration_s"],
                    )
                ),
                ok=json_response(ref("Silence"), "the silence (ends_at = now when lifted)"),
                errors={
                    **errors,
                    "400": "bad_request: the body is not a JSON object, or a silence longer "
                    "than 30 days",
                    "422": "validation_error: duration_s missing or not a number of seconds",
                },
            ),
        },
    }


def screen_paths() -> dict[str, Any]:
    """The operations of the dashboard's screens beside the ones of ``_routes.py``."""
    seconds = {"type": "integer", "minimum": 60, "maximum": 366 * 86400}
    return {
        "/v1/whoami": {
            "get": operation(
                "whoami",
                "The token's name and role",
                description="Any token: predict, review or admin.",
                tag="dashboard",
                role="predict",
                ok=json_response(
                    obj({"name": STRING, "role": enum(["predict", "review", "admin"])}),
                ),
            )
        },
        "/v1/reviews/agreement": {
            "get": operation(
                "review_agreement",
                "How often reviewers agreed with the model, per span of time",
                tag="reviews",
                role="review",
                parameters=[
                    query_param("since", {**seconds, "default": 2592000}, "seconds back"),
                    query_param("bucket", {**seconds, "default": 86400}, "seconds per bucket"),
                    query_param("deployment", STRING, "only this deployment's reviews"),
                ],
                ok=json_response(
                    obj(
                        {
                            "since": NUMBER,
                            "bucket_s": INTEGER,
                            "buckets": array(
                                obj(
                                    {
                                        "start": NUMBER,
                                        "cases": INTEGER,
                                        "agreed": INTEGER,
                                        "rate": NUMBER,
                                    }
                                )
                            ),
                        },
                        required=["since", "bucket_s", "buckets"],
                    )
                ),
                errors={"400": "bad_request: since or bucket out of range", "503": NOT_READY},
            )
        },
        **_registry_paths(),
        "/v1/deployments/{name}/history": {
            "parameters": [DEPLOYMENT],
            "get": operation(
                "deployment_history",
                "What happened to a deployment, newest first",
                description="Rollouts with every step, weight and gate result; alerts fired "
                "and resolved; retraining runs; audit entries about the deployment or its model.",
                tag="deployments",
                role="predict",
                parameters=[
                    query_param("since", {**seconds, "default": 604800}, "seconds back"),
                    query_param(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": 2000, "default": 200},
                        "per kind",
                    ),
                ],
                ok=json_response(
                    obj(
                        {
                            "deployment": STRING,
                            "model": STRING,
                            "since": NUMBER,
                            "entries": array(ref("HistoryEntry")),
                        },
                        required=["deployment", "entries"],
                    )
                ),
                errors={
                    "400": "bad_request: since or limit out of range",
                    "404": "not_found: no such deployment",
                },
            ),
        },
        "/v1/deployments/{name}/drift": {
            "parameters": [DEPLOYMENT],
            "get": operation(
                "deployment_drift",
                "Drift now, per feature: reference and current distributions, statistic, "
                "threshold, importance",
                tag="monitoring",
                role="predict",
                ok=json_response(
                    obj(
                        {
                            "deployment": STRING,
                            "model": STRING,
                            "version": INTEGER,
                            "checked_at": NUMBER,
                            "window_s": NUMBER,
                            "rows": INTEGER,
                            "message": STRING,
                            "importance_known": BOOLEAN,
                            "importance_metric": nullable(STRING),
                            "features": array(ref("DriftFeature")),
                            "prediction": nullable(ref("DriftFeature")),
                            "correction": STRING,
                            "effect_size_floor": NUMBER,
                            "share_drifted": NUMBER,
                            "dataset_threshold": NUMBER,
                        },
                        required=["deployment", "rows", "message", "features"],
                        description="message says why features is empty (no reference "
                        "profile, too few predictions)",
                    )
                ),
                errors={"404": "not_found: no such deployment", "503": NOT_READY},
            ),
        },
        **_alert_paths(),
    }
