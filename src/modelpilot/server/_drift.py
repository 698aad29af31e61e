"""A deployment's drift in detail: per feature, the reference and current distributions
behind the drift score the dashboard charts, the statistic with its threshold, and the
feature's importance to the model when the version carries it.

The check runs on request (``Monitor.drift.check``, the same one the monitor records every
``monitoring.drift.interval_s``): a few hundred milliseconds for an hour of predictions.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelpilot.drift import FeatureDrift
from modelpilot.server._errors import need
from modelpilot.server._models import version_importance
from modelpilot.server._requests import authorize, json_response
from modelpilot.server._state import ServerState

__all__ = ["DriftRoutes"]


def _feature(item: FeatureDrift, importance: dict[str, float] | None) -> dict[str, Any]:
    return {
        **item.to_dict(),
        # A test's threshold is on the adjusted p-value; a distance's on the statistic itself.
        "threshold_on": "p_value" if item.p_value is not None else "statistic",
        "importance": None if importance is None else importance.get(item.name),
    }


class DriftRoutes:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [Route("/v1/deployments/{name}/drift", self.drift)]

    async def drift(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "predict")
        deployment = self.state.manager.get(request.path_params["name"])
        monitor = need(self.state.monitor, "drift is checked once the deployments are loaded")
        loop = asyncio.get_running_loop()
        now = self.state.clock()
        check = await loop.run_in_executor(None, monitor.drift.check, deployment, now)
        version = deployment.primary.version
        importance = version_importance(version)
        settings = self.state.project.spec.monitoring.drift
        report = check.report
        body: dict[str, Any] = {
            "deployment": deployment.name,
            "model": version.name,
            "version": check.version,
            "checked_at": now,
            "window_s": settings.window_s,
            "rows": check.rows,
            "message": check.reason,
            "importance_known": importance is not None,
            # What the importance shares are measured by: the worsening of this metric when
            # a feature is shuffled (registration with a holdout records it).
            "importance_metric": version.lineage.get("importance_metric"),
            "features": [],
            "prediction": None,
        }
        if report is not None:
            body.update(
                correction=report.correction,
                effect_size_floor=report.effect_size_floor,
                share_drifted=report.share_drifted,
                dataset_threshold=report.dataset_threshold,
                features=[_feature(f, importance) for f in report.features],
            )
        if check.prediction is not None:
            body["prediction"] = _feature(check.prediction, None)
        return json_response(body)
