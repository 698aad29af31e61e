"""The registry, read over HTTP: models, their versions with status, key metrics against the
targets, aliases with their history, lineage and profile, and the rollouts of a version.

Read-only, so a predict token reads it, like the deployments' status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from modelpilot.errors import NotFoundError
from modelpilot.registry import ModelVersion
from modelpilot.rollout import RolloutStore
from modelpilot.server._requests import authorize, json_response
from modelpilot.server._state import ServerState

__all__ = ["ModelRoutes", "profile_summary", "version_importance"]

# What lineage says about where a version came from; the rest (python, host) is in the detail.
_LINEAGE = ("user", "git_commit", "data_path", "data_rows", "data_sha256", "eval_path")


def version_importance(version: ModelVersion) -> dict[str, float] | None:
    """Each feature's importance to the model, when the version carries it.

    Permutation importance is recorded as ``importance`` (feature name to value) in the
    version's metadata; the registry keeps metadata in its metrics, lineage and tags, so all
    three are looked at. None when no version states it.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> version_importance(SimpleNamespace(metrics={"importance": {"size": 0.4}}, lineage={},
    ...                                    tags={}))
    {'size': 0.4}
    >>> version_importance(SimpleNamespace(metrics={}, lineage={}, tags={})) is None
    True
    """
    for source in (
        getattr(version, "metadata", None),
        version.metrics,
        version.lineage,
        version.tags,
    ):
        found = source.get("importance") if isinstance(source, Mapping) else None
        if isinstance(found, Mapping) and found:
            return {
                str(k): float(v)
                for k, v in found.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
    return None


def _feature_summary(entry: Mapping[str, Any]) -> dict[str, Any]:
    count = int(entry.get("count") or 0)
    out: dict[str, Any] = {
        "type": entry.get("type"),
        "missing_share": (int(entry.get("missing") or 0) / count) if count else None,
    }
    quantiles = entry.get("quantiles") or []
    if quantiles:
        out.update(min=quantiles[0], median=quantiles[len(quantiles) // 2], max=quantiles[-1])
    counts = entry.get("counts") or {}
    if counts:
        top = sorted(counts.items(), key=lambda kv: -kv[1])[:5]
        out["top"] = [{"value": k, "share": c / count if count else None} for k, c in top]
        out["categories"] = len(counts)
    return out


def profile_summary(profile: Mapping[str, Any]) -> dict[str, Any] | None:
    """The reference profile in a few numbers per feature: type, missing share, range or top
    categories (the profile itself holds a hundred quantiles per feature).

    Examples
    --------
    >>> profile_summary({"n_rows": 4, "features": {"x": {"type": "numeric", "count": 4,
    ...                  "missing": 1, "quantiles": [1.0, 2.0, 9.0]}}})
    {'rows': 4, 'features': {'x': {'type': 'numeric', 'missing_share': 0.25, 'min': 1.0, 'median': 2.0, 'max': 9.0}}, 'target': None}
    """  # noqa: E501
    if not profile.get("features"):
        return None
    target = profile.get("target")
    return {
        "rows": profile.get("n_rows"),
        "features": {name: _feature_summary(e) for name, e in profile["features"].items()},
        "target": {"name": target.get("name"), **_feature_summary(target)} if target else None,
    }


class ModelRoutes:
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v1/models", self.models),
            Route("/v1/models/{name}", self.model),
            Route("/v1/models/{name}/versions/{version}", self.version),
        ]

    async def models(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "predict")
        loop = asyncio.get_running_loop()
        listing = await loop.run_in_executor(None, self.state.project.registry.list_models)
        return json_response({"models": listing})

    async def model(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "predict")
        name = request.path_params["name"]
        loop = asyncio.get_running_loop()
        return json_response(await loop.run_in_executor(None, self._model, name))

    async def version(self, request: Request) -> Response:
        authorize(self.state.tokens, request, "predict")
        name, raw = request.path_params["name"], request.path_params["version"]
        if not (raw.isascii() and raw.isdigit()):
            raise NotFoundError("version", f"{name}:{raw}", hint="a version is a number")
        loop = asyncio.get_running_loop()
        return json_response(await loop.run_in_executor(None, self._version, name, int(raw)))

    # ---- reading ----------------------------------------------------------------------
    def _serving(self) -> dict[tuple[str, int], list[str]]:
        """Which deployments serve which (model, version) as their primary."""
        out: dict[tuple[str, int], list[str]] = {}
        for deployment in self.state.manager.all():
            version = deployment.primary.version
            out.setdefault((version.name, version.version), []).append(deployment.name)
        return out

    def _describe(self, version: ModelVersion, serving: list[str]) -> dict[str, Any]:
        lineage = version.lineage
        return {
            "version": version.version,
            "status": version.status,
            "flavor": version.flavor,
            "aliases": version.aliases,
            "serving": serving,
            "created_at": version.created_at,
            "created_by": version.created_by,
            "checks": version.checks,
            "metrics": version.metrics,
            "lineage": {k: lineage[k] for k in _LINEAGE if lineage.get(k) is not None},
            "tags": version.tags,
            "profiled": bool(version.profile.get("features")),
            "importance": version_importance(version),
        }

    def _model(self, name: str) -> dict[str, Any]:
        registry = self.state.project.registry
        versions = registry.list_versions(name)  # a 404 naming the known models
        serving = self._serving()
        return {
            "name": name,
            "versions": [
                self._describe(v, serving.get((name, v.version), [])) for v in reversed(versions)
            ],
            "aliases": {a: v.version for v in versions for a in v.aliases},
            "alias_history": registry.alias_history(name),
            "deployments": [
                d.name for d in self.state.project.spec.deployment_specs if d.model == name
            ],
        }

    def _version(self, name: str, number: int) -> dict[str, Any]:
        registry = self.state.project.registry
        version = registry.get(name, number)
        detail = self._describe(version, self._serving().get((name, number), []))
        detail.update(
            name=name,
            sha256=version.artifact.sha256,
            lineage=version.lineage,
            profile=profile_summary(version.profile),
            features=[f.model_dump(exclude_defaults=True) for f in version.features],
            task=version.task,
            target=version.target,
            alias_history=[
                h
                for h in registry.alias_history(name)
                if number in (h["version"], h["previous_version"])
            ],
            rollouts=self._rollouts(name, number),
        )
        return detail

    def _rollouts(self, name: str, number: int) -> list[dict[str, Any]]:
        """The rollouts that brought ``number`` to a deployment of ``name`` (or replaced it)."""
        store = RolloutStore(self.state.project.engine, clock=self.state.clock)
        out = []
        for spec in self.state.project.spec.deployment_specs:
            if spec.model != name:
                continue
            for record in store.history(spec.name, limit=200):
                if number in (record.candidate_version, record.primary_version):
                    out.append(
                        {
                            k: v
                            for k, v in record.to_dict().items()
                            if k not in ("history", "config")
                        }
                    )
        return sorted(out, key=lambda r: -r["created_at"])
