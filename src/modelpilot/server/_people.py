"""The people in the loop: who a token is, the review queue, each deployment's degree of
automation, and retraining runs started by hand.

The review queue answers review tokens (and admin tokens): a reviewer reads and decides the
waiting predictions and nothing else.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelpilot.automation import ReviewItem
from modelpilot.errors import AuthError, ConfigError, ConflictError, ValidationFailed
from modelpilot.server._auth import Principal
from modelpilot.server._errors import need
from modelpilot.server._feedback import target_validator
from modelpilot.server._requests import (
    authorize,
    check_types,
    choice_parameter,
    integer_parameter,
    json_object,
    json_response,
)
from modelpilot.server._reviewing import ReviewVersions, answer_form, why_deferred
from modelpilot.server._state import ServerState

__all__ = ["PeopleRoutes", "decision_value"]


def decision_value(body: dict[str, Any]) -> Any:
    """The decision of a ``POST /v1/reviews/{id}/decision`` body, or a 422 saying what is wrong.

    The one place a decision is checked before it becomes a label: a check of the value
    against the task belongs here.

    Examples
    --------
    >>> decision_value({"value": 312000})
    312000
    >>> decision_value({"value": None})
    Traceback (most recent call last):
    ...
    modelpilot.errors.ValidationFailed: 1 invalid input value(s): value: expected the decision (a label), got None
    """  # noqa: E501
    if body.get("value") is None:  # a null decision would close the review unlabeled
        raise ValidationFailed(
            [
                {
                    "field": "value",
                    "expected": "the decision (a label)",
                    "got": body.get("value", "(missing)"),
                }
            ]
        )
    return body["value"]


class PeopleRoutes:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.versions = ReviewVersions(state.project.registry)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/whoami", self.whoami),
            Route("/v1/deployments/{name}/automation", self.automation, methods=["GET", "POST"]),
            Route("/v1/reviews", self.reviews),
            Route("/v1/reviews/next", self.next_review),
            Route("/v1/reviews/agreement", self.agreement),
            Route("/v1/reviews/{id}", self.review),
            Route("/v1/reviews/{id}/decision", self.decide, methods=["POST"]),
            Route("/v1/retrain", self.retrain, methods=["POST"]),
        ]

    async def whoami(self, request: Request) -> Response:
        who = self._anyone(request)
        return json_response({"name": who.name, "role": who.role})

    def _anyone(self, request: Request) -> Principal:
        """The caller, whatever their role (a 401 without a valid token)."""
        try:
            return authorize(self.state.tokens, request, "predict")
        except AuthError as exc:
            if exc.http_status != 403:
                raise
        return authorize(self.state.tokens, request, "review")

    def _describe(self, item: ReviewItem) -> dict[str, Any]:
        """A waiting item as a reviewer sees it: with why it waits."""
        spec = self.state.project.spec
        features, profile = self.versions.schema(item.model, item.version)
        why = why_deferred(
            item,
            threshold=spec.automation.threshold,
            classifier=spec.task != "regression",
            features=features,
            profile=profile,
        )
        return {**item.to_dict(show_suggestion=False), "why": why}

    def _answer(self, items: list[ReviewItem]) -> dict[str, Any]:
        model = items[0].model if items else self.state.project.spec.model_name
        version = items[0].version if items else None
        return answer_form(self.state.project.spec.task, self.versions.schema(model, version)[1])

    async def reviews(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "review")
        params, example = request.query_params, "GET /v1/reviews?status=pending&limit=100"
        status = choice_parameter(
            params,
            "status",
            default="pending",
            choices=("pending", "decided", "expired", "all"),
            example=example,
        )
        limit = integer_parameter(params, "limit", default=100, low=1, high=10_000, example=example)
        queue = need(self.state.reviews)
        deployment = params.get("deployment")

        def read() -> dict[str, Any]:
            items = queue.list(
                status=None if status == "all" else status, deployment=deployment, limit=limit
            )
            return {
                "reviews": [self._describe(i) for i in items],
                "stats": queue.stats(deployment),
                "answer": self._answer(items),
            }

        loop = asyncio.get_running_loop()
        return json_response(await loop.run_in_executor(None, read))

    async def next_review(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "review")
        item = need(self.state.reviews).next(deployment=request.query_params.get("deployment"))
        if item is None:
            return json_response({"review": None, "message": "the review queue is empty"})
        return json_response({"review": self._describe(item)})

    async def agreement(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "review")
        params = request.query_params
        example = "GET /v1/reviews/agreement?since=604800&bucket=86400"
        since = integer_parameter(
            params, "since", default=30 * 86400, low=60, high=366 * 86400, example=example
        )
        bucket = integer_parameter(
            params, "bucket", default=86400, low=60, high=366 * 86400, example=example
        )
        queue = need(self.state.reviews)
        start = self.state.clock() - since
        loop = asyncio.get_running_loop()
        buckets = await loop.run_in_executor(
            None,
            functools.partial(
                queue.agreement_over_time,
                since=start,
                bucket_s=bucket,
                deployment=params.get("deployment"),
            ),
        )
        return json_response({"since": start, "bucket_s": bucket, "buckets": buckets})

    async def review(self, request: Request) -> Response:
        self._anyone(request)  # the requester polls for a decision; a reviewer reads it
        item = need(self.state.reviews).get(request.path_params["id"])
        return json_response(item.to_dict(show_suggestion=False))

    async def decide(self, request: Request) -> Response:
        who = authorize(self.state.tokens, request, "review")
        example = 'a JSON object such as {"value": ...} (the decision: a label)'
        body = await json_object(request, example=example)
        value = decision_value(body)
        loop = asyncio.get_running_loop()
        queue = need(self.state.reviews)
        item = await loop.run_in_executor(None, queue.get, request.path_params["id"])
        # The decision becomes the prediction's label: the same check as a label's.
        validator = target_validator(self.state, item.model, item.version or 0)
        value = validator.check(body["value"], field="value")
        decide = functools.partial(queue.decide, request.path_params["id"], value, actor=who.name)
        item = await loop.run_in_executor(None, decide)
        return json_response(item.to_dict())

    async def automation(self, request: Request) -> Response:
        state = self.state
        # The token before the name: without one, no answer tells which deployments exist.
        name = request.path_params["name"]
        if request.method == "GET":
            authorize(state.tokens, request, "predict")
            state.manager.get(name)
            current = need(state.ladder).state(name)
            return json_response({**current.to_dict(), "review": need(state.reviews).stats(name)})
        who = authorize(state.tokens, request, "admin")
        example = 'a JSON object such as {"degree": "partial", "reason": "..."}'
        body = await json_object(request, example=example, empty={})
        check_types(body, {"degree": str, "apply_proposal": bool, "reason": str})
        state.manager.get(name)
        ladder = need(state.ladder)
        current = ladder.state(name)
        degree = body.get("degree") or (current.proposal if body.get("apply_proposal") else None)
        if degree is None and body.get("apply_proposal"):
            raise ConflictError(
                f"the ladder has no proposal for {name} now (it proposes once enough reviews "
                "are decided); send a degree instead"
            )
        if degree is None:
            raise ValidationFailed(
                [
                    {
                        "field": "degree",
                        "expected": "human, shadow, assist, "
                        "partial or full (or apply_proposal: true)",
                        "got": body.get("degree"),
                    }
                ]
            )
        updated = ladder.set(
            name, degree, actor=who.name, reason=body.get("reason") or "set by an admin"
        )
        state.degrees[name] = updated.degree
        return json_response(updated.to_dict())

    async def retrain(self, request: Request) -> Response:
        who = authorize(self.state.tokens, request, "admin")
        example = 'a JSON object such as {"reason": "new labels", "force": false} (or no body)'
        body = await json_object(request, example=example, empty={})
        check_types(body, {"reason": str, "force": bool})
        loop = asyncio.get_running_loop()
        trigger = functools.partial(
            need(self.state.retrain).trigger,
            reason=body.get("reason") or "api",
            actor=who.name,
            force=bool(body.get("force")),
        )
        try:
            run = await loop.run_in_executor(None, trigger)
        except ConfigError as exc:
            # No trainer configured: the server's project file, not the request, is wrong.
            raise ConflictError(exc.message) from None
        return json_response(run.to_dict())
