"""modelpilot's own prediction protocol (``POST /v1/deployments/{name}/predict``): the body's
records in, the answers as JSON out."""

from __future__ import annotations

from typing import Any

import orjson

from modelpilot.errors import ValidationFailed
from modelpilot.inference import Deployment, JobResult, LoadedVersion
from modelpilot.server._errors import BadRequest

__all__ = ["decode_v1", "encode_v1"]


def decode_v1(body: bytes, key: str | None) -> tuple[list[Any], str | None]:
    """The request's records, and its routing key (the header's, else the body's ``key``).

    Examples
    --------
    >>> decode_v1(b'{"instances": [{"x": 1}], "key": "user-7"}', None)
    ([{'x': 1}], 'user-7')
    >>> decode_v1(b'{"x": 1}', "k")
    ([{'x': 1}], 'k')
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"the request body is not valid JSON ({exc}); send "
            '{"instances": [{...}, ...]} or one record {...}'
        ) from None
    if not isinstance(payload, dict):
        raise BadRequest(
            'the request body must be a JSON object: {"instances": [...]} or one '
            f"record; got a {type(payload).__name__}"
        )
    if "instances" in payload:
        instances = payload["instances"]
        if not isinstance(instances, list):
            raise ValidationFailed(
                [
                    {
                        "field": "instances",
                        "expected": "a list of records",
                        "got": type(instances).__name__,
                    }
                ]
            )
        request_key = payload.get("key")
        if "key" in payload and not isinstance(request_key, str):
            raise ValidationFailed(
                [
                    {
                        "field": "key",
                        "expected": "a string (the sticky routing key)",
                        "got": request_key,
                    }
                ]
            )
        return instances, key or request_key
    return [payload], key


def encode_v1(
    deployment: Deployment, loaded: LoadedVersion, ids: list[str], result: JobResult
) -> dict[str, Any]:
    """The response: per instance its id and prediction (with probabilities and confidence
    for classifiers), or, deferred to a person, its review and status."""
    predictions = []
    reviews = result.reviews or {}
    for index, pid in enumerate(ids):
        item: dict[str, Any] = {"id": pid, "prediction": result.predictions[index]}
        if result.proba is not None and result.classes is not None:
            row = result.proba[index]
            item["probabilities"] = dict(zip(result.classes, row, strict=True))
            item["confidence"] = max(row)
        if result.confidence is not None:
            item["confidence"] = result.confidence[index]
        if index in reviews:
            review_id, status, visible = reviews[index]
            # A deferred answer is the person's to give: the model's is only a suggestion.
            suggestion = item.pop("prediction")
            item.pop("probabilities", None)
            item.update({"status": status, "review_id": review_id})
            if visible and suggestion is not None:
                item["suggestion"] = suggestion
            else:
                item.pop("confidence", None)
        elif result.reviews is not None:
            item["status"] = "decided_by_model"
        predictions.append(item)
    return {
        "deployment": deployment.name,
        "model": loaded.version.name,
        "version": loaded.version.version,
        "predictions": predictions,
    }
