"""The monitor with an injected clock: every time series it writes, from metrics, log and labels.

No server and no waiting: the clock is a number the test moves; the live metrics are fed
through ``ServingMetrics``' own methods, the prediction log with ``PredictionLog.append`` and
labels with ``PredictionLog.add_feedback``, exactly what the server does.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fake_clock import FakeClock
from live_server import DEPLOYMENT
from modelpilot.datasets import HOUSE_FEATURES, house_prices
from modelpilot.inference import DeploymentManager
from modelpilot.monitoring import Monitor, ServingMetrics
from modelpilot.project import Project
from modelpilot.runtime import load_runtime
from modelpilot.store import FeedbackItem, PredictionBatch, PredictionLog, new_ids
from project_helpers import register, write_project

FEATURES = [f.name for f in HOUSE_FEATURES]
INTERVAL = 10.0  # monitoring.interval_s of the project file's template


@dataclass
class Watched:
    """A monitor over the house project, with the objects a test feeds it through."""

    project: Project
    metrics: ServingMetrics
    monitor: Monitor
    clock: FakeClock
    log: PredictionLog  # writes feedback at the fake clock's time
    model_file: Path

    def gauge(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, {"deployment": DEPLOYMENT, **labels})

    def series(self, name: str, **labels: str) -> list[float | None]:
        return [
            p.value
            for p in self.monitor.series.query(name, deployment=DEPLOYMENT, labels=labels or None)
        ]

    def log_predictions(self, frame: pd.DataFrame, *, scale: float = 1.0) -> list[str]:
        """Log ``frame``'s rows as online predictions made now (the model's, times ``scale``)."""
        inputs = frame[FEATURES].reset_index(drop=True)
        predicted = load_runtime(self.model_file).predict(inputs) * scale
        ids = new_ids(len(inputs), clock=self.clock)
        self.log.append(
            PredictionBatch(
                model=DEPLOYMENT,
                version=1,
                ids=ids,
                ts=np.full(len(ids), self.clock() - 1.0),
                inputs=inputs,
                outputs=pd.DataFrame({"prediction": predicted}),
            )
        )
        return ids


@pytest.fixture(scope="module")
def registered(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Path:
    """The house project, its model registered with the training data as drift reference."""
    train, holdout = house_data
    settings = {"monitoring": {"drift": {"min_rows": 200}}}
    directory = write_project(tmp_path_factory.mktemp("monitor") / "project", settings=settings)
    train.to_parquet(directory / "train.parquet")
    holdout.to_parquet(directory / "holdout.parquet")
    register(directory, house_model_file, production=True, data=directory / "train.parquet")
    return directory


@pytest.fixture
def watched(registered: Path, tmp_path: Path, house_model_file: Path) -> Iterator[Watched]:
    directory = shutil.copytree(registered, tmp_path / "project")
    project = Project.open(directory, environ={})
    clock = FakeClock(project.registry.resolve(f"{DEPLOYMENT}@production").created_at + 60)
    metrics = ServingMetrics(process=False)
    manager = DeploymentManager(
        project.registry,
        project.spec.deployment_specs,
        settings=project.spec.serving,
    )
    manager.load_all(clock=clock)
    monitor = Monitor(project, metrics, manager, clock=clock)
    log = PredictionLog(project.engine, clock=clock)
    yield Watched(project, metrics, monitor, clock, log, house_model_file)
    manager.close()
    project.engine.dispose()


# ---- software and inputs, from the live metrics ----------------------------------------------
def test_traffic_becomes_rate_error_and_latency_points(watched: Watched) -> None:
    latencies = [0.010, 0.012, 0.011, 0.013, 0.050, 0.009, 0.010, 0.200]
    outcomes = ["ok"] * 6 + ["client_error", "model_error"]
    for seconds, outcome in zip(latencies, outcomes, strict=True):
        watched.metrics.observe_request(DEPLOYMENT, "1", outcome, seconds, instances=1)
    watched.clock.advance(INTERVAL)
    watched.monitor.tick()
    for seconds in (0.020, 0.030):
        watched.metrics.observe_request(DEPLOYMENT, "1", "ok", seconds, instances=1)
    watched.clock.advance(INTERVAL)
    watched.monitor.tick()
    watched.clock.advance(INTERVAL / 2)  # before the next interval: nothing new
    assert watched.monitor.tick() == []

    assert watched.series("request_rate") == [8 / INTERVAL, 2 / INTERVAL]
    assert watched.series("error_rate") == [1 / 8, 0.0]  # client errors are not the server's
    assert watched.series("client_error_rate") == [1 / 8, 0.0]
    assert watched.series("request_count") == [8, 2]
    # Percentiles come from a log-bucketed sketch that adds up across replicas: the nearest
    # rank's latency, within 2%.
    for name, q in (("latency_p50_ms", 50), ("latency_p99_ms", 99)):
        expected = [
            np.percentile(np.array(latencies) * 1000, q, method="inverted_cdf"),
            20.0 if q == 50 else 30.0,
        ]
        np.testing.assert_allclose(watched.series(name), expected, rtol=0.02)


def test_input_counts_become_per_feature_rates(watched: Watched) -> None:
    observe = watched.metrics.observe_inputs
    observe(DEPLOYMENT, FEATURES, 60, {"lot_acres": 3}, {"size_sqft": 2}, {"location": 1})
    observe(DEPLOYMENT, FEATURES, 40, {"lot_acres": 1, "age_years": 4}, {}, {})
    watched.clock.advance(INTERVAL)
    watched.monitor.tick()

    assert watched.series("instances_per_request") == [50.0]
    assert watched.series("missing_rate", feature="lot_acres") == [0.04]
    assert watched.series("missing_rate", feature="age_years") == [0.04]
    assert watched.series("out_of_range_rate", feature="size_sqft") == [0.02]
    assert watched.series("unseen_rate", feature="location") == [0.01]
    assert watched.series("missing_rate", feature="bedrooms") == [0.0]
    observe(DEPLOYMENT, FEATURES, 10, {}, {"size_sqft": 5}, {})
    watched.clock.advance(INTERVAL)
    watched.monitor.tick()
    assert watched.series("out_of_range_rate", feature="size_sqft") == [0.02, 0.5]  # per interval


# ---- drift, from the prediction log ----------------------------------------------------------
# Windows of 1,500 rows: at 400, sample noise alone moves the default distance of a numeric
# feature (normalised Wasserstein, threshold 0.1) past its threshold now and then.
WINDOW = 1500


def _listings(seed: int, n: int = WINDOW) -> pd.DataFrame:
    return house_prices(n, seed=seed).drop(columns="price")


def test_drift_is_detected_for_exactly_the_shifted_features(watched: Watched) -> None:
    watched.log_predictions(_listings(seed=21))
    watched.clock.advance(INTERVAL)
    watched.monitor.tick()
    assert watched.series("drift_share") == [0.0]
    assert watched.gauge("modelpilot_drift_share_ratio") == 0.0

    # An hour later (past drift.window_s): older houses, all of them in town.
    watched.clock.advance(3700)
    shifted = _listings(seed=22)
    shifted = shifted.assign(
        age_years=(shifted["age_years"] + 60).clip(upper=200), location="urban"
    )
    watched.log_predictions(shifted)
    watched.clock.advance(INTERVAL)
    watched.monitor.tick()

    drifted = {f for f in FEATURES if watched.series("drift_detected", feature=f) == [0.0, 1.0]}
    assert drifted == {"age_years", "location"}
    assert all(
        watched.series("drift_detected", feature=f)[-1] == 0.0 for f in set(FEATURES) - drifted
    )
    assert watched.series("drift_share") == [0.0, 2 / len(FEATURES)]
    assert watched.series("drift_window_rows") == [WINDOW, WINDOW]
    for feature in FEATURES:
        expected = 1.0 if feature in drifted else 0.0
        assert watched.gauge("modelpilot_drift_detected", feature=feature) == expected


def test_predictions_that_leave_the_label_distribution_are_prediction_drift(
    watched: Watched,
) -> None:
    watched.log_predictions(_listings(seed=23))
    watched.clock.advance(INTERVAL)
    watched.monitor.tick()
    watched.clock.advance(3700)
    watched.log_predictions(_listings(seed=24), scale=1.8)  # same inputs, a broken model
    watched.clock.advance(INTERVAL)
    watched.monitor.tick()

    assert watched.series("prediction_drift") == [0.0, 1.0]
    assert watched.series("drift_share") == [0.0, 0.0]  # the inputs did not move
    assert watched.series("drift_detected", feature="(prediction)") == [0.0, 1.0]


# ---- outcomes, from the labels ---------------------------------------------------------------
def test_labels_become_key_metrics_and_concept_drift(watched: Watched) -> None:
    listings = _listings(seed=25, n=400)
    ids = watched.log_predictions(listings)
    predicted = load_runtime(watched.model_file).predict(listings[FEATURES])
    rng = np.random.default_rng(0)
    before = predicted[:200] + rng.normal(0, 8_000, 200)  # labels as the model expects
    after = predicted[200:] * 1.5  # prices rose: the same houses cost 50% more
    watched.log.add_feedback(
        [FeedbackItem(i, float(v)) for i, v in zip(ids[:200], before, strict=True)]
    )
    watched.clock.advance(INTERVAL)
    watched.monitor.tick()
    assert watched.series("concept_drift", detector="adwin") == [0.0]
    np.testing.assert_allclose(
        watched.series("key_metric", metric="mae"), [np.mean(np.abs(before - predicted[:200]))]
    )
    assert watched.series("labels") == [200.0]
    assert watched.series("label_coverage") == [0.5]

    watched.clock.advance(1)
    watched.log.add_feedback(
        [FeedbackItem(i, float(v)) for i, v in zip(ids[200:], after, strict=True)]
    )
    watched.clock.advance(INTERVAL)
    watched.monitor.tick()
    labels = np.concatenate([before, after])
    mae = np.mean(np.abs(labels - predicted))  # over the last label_window (500) labels
    np.testing.assert_allclose(watched.series("key_metric", metric="mae")[-1], mae)
    assert watched.gauge("modelpilot_key_metric", metric="mae") == pytest.approx(mae)
    fired = {
        d for d in ("adwin", "page_hinkley") if watched.series("concept_drift", detector=d)[-1]
    }
    assert fired, "no concept-drift detector fired on a 50% price rise"
    for detector in fired:
        assert watched.gauge("modelpilot_concept_drift_detected", detector=detector) == 1.0
    assert watched.series("labels") == [200.0, 400.0]
    assert watched.series("label_coverage")[-1] == 1.0
