"""Deployments: named endpoints, the model versions loaded behind them, and the routing step.

The routing step is a separate, replaceable piece (:class:`Router`): today every request goes
to the version the deployment's alias points to (:class:`StaticRouter`); rollout strategies
(shadow, canary, blue-green) replace it without touching the request path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from modelpilot.data import SchemaValidator
from modelpilot.errors import ModelpilotError, NotFoundError
from modelpilot.inference._batching import MicroBatcher
from modelpilot.inference._jobs import BatchJob, JobResult
from modelpilot.inference._outputs import run_model
from modelpilot.inference._pipeline import Pipeline, PipelineBuilder, steps_deployment
from modelpilot.inference._recorder import PredictionRecorder
from modelpilot.inference._scoring import batch_scorer
from modelpilot.registry import ModelRegistry, ModelVersion
from modelpilot.runtime import ModelRuntime, answer_path
from modelpilot.spec import DeploymentSpec, ServingSettings
from modelpilot.types import Clock

__all__ = ["Deployment", "DeploymentManager", "LoadedVersion", "Router", "StaticRouter"]

logger = logging.getLogger(__name__)


@dataclass
class LoadedVersion:
    """A model version in memory: its runtime, its validator and its micro-batcher."""

    version: ModelVersion
    runtime: ModelRuntime
    validator: SchemaValidator
    batcher: MicroBatcher[BatchJob, JobResult]
    pipeline: Pipeline | None = None  # the deployment's steps before the model, if any

    @property
    def label(self) -> str:
        return f"{self.version.name}:{self.version.version}"


def _load(
    version: ModelVersion,
    runtime: ModelRuntime,
    *,
    settings: ServingSettings,
    on_batch: Callable[[str, int, int], None] | None = None,
    pipeline: Pipeline | None = None,
    recorder: PredictionRecorder | None = None,
) -> LoadedVersion:
    # A pipeline's requests follow its schema (the project's features); its steps feed the
    # model the columns it was registered with.
    validator = SchemaValidator(pipeline.features if pipeline is not None else version.features)
    batcher: MicroBatcher[BatchJob, JobResult] = MicroBatcher(
        batch_scorer(version, runtime, validator, pipeline=pipeline, recorder=recorder),
        max_batch_size=settings.max_batch_size,
        max_wait=settings.max_wait_ms / 1000.0,
        concurrency=settings.model_threads,
        size=lambda job: job.count,
        on_dispatch=(
            None if on_batch is None else lambda rows: on_batch(version.name, version.version, rows)
        ),
    )
    return LoadedVersion(version, runtime, validator, batcher, pipeline)


class Router(Protocol):
    """Chooses the loaded version that answers a request (``key`` makes the choice sticky)."""

    def choose(self, key: str | None) -> LoadedVersion: ...

    def mirrors(self, chosen: LoadedVersion) -> Sequence[LoadedVersion]:
        """Versions that also score the request after it was answered (shadow traffic)."""
        ...

    @property
    def versions(self) -> Sequence[LoadedVersion]: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass
class StaticRouter:
    """Every request goes to one version."""

    target: LoadedVersion

    def choose(self, key: str | None) -> LoadedVersion:
        return self.target

    def mirrors(self, chosen: LoadedVersion) -> Sequence[LoadedVersion]:
        return ()

    @property
    def versions(self) -> Sequence[LoadedVersion]:
        return [self.target]

    def describe(self) -> dict[str, Any]:
        return {"kind": "static", "traffic": {str(self.target.version.version): 100.0}}


@dataclass
class Deployment:
    spec: DeploymentSpec
    router: Router
    loaded_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def primary(self) -> LoadedVersion:
        return self.router.versions[0]


class DeploymentManager:
    """Loads every deployment's version and swaps routers atomically on reload."""

    def __init__(
        self,
        registry: ModelRegistry,
        specs: Sequence[DeploymentSpec],
        *,
        settings: ServingSettings,
        trust: bool = False,
        force: bool = False,
        on_batch: Callable[[str, int, int], None] | None = None,
        pipelines: PipelineBuilder | None = None,
        recorder: PredictionRecorder | None = None,
    ) -> None:
        self.on_batch = on_batch
        self.recorder = recorder
        self.pipelines = pipelines or PipelineBuilder(registry, trust=trust, force=force)
        self.registry = registry
        self.specs = list(specs)
        self.settings = settings
        self.trust = trust
        self.force = force
        self._deployments: dict[str, Deployment] = {}
        self._loaded: dict[tuple[str, int], LoadedVersion] = {}
        self._lock = threading.Lock()
        self.ready = False
        #: Why each deployment that could not be loaded failed (``load_all``).
        self.load_errors: dict[str, str] = {}

    def load_version(self, version: ModelVersion, *, force: bool = False) -> LoadedVersion:
        """Load (or reuse) a version; loaded versions stay cached so switching back is instant."""
        key = (version.name, version.version)
        cached = self._loaded.get(key)
        if cached is not None:
            return cached
        runtime = self.registry.load(version, trust=self.trust, force=self.force or force)
        # One line per version: whether its answers take a fast path (operators and the
        # serving benchmark read it).
        logger.info(
            "%s:%s (%s) answers through %s",
            version.name,
            version.version,
            runtime.flavor,
            answer_path(runtime),
        )
        spec = steps_deployment(self.specs, version.name)
        pipeline = self.pipelines.build(spec, version) if spec is not None else None
        loaded = _load(
            version,
            runtime,
            settings=self.settings,
            on_batch=self.on_batch,
            pipeline=pipeline,
            recorder=self.recorder,
        )
        _warm(loaded)
        with self._lock:
            self._loaded[key] = loaded
        return loaded

    def loaded(self, name: str, version: int) -> LoadedVersion | None:
        """The loaded version ``name:version``; else any loaded version of model ``name``
        (its classes are the likeliest match); else None."""
        with self._lock:
            exact = self._loaded.get((name, version))
            if exact is not None:
                return exact
            return next((v for (model, _), v in self._loaded.items() if model == name), None)

    def unload(self, name: str, version: int) -> None:
        """Forget a loaded version no router uses any more (frees its memory)."""
        in_use = {
            (v.version.name, v.version.version)
            for d in self._deployments.values()
            for v in d.router.versions
        }
        with self._lock:
            if (name, version) not in in_use:
                unloaded = self._loaded.pop((name, version), None)
                if unloaded is not None:
                    unloaded.batcher.close()

    def close(self) -> None:
        """Stop the model threads of every loaded version (the server is stopping)."""
        with self._lock:
            loaded = list(self._loaded.values())
        for version in loaded:
            version.batcher.close()

    def unresolved(self) -> dict[str, str]:
        """The deployments whose alias names no registered version, and why: checked before
        a server starts, so one with nothing at all to serve says so and stops."""
        problems: dict[str, str] = {}
        for spec in self.specs:
            try:
                self.registry.resolve(f"{spec.model}@{spec.alias}")
            except ModelpilotError as exc:
                problems[spec.name] = exc.message
        return problems

    def load_all(self, *, clock: Clock = time.time, ready: bool = True) -> None:
        """Load every deployment's version not loaded yet; ``ready=False`` leaves marking the
        manager ready to the caller (the server does once the rest of its start-up is done).

        A deployment that fails to load is left out, its reason in :attr:`load_errors`, and
        the others serve; when none is loaded, the first failure is raised.
        """
        now = clock()
        failures: dict[str, ModelpilotError] = {}
        for spec in self.specs:
            if spec.name in self._deployments:
                continue
            try:
                version = self.registry.resolve(f"{spec.model}@{spec.alias}")
                loaded = self.load_version(version)
            except ModelpilotError as exc:
                failures[spec.name] = exc
                continue
            with self._lock:
                self._deployments[spec.name] = Deployment(spec, StaticRouter(loaded), now)
        self.load_errors = {name: exc.message for name, exc in failures.items()}
        if not self._deployments and failures:
            raise next(iter(failures.values()))
        self.ready = ready

    def get(self, name: str) -> Deployment:
        deployment = self._deployments.get(name)
        if deployment is None:
            known = ", ".join(sorted(self._deployments)) or "none"
            raise NotFoundError("deployment", name, hint=f"deployments: {known}")
        return deployment

    def find_by_model(self, name: str) -> Deployment:
        """For the V2 protocol: a deployment by its name, else by its model's name."""
        if name in self._deployments:
            return self._deployments[name]
        for deployment in self._deployments.values():
            if deployment.spec.model == name:
                return deployment
        return self.get(name)

    def all(self) -> list[Deployment]:
        return list(self._deployments.values())

    def replace_router(self, name: str, router: Router) -> None:
        with self._lock:
            self.get(name).router = router

    def reload(self, name: str, *, clock: Clock = time.time) -> Deployment:
        """Re-resolve the deployment's alias; load and switch to the version it names now.

        A deployment that failed to load is loaded now (its artifact restored, say)."""
        if name not in self._deployments:
            spec = next((s for s in self.specs if s.name == name), None)
            if spec is None:
                return self.get(name)  # the 404, listing the deployments
            loaded = self.load_version(self.registry.resolve(f"{spec.model}@{spec.alias}"))
            with self._lock:
                self._deployments[name] = Deployment(spec, StaticRouter(loaded), clock())
            self.load_errors.pop(name, None)
            return self.get(name)
        deployment = self.get(name)
        version = self.registry.resolve(f"{deployment.spec.model}@{deployment.spec.alias}")
        if version.version != deployment.primary.version.version:
            loaded = self.load_version(version)
            self.replace_router(name, StaticRouter(loaded))
        return self.get(name)


def _warm(loaded: LoadedVersion) -> None:
    """One prediction on a typical row before traffic arrives (first calls are slow)."""
    row: dict[str, list[Any]] = {}
    profile = loaded.version.profile.get("features", {})
    for feature in loaded.validator.features:
        stats = profile.get(feature.name, {})
        if feature.type == "numeric":
            quantiles = stats.get("quantiles") or []
            value: Any = (
                quantiles[len(quantiles) // 2]
                if quantiles
                else (feature.range[0] if feature.range else 0.0)
            )
        elif feature.type == "boolean":
            value = False
        elif feature.categories:
            value = feature.categories[0]
        else:
            counts = stats.get("counts") or {"": 1}
            value = next(iter(counts))
        row[feature.name] = [value]
    frame, task = loaded.validator.to_frame(row), loaded.version.task
    try:
        if loaded.pipeline is None:
            array_ok = loaded.validator.all_numeric and getattr(
                loaded.runtime, "accepts_array", False
            )
            # The same input form as the micro-batches will have.
            run_model(
                loaded.runtime, frame.to_numpy(dtype="float64") if array_ok else frame, task=task
            )
        else:  # through the steps, unmeasured: a warm-up is not traffic
            loaded.pipeline.run(
                frame, loaded.runtime, loaded.version.features, task=task, observe=False
            )
    except Exception:  # warming is best effort: a model that fails here fails per request
        pass
