"""Concept drift: the monitor on the house-price story and on river's synthetic streams."""

from __future__ import annotations

import time
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from river import tree
from river.datasets import synth

from modelpilot.datasets import house_prices
from modelpilot.drift import (
    ConceptDriftMonitor,
    ConceptDriftStatus,
    DDMDetector,
    PageHinkleyDetector,
    make_detector,
)
from modelpilot.errors import DataError, ModelpilotError
from modelpilot.registry import compute_metrics
from modelpilot.runtime import load_runtime
from modelpilot.store import (
    FeedbackItem,
    PredictionRecord,
    PredictionStore,
)
from modelpilot.types import Clock

JUMP = 1500  # prices rise by 20% from this label on
DRIFT = 2000  # river streams switch concept here


def _fixed_clock(value: float = 1_700_000_000.0) -> Callable[[], float]:
    return lambda: value


@pytest.fixture(scope="module")
def house_stream(house_model_file: Path) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, prices) for 3,000 houses; the same houses sell for 20% more after JUMP."""
    houses = house_prices(3000, seed=11)
    predictions = load_runtime(house_model_file).predict(houses.drop(columns="price"))
    prices = houses["price"].to_numpy(dtype=float, copy=True)
    prices[JUMP:] *= 1.2
    return np.asarray(predictions, dtype=float), prices


@pytest.mark.parametrize("error", ["absolute", "relative"])
def test_rising_prices_are_detected_and_fail_the_mae_target(
    house_stream: tuple[np.ndarray, np.ndarray], error: Literal["absolute", "relative"]
) -> None:
    predictions, prices = house_stream
    monitor = ConceptDriftMonitor("regression", ["mae <= 25000"], error=error, clock=_fixed_clock())
    monitor.update_many(predictions[:JUMP], prices[:JUMP])
    before = monitor.status()
    assert before.n_labels == JUMP and before.n_window == 500
    assert monitor.events == []
    mae_before = before.key_metrics[0].value
    assert mae_before is not None and 10_000 < mae_before < 20_000
    assert before.key_metrics[0].passed is True
    assert before.failed == []

    events = monitor.update_many(predictions[JUMP:], prices[JUMP:])
    first = {e.detector: e.index for e in reversed(events)}
    assert sorted(first) == ["adwin", "page_hinkley"]
    assert all(JUMP <= index < JUMP + 100 for index in first.values()), first
    after = monitor.status()
    mae_after = after.key_metrics[0].value
    assert mae_after is not None and mae_after > 3 * mae_before
    assert after.key_metrics[0].passed is False
    assert [k.metric for k in after.failed] == ["mae"]
    assert after.metrics["mae"] == pytest.approx(
        float(np.mean(np.abs(prices[-500:] - predictions[-500:])))
    )


def test_error_scale_is_calibrated_on_the_first_labels(
    house_stream: tuple[np.ndarray, np.ndarray],
) -> None:
    predictions, prices = house_stream
    monitor = ConceptDriftMonitor("regression", calibration=200)
    monitor.update_many(predictions[:199], prices[:199], ts=0.0)
    assert monitor.error_scale is None
    assert {d.n_updates for d in monitor.detectors} == {0}
    monitor.update(predictions[199], prices[199], ts=0.0)
    assert monitor.error_scale == pytest.approx(np.mean(np.abs(prices[:200] - predictions[:200])))
    assert {d.n_updates for d in monitor.detectors} == {200}

    given = ConceptDriftMonitor("regression", error_scale=15_000.0)
    given.update(predictions[0], prices[0], ts=0.0)
    assert given.error_scale == 15_000.0
    assert [d.n_updates for d in given.detectors] == [1, 1]


def _frozen_model(train: Any, n: int) -> tree.HoeffdingTreeClassifier:
    model = tree.HoeffdingTreeClassifier()
    for x, y in train.take(n):
        model.learn_one(x, y)
    return model


def test_sea_concept_change_is_detected_by_every_detector() -> None:
    model = _frozen_model(synth.SEA(variant=0, noise=0.05, seed=99), 2000)
    # river's ConceptDriftStream overflows math.exp for width=1 far from the start: 50 samples
    # of transition is still abrupt for these detectors.
    stream = synth.ConceptDriftStream(
        stream=synth.SEA(variant=0, noise=0.05, seed=1),
        drift_stream=synth.SEA(variant=3, noise=0.05, seed=2),
        position=DRIFT,
        width=50,
        seed=0,
    )
    xs, ys = zip(*stream.take(3000), strict=True)
    predictions = [model.predict_one(x) for x in xs]
    monitor = ConceptDriftMonitor("binary", ["accuracy >= 0.85"], clock=_fixed_clock())
    assert [d.name for d in monitor.detectors] == ["adwin", "ddm", "page_hinkley"]

    early = monitor.update_many(predictions[:DRIFT], ys[:DRIFT])
    assert early == []
    assert monitor.status().key_metrics[0].passed is True

    late = monitor.update_many(predictions[DRIFT:], ys[DRIFT:])
    first = {e.detector: e.index for e in reversed(late)}
    assert sorted(first) == ["adwin", "ddm", "page_hinkley"]
    assert all(DRIFT - 25 <= index < DRIFT + 800 for index in first.values()), first
    status = monitor.status()
    accuracy = status.metrics["accuracy"]
    assert accuracy is not None and accuracy < 0.85
    assert status.key_metrics[0].passed is False


def test_stagger_change_one_label_at_a_time_with_an_injected_clock() -> None:
    model = _frozen_model(synth.STAGGER(classification_function=0, seed=99), 5000)
    stream = synth.ConceptDriftStream(
        stream=synth.STAGGER(classification_function=0, seed=1),
        drift_stream=synth.STAGGER(classification_function=1, seed=2),
        position=DRIFT,
        width=50,
        seed=0,
    )
    ticks = count(1_700_000_000)
    monitor = ConceptDriftMonitor(
        "binary", ["accuracy >= 0.9", "f1 >= 0.5"], clock=lambda: float(next(ticks))
    )
    events = []
    for x, y in stream.take(2500):
        events += monitor.update(model.predict_one(x), y)

    assert events and all(e.index >= DRIFT - 25 for e in events)
    first = {e.detector: e for e in reversed(events)}
    assert sorted(first) == ["adwin", "ddm", "page_hinkley"]
    assert all(e.index < DRIFT + 150 for e in first.values()), first
    # one clock tick per label: the detection time is the time its label arrived
    assert all(e.ts == 1_700_000_000 + e.index for e in events)
    status = monitor.status()
    assert status.ts == 1_700_000_000 + 2500
    assert status.drift_detected
    by_name = {d.name: d for d in status.detectors}
    assert (
        by_name["adwin"].last_detection_ts == 1_700_000_000 + by_name["adwin"].last_detection_index
    )
    assert {k.metric: k.passed for k in status.key_metrics} == {"accuracy": False, "f1": False}


def test_windowed_metrics_match_compute_metrics_on_the_last_labels() -> None:
    rng = np.random.default_rng(3)
    labels = rng.choice(["cat", "dog", "owl"], size=400)
    predictions = np.where(rng.random(400) < 0.8, labels, "dog")
    monitor = ConceptDriftMonitor(
        "multiclass", ["accuracy >= 0.8"], window=150, clock=_fixed_clock()
    )
    monitor.update_many(predictions, labels)
    status = monitor.status()
    expected = compute_metrics("multiclass", labels[-150:], predictions[-150:])
    assert status.metrics == expected
    assert status.n_window == 150 and status.n_labels == 400
    assert status.key_metrics[0].value == expected["accuracy"]


def test_key_metrics_are_not_judged_without_enough_labels() -> None:
    monitor = ConceptDriftMonitor(
        "binary", ["accuracy >= 0.9", "roc_auc >= 0.8"], min_labels=30, clock=_fixed_clock()
    )
    empty = monitor.status()
    assert isinstance(empty, ConceptDriftStatus)
    assert (empty.n_labels, empty.metrics, empty.drift_detected) == (0, {}, False)
    assert [k.passed for k in empty.key_metrics] == [None, None]
    monitor.update_many([1] * 10, [0] * 10)
    few = monitor.status()
    assert few.key_metrics[0].value == 0.0 and few.key_metrics[0].passed is None
    monitor.update_many([1] * 30, [1] * 30)
    enough = monitor.status()
    assert enough.key_metrics[0].passed is False  # 30 of 40 right
    assert enough.key_metrics[1].value is None and enough.key_metrics[1].passed is None


def test_drift_flag_covers_the_window_only_and_reset_starts_over() -> None:
    monitor = ConceptDriftMonitor(
        "binary", detectors=[make_detector("ddm")], window=400, clock=_fixed_clock()
    )
    rng = np.random.default_rng(0)
    errors = np.r_[rng.random(1000) < 0.05, rng.random(300) < 0.5]
    monitor.update_many(errors.astype(int), np.zeros(1300, dtype=int))
    assert monitor.status().drift_detected
    last = monitor.status().detectors[0].last_detection_index
    assert last is not None and 1000 <= last < 1100
    monitor.update_many(np.zeros(400, dtype=int), np.zeros(400, dtype=int))
    quiet = monitor.status()
    assert not quiet.drift_detected and quiet.detectors[0].n_detections >= 1

    monitor.reset()
    assert monitor.n_labels == 0 and monitor.events == []
    assert monitor.detectors[0].n_updates == 0


def test_from_log_replays_labelled_predictions_in_time_order(
    log_backend: Callable[[Clock], PredictionStore],
) -> None:
    log = log_backend(time.time)  # on every backend: the metadata database's, and Delta
    records = [
        PredictionRecord(
            id=f"p{i}",
            ts=100.0 + i,
            model="houses",
            version=1 + (i >= 40),
            inputs={"size_sqft": 1000.0 + i},
            outputs={"prediction": 200_000.0},
        )
        for i in range(60)
    ]
    records.append(
        PredictionRecord(
            id="other",
            ts=105.0,
            model="cars",
            version=1,
            inputs={"size_sqft": 1.0},
            outputs={"prediction": 1.0},
        )
    )
    log.append(records)
    prices = {f"p{i}": 200_000.0 + 1_000.0 * i for i in range(50)}  # p50..p59 have no label
    log.add_feedback([FeedbackItem(pid, price) for pid, price in prices.items()])

    monitor = ConceptDriftMonitor.from_log(
        log,
        "houses",
        100.0,
        160.0,
        task="regression",
        key_metrics=["mae <= 25000"],
        error_scale=10_000.0,
    )
    assert monitor.n_labels == 50
    status = monitor.status()
    assert status.metrics["mae"] == pytest.approx(24_500.0)
    assert status.key_metrics[0].passed is True

    v1 = ConceptDriftMonitor.from_log(
        log, "houses", task="regression", version=1, error_scale=10_000.0
    )
    assert v1.n_labels == 40
    windowed = ConceptDriftMonitor.from_log(
        log, "houses", 110.0, 120.0, task="regression", window=5, error_scale=10_000.0
    )
    assert windowed.n_labels == 10
    assert windowed.status().metrics["mae"] == pytest.approx(17_000.0)
    none = ConceptDriftMonitor.from_log(log, "nobody", task="binary")
    assert none.n_labels == 0


def test_a_bad_row_leaves_the_monitor_unchanged() -> None:
    monitor = ConceptDriftMonitor("regression", error_scale=1.0, clock=_fixed_clock())
    with pytest.raises(DataError, match=r"row 1 of the batch has prediction nan .* finite"):
        monitor.update_many([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(DataError, match=r"must be numbers"):
        monitor.update("a lot", 2.0)
    with pytest.raises(DataError, match=r"got 2 predictions but 1 labels"):
        monitor.update_many([1.0, 2.0], [1.0])
    with pytest.raises(DataError, match=r"got 3 timestamps for 2 labels"):
        monitor.update_many([1.0, 2.0], [1.0, 2.0], ts=[1.0, 2.0, 3.0])
    relative = ConceptDriftMonitor("regression", error="relative", error_scale=1.0)
    with pytest.raises(DataError, match=r"row 0 of the batch has label 0.*error='absolute'"):
        relative.update(1.0, 0.0)
    classifier = ConceptDriftMonitor("binary")
    with pytest.raises(DataError, match=r"missing \(None\)"):
        classifier.update(None, 1)
    assert monitor.n_labels == relative.n_labels == classifier.n_labels == 0
    assert monitor.status().n_window == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "ranking"}, r"task must be one of regression, binary, multiclass; got 'ranking'"),
        ({"key_metrics": ["accuracy >= 0.9"]}, r"'accuracy >= 0.9' does not fit task 'regression'"),
        ({"key_metrics": ["mae <= "]}, r"key metric 'mae <= ' is not valid: expected"),
        ({"detectors": ["ddm"]}, r"'ddm' expects a 0/1 error stream.*'adwin' or 'page_hinkley'"),
        ({"detectors": [DDMDetector()]}, r"'ddm' expects a 0/1 error stream"),
        ({"detectors": []}, r"at least one detector; pass detectors=None"),
        ({"detectors": ["adwin", "kswin"]}, r"unknown drift detector 'kswin'"),
        (
            {"detectors": ["page_hinkley", PageHinkleyDetector(threshold=5.0)]},
            r"repeated: page_hinkley\. Name the copies",
        ),
        ({"window": 0}, r"window must be an int >= 1; got 0"),
        ({"error": "squared"}, r"error must be 'absolute' or 'relative'; got 'squared'"),
        ({"error_scale": -1.0}, r"error_scale must be a positive number .*; got -1.0"),
    ],
)
def test_configuration_errors_say_what_to_do(kwargs: dict[str, Any], message: str) -> None:
    options = {"task": "regression", **kwargs}
    task = options.pop("task")
    key_metrics = options.pop("key_metrics", ())
    with pytest.raises(ModelpilotError, match=message):
        ConceptDriftMonitor(task, key_metrics, **options)
