"""Helpers of the rollout tests: projects with several versions, and the rollout controller on a
fake clock with the prediction log fed by hand (``rollout_live.py`` has the real server's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.compose import make_column_transformer
from sklearn.dummy import DummyRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from fake_clock import FakeClock
from live_server import DEPLOYMENT
from modelpilot.inference import DeploymentManager, PipelineBuilder
from modelpilot.project import Project
from modelpilot.rollout import RolloutController
from modelpilot.store import PredictionBatch, new_ids

STEP_S = 600.0  # CONTROLLER_ROLLOUT: 10 minutes per step...
ANALYSIS_S = 10.0  # ...and an analysis every 10 s


# ---- projects ---------------------------------------------------------------------------------


def constant_model(train: pd.DataFrame, path: Path) -> Path:
    """A model that predicts the mean price whatever the house: it misses ``mae <= 25000``."""
    sio.dump(DummyRegressor().fit(train.drop(columns="price"), train["price"]), path)
    return path


def linear_model(train: pd.DataFrame, path: Path) -> Path:
    """A ridge regression on the house features (mae about 13,000: it passes the targets)."""
    features = train.drop(columns="price")
    numeric = [c for c in features.columns if c not in ("location", "condition")]
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
        (SimpleImputer(), numeric),
    )
    sio.dump(make_pipeline(encode, Ridge()).fit(features, train["price"]), path)
    return path


#: The controller tests' settings (the project file's defaults, written out so that the tests
#: say what they test): four steps of 10 minutes, an analysis every 10 s, two failures.
CONTROLLER_ROLLOUT = {
    "steps": [5, 25, 50, 100],
    "step_interval_s": 600,
    "analysis_interval_s": 10,
    "failure_limit": 2,
    "gates": [
        {"metric": "error_rate", "threshold": 0.02, "min_samples": 50},
        {"metric": "latency_p99", "threshold": 2.0, "min_samples": 50, "slack": 10},
        {"metric": "prediction_shift", "threshold": 0.2, "min_samples": 50},
        {"metric": "agreement", "threshold": 0.8, "min_samples": 30},
        {"metric": "key_metric", "threshold": 0.05, "min_samples": 30},
    ],
    "blue_green_window_s": 600,
}


@dataclass(frozen=True)
class ControllerVersions:
    primary: int
    candidate: int
    other: int
    rejected: int


# ---- the controller with a fake clock ---------------------------------------------------------


@dataclass
class ControllerHarness:
    """One "server process": a project, its loaded deployments and a rollout controller."""

    project: Project
    manager: DeploymentManager
    controller: RolloutController
    clock: FakeClock

    def close(self) -> None:
        self.manager.close()
        self.project.engine.dispose()

    @property
    def state(self) -> Any:
        return self.controller.store.state(DEPLOYMENT)

    def routing(self) -> dict[str, Any]:
        """What this process's router does now (``kind``, ``traffic`` by version)."""
        described: dict[str, Any] = self.manager.get(DEPLOYMENT).router.describe()
        return described

    def production(self) -> int:
        return self.project.registry.alias_version(DEPLOYMENT, "production")

    def audit(self, action: str) -> list[dict[str, Any]]:
        """Audit entries of one action on the deployment, newest first."""
        return [
            e
            for e in self.project.registry.audit_entries(limit=500)
            if e["action"] == action and e["target"] == DEPLOYMENT
        ]


def open_controller(
    directory: Path,
    clock: FakeClock,
    *,
    worker_id: str | None = None,
    project: Project | None = None,
) -> ControllerHarness:
    """What ``modelpilot serve`` does at start, without the HTTP part: load every deployment,
    build a controller on ``clock`` and attach it (routers rebuilt from the database)."""
    project = project or Project.open(directory, environ={})
    settings = project.spec.serving
    manager = DeploymentManager(
        project.registry,
        project.spec.deployment_specs,
        settings=settings,
        pipelines=PipelineBuilder.for_project(project),
    )
    manager.load_all(clock=clock)
    controller = RolloutController(project, manager, clock=clock, worker_id=worker_id)
    controller.attach()
    return ControllerHarness(project, manager, controller, clock)


@dataclass
class Traffic:
    """What one stretch of traffic looks like in the prediction log."""

    candidate_rows: int = 60
    primary_rows: int = 60
    error_share: float = 0.0  # of the candidate's rows
    offset: float = 0.0  # added to the candidate's predictions
    candidate_ms: float = 3.0
    primary_ms: float = 3.0
    mirrored: bool = True  # the primary also scored the candidate's requests


def feed(
    project: Project,
    at: float,
    *,
    candidate: int,
    primary: int,
    traffic: Traffic | None = None,
    seed: int = 0,
) -> list[str]:
    """Write the rows a server would have logged at time ``at``: the candidate's answers, the
    primary's own answers, and the primary's mirrored answers to the candidate's requests
    (``source="shadow"``, the same ids). Returns the candidate's prediction ids."""
    t = traffic or Traffic()
    rng = np.random.default_rng(seed)
    n_c, n_p = t.candidate_rows, t.primary_rows
    prices = rng.normal(350_000, 120_000, n_c + n_p).clip(30_000)
    inputs = pd.DataFrame({"size_sqft": rng.uniform(500, 4000, n_c + n_p).round()})
    ids = new_ids(n_c)
    n_errors = round(n_c * t.error_share)
    candidate_out: list[dict[str, Any]] = [
        {"prediction": None, "error": "ValueError"}
        if i < n_errors
        else {"prediction": float(prices[i] + t.offset)}
        for i in range(n_c)
    ]
    batches = [
        PredictionBatch(
            DEPLOYMENT,
            candidate,
            ids,
            np.full(n_c, at),
            inputs.iloc[:n_c],
            candidate_out,
            latency_ms=rng.uniform(0.8, 1.2, n_c) * t.candidate_ms,
        )
    ]
    if t.mirrored:
        batches.append(
            PredictionBatch(
                DEPLOYMENT,
                primary,
                ids,
                np.full(n_c, at),
                inputs.iloc[:n_c],
                [{"prediction": float(p)} for p in prices[:n_c]],
                source="shadow",
                latency_ms=rng.uniform(0.8, 1.2, n_c) * t.primary_ms,
            )
        )
    if n_p:
        batches.append(
            PredictionBatch(
                DEPLOYMENT,
                primary,
                new_ids(n_p),
                np.full(n_p, at),
                inputs.iloc[n_c:],
                [{"prediction": float(p)} for p in prices[n_c:]],
                latency_ms=rng.uniform(0.8, 1.2, n_p) * t.primary_ms,
            )
        )
    project.prediction_log.append(batches)
    return ids


def feed_shadow(
    project: Project,
    at: float,
    *,
    primary: int,
    candidate: int,
    rows: int = 60,
    offset: float = 0.0,
    error_share: float = 0.0,
    seed: int = 0,
) -> list[str]:
    """Shadow traffic: the primary answered ``rows`` requests, the candidate scored copies of
    them (``source="shadow"``, the same ids), ``offset`` higher. Returns the ids."""
    rng = np.random.default_rng(seed)
    prices = rng.normal(350_000, 120_000, rows).clip(30_000)
    inputs = pd.DataFrame({"size_sqft": rng.uniform(500, 4000, rows).round()})
    ids = new_ids(rows)
    n_errors = round(rows * error_share)
    shadow_out: list[dict[str, Any]] = [
        {"prediction": None, "error": "ValueError"}
        if i < n_errors
        else {"prediction": float(prices[i] + offset)}
        for i in range(rows)
    ]
    project.prediction_log.append(
        [
            PredictionBatch(
                DEPLOYMENT,
                primary,
                ids,
                np.full(rows, at),
                inputs,
                [{"prediction": float(p)} for p in prices],
                latency_ms=np.full(rows, 3.0),
            ),
            PredictionBatch(
                DEPLOYMENT,
                candidate,
                ids,
                np.full(rows, at),
                inputs,
                shadow_out,
                source="shadow",
                latency_ms=np.full(rows, 4.0),
            ),
        ]
    )
    return ids


# ---- shared checks ------------------------------------------------------------------------------
def canary_step(
    h: ControllerHarness, v: ControllerVersions, traffic: Traffic | None = None
) -> list[dict[str, Any]]:
    """One step's worth of good traffic, then the step's 10 minutes pass; returns the events."""
    weight = h.controller.status(DEPLOYMENT)["rollout"]["weight"]
    traffic = traffic or Traffic(primary_rows=0 if weight == 100 else 60)
    feed(h.project, h.clock() + 1, candidate=v.candidate, primary=v.primary, traffic=traffic)
    h.clock.advance(STEP_S)
    return h.controller.tick()


def assert_serving(h: ControllerHarness, version: int) -> None:
    """Every place that says which version serves agrees: state, router, alias, status."""
    assert h.state.version == version
    assert h.state.active_rollout is None
    assert h.routing() == {"kind": "static", "traffic": {str(version): 100.0}}
    assert h.production() == version
    status = h.controller.status(DEPLOYMENT)
    assert status["version"] == version
    assert status["rollout"] is None


def canary_at_step_three(h: ControllerHarness, v: ControllerVersions) -> None:
    h.controller.deploy(DEPLOYMENT, v.candidate, "canary", actor="alice")
    canary_step(h, v)
    canary_step(h, v)
    assert h.controller.status(DEPLOYMENT)["rollout"]["step_of"] == "3/4"
