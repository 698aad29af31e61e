"""The schemas of the operations beside predictions and rollouts: automation, the review queue,
retraining, alerts and the dashboard's time series (``_schemas.py`` puts them together)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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

__all__ = ["operation_schemas"]


def operation_schemas(degrees: Iterable[str]) -> dict[str, Any]:
    """The schemas of the control operations' bodies: automation, reviews, retraining, alerts,
    the dashboard's series."""
    degree = enum(degrees)
    agreement = mapping(obj({"rate": NUMBER, "cases": INTEGER}))
    return {
        "Alert": obj(
            {
                "id": nullable(INTEGER),
                "rule": STRING,
                "deployment": STRING,
                "labels": mapping(STRING),
                "state": enum(["pending", "firing", "resolved"]),
                "severity": STRING,
                "metric": nullable(STRING),
                "comparison": nullable(STRING),
                "value": nullable(NUMBER),
                "threshold": NUMBER,
                "clear_threshold": NUMBER,
                "started_at": NUMBER,
                "fired_at": nullable(NUMBER),
                "resolved_at": nullable(NUMBER),
                "annotations": mapping(STRING),
                "actions": mapping({"type": "object"}),
                "acknowledged_at": nullable(NUMBER),
                "acknowledged_by": nullable(STRING),
                "last_value_at": {
                    "type": "number",
                    "description": "active alerts: when the last value of its series arrived",
                },
                "stale": {
                    "anyOf": [obj({"since": NUMBER, "reason": STRING}), {"type": "null"}],
                    "description": "active alerts: set when the data behind it stopped arriving",
                },
                "silenced_until": nullable(NUMBER),
                "silenced_by": nullable(STRING),
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
                "reason": TEXT,
                "review": ref("ReviewStats"),
            },
            required=["deployment", "degree", "updated_at", "updated_by", "reason"],
        ),
        "AutomationChange": {
            **obj(
                {
                    "degree": degree,
                    "apply_proposal": {
                        "type": "boolean",
                        "description": "set the degree the ladder proposes",
                    },
                    "reason": TEXT,
                },
                description="degree, or apply_proposal: true.",
            ),
            "anyOf": [
                {"required": ["degree"]},
                {"required": ["apply_proposal"], "properties": {"apply_proposal": {"const": True}}},
            ],
        },
        "Review": obj(
            {
                "id": STRING,
                "deployment": STRING,
                "model": STRING,
                "version": nullable(INTEGER),
                "prediction_id": STRING,
                "degree": degree,
                "status": enum(["pending", "decided", "expired"]),
                "created_at": NUMBER,
                "inputs": {"type": "object"},
                "suggestion": {"description": "null while shadow/human items are pending"},
                "confidence": nullable(NUMBER),
                "decided_at": nullable(NUMBER),
                "decided_by": nullable(STRING),
                "decision": ANY,
                "agreed": nullable(BOOLEAN),
                "why": {
                    "type": "string",
                    "description": "the queue's listings: why the prediction waits for a person",
                },
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
                "features": array(obj({"name": STRING, "type": STRING})),
                "key_metrics": array(
                    obj({"name": STRING, "op": STRING, "target": NUMBER, "text": STRING})
                ),
                "service_objectives": {"type": "object"},
                "monitoring": obj(
                    {"interval_s": NUMBER, "drift_interval_s": NUMBER, "retention_days": NUMBER}
                ),
                "deployments": array(STRING),
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
                "labels": mapping(STRING),
                "series": array(
                    obj(
                        {
                            "name": STRING,
                            "deployment": STRING,
                            "labels": mapping(STRING),
                            "points": array(
                                obj(
                                    {
                                        "ts": NUMBER,
                                        "value": nullable(NUMBER),
                                        "labels": mapping(STRING),
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
