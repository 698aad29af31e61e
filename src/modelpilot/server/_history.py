"""What happened to a deployment, newest first: its rollouts with every step, alerts fired and
resolved, automation changes, retraining runs, and every audit entry about it or its model.

Each source keeps its own record (rollouts with their history, alerts, retraining runs, the
audit log); this module only reads and merges them into one timeline. A rollout's history
entries are passed through as the rollout strategies wrote them, so a field a strategy adds
later reaches the dashboard without a change here.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelpilot.alerting import AlertStore
from modelpilot.rollout import RolloutStore
from modelpilot.server._requests import authorize, integer_parameter, json_response
from modelpilot.server._state import ServerState

__all__ = ["HistoryRoutes", "deployment_history"]

_EXAMPLE = "GET /v1/deployments/houses/history?since=604800&limit=200"


def deployment_history(
    state: ServerState, name: str, *, since: float, limit: int
) -> dict[str, Any]:
    """The timeline of deployment ``name`` since the time ``since``, at most ``limit`` entries
    of each kind."""
    spec = state.manager.get(name).spec  # a 404 naming the deployments
    project = state.project
    model = spec.model or project.spec.model_name
    entries: list[dict[str, Any]] = []
    store = RolloutStore(project.engine, clock=state.clock)
    for record in store.history(name, limit=limit):
        if record.finished_at is not None and record.finished_at < since:
            continue
        entries.append(
            {
                "kind": "rollout",
                "at": record.created_at,
                "by": record.created_by,
                **{k: v for k, v in record.to_dict().items() if k != "history"},
                "steps": record.history,
            }
        )
    for alert in AlertStore(project.engine).of_deployment(name, since=since, limit=limit):
        entries.append(
            {"kind": "alert", "at": alert.fired_at or alert.started_at, **alert.to_dict()}
        )
    if state.retrain is not None and state.retrain.model == model:
        for run in state.retrain.runs(limit=limit):
            if run.started_at >= since:
                entries.append({"kind": "retrain", "at": run.started_at, **run.to_dict()})
    audit = project.registry.audit_entries(
        limit=limit, targets=[name, model], prefixes=[f"{model}:", f"{model}@"], since=since
    )
    for entry in audit:
        entries.append(
            {
                "kind": "audit",
                "at": entry["at"],
                "by": entry["actor"],
                "action": entry["action"],
                "target": entry["target"],
                "details": entry["details"],
            }
        )
    entries.sort(key=lambda e: -float(e["at"]))
    return {"deployment": name, "model": model, "since": since, "entries": entries}


class HistoryRoutes:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [Route("/v1/deployments/{name}/history", self.history)]

    async def history(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "predict")
        params = request.query_params
        seconds = integer_parameter(
            params, "since", default=7 * 86400, low=60, high=366 * 86400, example=_EXAMPLE
        )
        limit = integer_parameter(params, "limit", default=200, low=1, high=2000, example=_EXAMPLE)
        since = self.state.clock() - seconds
        loop = asyncio.get_running_loop()
        return json_response(
            await loop.run_in_executor(
                None,
                lambda: deployment_history(
                    self.state, request.path_params["name"], since=since, limit=limit
                ),
            )
        )
