"""``POST /v1/feedback``: ground-truth labels (and redo / correction events) by prediction id."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelpilot.data import TargetValidator
from modelpilot.errors import ModelpilotError, ValidationFailed
from modelpilot.server._requests import authorize, json_body, json_response
from modelpilot.server._state import ServerState
from modelpilot.store import FeedbackItem, FeedbackResult

__all__ = ["FeedbackRoutes", "feedback_items", "target_validator"]

logger = logging.getLogger("modelpilot.server")


class FeedbackRoutes:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [Route("/v1/feedback", self.feedback, methods=["POST"])]

    async def feedback(self, request: Request) -> Response:
        state = self.state
        authorize(state.tokens, request, "predict")
        example = '{"prediction_id": "...", "label": ...}, {"items": [...]} or a list of items'
        items = feedback_items(await json_body(request, example=example))
        loop = asyncio.get_running_loop()
        # A label may follow its prediction within milliseconds: commit what is queued first,
        # so a just-answered prediction id is never reported as unknown.
        await loop.run_in_executor(None, state.writer.wait_flushed, 10.0)
        results = await loop.run_in_executor(None, _record, state, items)
        state.counters.feedback += sum(r.accepted for r in results)
        if state.metrics is not None:
            try:
                for item, outcome in zip(items, results, strict=True):
                    if outcome.accepted:
                        state.metrics.feedback.labels(item.kind).inc()
            except Exception:  # a metric must never fail the feedback it counts
                logger.exception("recording feedback metrics failed")
        body = {
            "accepted": sum(r.accepted for r in results),
            "rejected": sum(not r.accepted for r in results),
            "results": [
                {
                    "prediction_id": r.prediction_id,
                    "accepted": r.accepted,
                    **({"error": r.error} if r.error else {}),
                }
                for r in results
            ],
        }
        accepted = [r.accepted for r in results]
        status = 200 if all(accepted) else 207 if any(accepted) else 422
        return json_response(body, status)


def target_validator(state: ServerState, model: str, version: int) -> TargetValidator:
    """The check of a label for a prediction of ``model:version``: its task, and the classes
    of the loaded model (of another loaded version of it, else none: the task alone)."""
    loaded = state.manager.loaded(model, version)
    if loaded is not None and loaded.version.version == version:
        return TargetValidator(loaded.version.task, loaded.runtime.classes)
    try:
        task = state.project.registry.get(model, version).task
    except ModelpilotError:
        task = loaded.version.task if loaded is not None else state.project.spec.task
    return TargetValidator(task, loaded.runtime.classes if loaded is not None else None)


def _record(state: ServerState, items: list[FeedbackItem]) -> list[FeedbackResult]:
    """Check each label against its prediction's model, then store what passes: one result
    per item, in order (an unknown prediction id is the log's to report)."""
    log = state.project.prediction_log
    made = log.versions_of([i.prediction_id for i in items if i.kind == "label"])
    validators: dict[tuple[str, int], TargetValidator] = {}
    results: list[FeedbackResult | None] = []
    valid: list[FeedbackItem] = []
    for item in items:
        key = made.get(item.prediction_id) if item.kind == "label" else None
        if key is None or item.label is None:
            results.append(None)
            valid.append(item)
            continue
        if key not in validators:
            validators[key] = target_validator(state, *key)
        problem = validators[key].problem(item.label)
        if problem is not None:
            results.append(
                FeedbackResult(item.prediction_id, False, f"the label must be {problem}")
            )
            continue
        label = validators[key].check(item.label)
        results.append(None)
        valid.append(dataclasses.replace(item, label=label))
    stored = iter(log.add_feedback(valid) if valid else [])
    return [r if r is not None else next(stored) for r in results]


def feedback_items(payload: Any) -> list[FeedbackItem]:
    """The items of a feedback request, or a 422 listing every malformed one.

    Examples
    --------
    >>> [i.label for i in feedback_items({"items": [{"prediction_id": "p1", "label": 3}]})]
    [3]
    """
    raw = payload.get("items", [payload]) if isinstance(payload, dict) else payload
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed(
            [
                {
                    "field": "(body)",
                    "expected": '{"prediction_id": ..., '
                    '"label": ...} or {"items": [...]} or a list of them',
                    "got": type(payload).__name__,
                }
            ]
        )
    items, problems = [], []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("prediction_id"), str):
            problems.append(
                {
                    "instance": index,
                    "field": "prediction_id",
                    "expected": "a prediction id string",
                    "got": item.get("prediction_id") if isinstance(item, dict) else item,
                }
            )
            continue
        kind = "label" if item.get("kind") is None else item["kind"]
        source = "api" if item.get("source") is None else item["source"]
        replace = item.get("replace", False)
        if not isinstance(replace, bool):
            problems.append(
                {
                    "instance": index,
                    "field": "replace",
                    "expected": "true (correct the prediction's label) or false",
                    "got": replace,
                }
            )
        elif not isinstance(kind, str):
            problems.append(
                {
                    "instance": index,
                    "field": "kind",
                    "expected": "a string: label, redo or correction",
                    "got": kind,
                }
            )
        elif not isinstance(source, str) or len(source) > 200:  # the column's width
            problems.append(
                {
                    "instance": index,
                    "field": "source",
                    "expected": "a string of at most 200 characters",
                    "got": source,
                }
            )
        else:
            items.append(
                FeedbackItem(item["prediction_id"], item.get("label"), kind, source, replace)
            )
    if problems:
        raise ValidationFailed(problems)
    return items
