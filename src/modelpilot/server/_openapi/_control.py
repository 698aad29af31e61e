"""Deployments, rollouts, automation, reviews and retraining: the operations that change things."""

from __future__ import annotations

from typing import Any

from modelpilot.server._openapi._blocks import (
    DEPLOYMENT,
    NOT_READY,
    STRING,
    TEXT,
    json_response,
    nullable,
    obj,
    operation,
    path_param,
    query_param,
    ref,
    request_body,
)

__all__ = ["automation_paths", "deployment_paths"]


def deployment_paths() -> dict[str, Any]:
    status_errors = {"404": "not_found: no such deployment", "503": NOT_READY}
    common = {
        "400": "bad_request: the body is not JSON, or not a JSON object",
        "404": "not_found: no such deployment",
        "422": "validation_error: reason is not a string",
        "503": NOT_READY,
    }
    rollout_conflict = "conflict: the deployment has no rollout in progress"
    actions: dict[str, tuple[str, dict[str, Any] | None, dict[str, str]]] = {
        "deploy": (
            "Start a rollout of a version: canary (the default), shadow, shadow-canary, "
            "blue-green, rolling, or direct (with force)",
            ref("DeployRequest"),
            {
                "400": "bad_request: the body is not a JSON object; or an unknown strategy, "
                "direct without force, or the version fails to load (artifact_error)",
                "404": "not_found: no such deployment, or no such version",
                "409": "rejected_version (pass force), conflict: a rollout is in progress or "
                "the version already serves, smoke_failed (blue-green, rolling)",
                "422": "validation_error: version is missing or not a version number; or "
                "strategy, force or reason of the wrong type",
            },
        ),
        "rollback": (
            "Back to the last good version at once",
            ref("ActionRequest"),
            {
                "409": "conflict: no rollout in progress and no earlier version to go back to",
            },
        ),
        "promote": (
            "Send all traffic to the candidate now",
            ref("ActionRequest"),
            {"409": rollout_conflict},
        ),
        "pause": ("Hold the rollout at its step", None, {"409": rollout_conflict}),
        "resume": ("Resume a paused rollout", None, {"409": rollout_conflict}),
        "abort": (
            "Stop the rollout; the primary keeps serving",
            ref("ActionRequest"),
            {"409": rollout_conflict},
        ),
    }
    paths: dict[str, Any] = {
        "/v1/deployments": {
            "get": operation(
                "list_deployments",
                "Deployments and their versions",
                tag="deployments",
                role="predict",
                ok=json_response(
                    obj(
                        {"deployments": {"type": "array", "items": ref("Deployment")}},
                        required=["deployments"],
                    ),
                    "every deployment",
                ),
            )
        },
        "/v1/deployments/{name}/reload": {
            "parameters": [DEPLOYMENT],
            "post": operation(
                "reload",
                "Load the version the deployment's alias points to now",
                tag="deployments",
                role="admin",
                ok=json_response(ref("Deployment"), "the deployment as it serves now"),
                description="After a start whose load failed (an artifact missing or changed), "
                "it loads every deployment again: restore the file, then reload.",
                errors={
                    "404": "not_found: no such deployment, or its alias points nowhere",
                    "409": "artifact_error, untrusted_artifact: the version's artifact fails to "
                    "load (the reason says why); rejected_version: it missed its key-metric "
                    "targets",
                    "503": "not_ready: the server is still loading its models",
                },
            ),
        },
        "/v1/deployments/{name}/status": {
            "parameters": [DEPLOYMENT],
            "get": operation(
                "rollout_status",
                "What serves now, and the rollout in progress",
                tag="rollout",
                role="predict",
                ok=json_response(ref("RolloutStatus")),
                errors=status_errors,
            ),
        },
    }
    for action, (summary, body, errors) in actions.items():
        paths[f"/v1/deployments/{{name}}/{action}"] = {
            "parameters": [DEPLOYMENT],
            "post": operation(
                action,
                summary,
                tag="rollout",
                role="admin",
                body=request_body(body, required=action == "deploy") if body is not None else None,
                ok=json_response(ref("RolloutStatus"), "the deployment's status after the action"),
                errors={**common, **errors},
            ),
        }
    return paths


def automation_paths() -> dict[str, Any]:
    review_id = path_param("id", "the review's id (a prediction answers with it)")
    for_deployment = query_param("deployment", STRING, "only this deployment's reviews")
    reviews = {"type": "array", "items": ref("Review")}
    need_loaded = {"503": NOT_READY}
    state = ref("AutomationState")
    return {
        "/v1/deployments/{name}/automation": {
            "parameters": [DEPLOYMENT],
            "get": operation(
                "get_automation",
                "The degree of automation, the ladder's proposal and the review statistics",
                tag="automation",
                role="predict",
                ok=json_response(state),
                errors={"404": "not_found: no such deployment", **need_loaded},
            ),
            "post": operation(
                "set_automation",
                "Set the degree of automation, or apply the ladder's proposal",
                tag="automation",
                role="admin",
                body=request_body(ref("AutomationChange")),
                ok=json_response(state, "the new state"),
                errors={
                    "400": "bad_request: the body is not JSON, or not a JSON object; "
                    "or an unknown degree",
                    "404": "not_found: no such deployment",
                    "409": "conflict: apply_proposal, but the ladder proposes nothing now",
                    "422": "validation_error: no degree (and no proposal to apply); or "
                    "degree, apply_proposal or reason of the wrong type",
                    **need_loaded,
                },
            ),
        },
        "/v1/reviews": {
            "get": operation(
                "list_reviews",
                "The review queue, each item with why it waits",
                tag="reviews",
                role="review",
                parameters=[
                    query_param(
                        "status",
                        {
                            "type": "string",
                            "enum": ["pending", "decided", "expired", "all"],
                            "default": "pending",
                        },
                        "which reviews",
                    ),
                    for_deployment,
                    query_param(
                        "limit",
                        {"type": "integer", "default": 100, "minimum": 1, "maximum": 10_000},
                        "at most this many",
                    ),
                ],
                ok=json_response(
                    obj(
                        {
                            "reviews": reviews,
                            "stats": ref("ReviewStats"),
                            "answer": ref("ReviewAnswer"),
                        },
                        required=["reviews", "stats", "answer"],
                    ),
                    "the reviews, oldest first, the queue's statistics, and what a decision is",
                ),
                errors={
                    "400": "bad_request: status or limit is not a value the list takes",
                    **need_loaded,
                },
            )
        },
        "/v1/reviews/next": {
            "get": operation(
                "next_review",
                "The oldest pending review",
                tag="reviews",
                role="review",
                parameters=[for_deployment],
                ok=json_response(
                    obj(
                        {"review": nullable(ref("Review")), "message": STRING},
                        required=["review"],
                    ),
                    "the review; null when the queue is empty",
                ),
                errors=need_loaded,
            )
        },
        "/v1/reviews/{id}": {
            "parameters": [review_id],
            "get": operation(
                "get_review",
                "One review: whether a person has decided it, and what",
                description="A review token reads it too.",
                tag="reviews",
                role="predict",
                ok=json_response(ref("Review")),
                errors={"404": "not_found: no such review", **need_loaded},
            ),
        },
        "/v1/reviews/{id}/decision": {
            "parameters": [review_id],
            "post": operation(
                "decide_review",
                "Decide a review; the decision becomes the prediction's label",
                tag="reviews",
                role="review",
                body=request_body(
                    obj(
                        {
                            "value": {
                                "description": "the decision, as a label: one of the model's "
                                "classes for a classifier, a finite number for a regressor",
                                "not": {"type": "null"},
                            }
                        },
                        required=["value"],
                    )
                ),
                ok=json_response(ref("Review"), "the decided review"),
                errors={
                    "400": "bad_request: the body is not JSON, or not a JSON object",
                    "404": "not_found: no such review",
                    "409": "conflict: decided already, expired, or its prediction is not "
                    "logged yet (retry)",
                    "422": "validation_error: no value (or null), or one that does not fit "
                    "the model's task",
                    **need_loaded,
                },
            ),
        },
        "/v1/retrain": {
            "post": operation(
                "retrain",
                "Start a retraining run: export, train, register, compare",
                tag="automation",
                role="admin",
                body=request_body(
                    obj(
                        {
                            "reason": TEXT,
                            "force": {
                                "type": "boolean",
                                "description": "ignore the cooldown and min_new_labels",
                            },
                        }
                    ),
                    required=False,
                ),
                ok=json_response(ref("RetrainRun"), "the run, started in the background"),
                errors={
                    "400": "bad_request: the body is not JSON, or not a JSON object",
                    "409": "conflict: cooling down, too few new labels, runs in progress, or "
                    "the project file names no retrain command or function",
                    "422": "validation_error: reason is not a string, or force not true or false",
                    **need_loaded,
                },
            )
        },
    }
