"""Every drift detector through the same checks: the protocol, false alarms, detection delay."""

from __future__ import annotations

import math

import numpy as np
import pytest

from modelpilot.drift import (
    DETECTORS,
    ADWINDetector,
    DDMDetector,
    DriftDetector,
    PageHinkleyDetector,
    make_detector,
)
from modelpilot.errors import DataError, ModelpilotError

SEEDS = range(10)
CHANGE_AT = 2000


def _errors(kind: str, rng: np.random.Generator, n: int, level: float) -> np.ndarray:
    """An error stream: 0/1 with error rate ``level``, or |normal| with mean ``level``."""
    if kind == "binary":
        return (rng.random(n) < level).astype(float)
    return np.abs(rng.normal(0.0, 1.0, n)) * level / math.sqrt(2 / math.pi)


# Per detector: the most false alarms allowed over 10 stationary streams of 5,000 points, and the
# largest / mean delay allowed for an abrupt change (0/1 error 0.1 -> 0.4, real error 1 -> 2).
# Measured with river 0.26 and these seeds: ADWIN 0 false alarms, delays <= 143; DDM 11 false
# alarms (its known weakness: an early lucky streak sets a low minimum), delays <= 344;
# Page-Hinkley 0 (binary) / 6 (real) false alarms, delays <= 204.
LIMITS = {
    "adwin": {"false_alarms": 0, "max_delay": 200, "mean_delay": 100},
    "ddm": {"false_alarms": 20, "max_delay": 400, "mean_delay": 200},
    "page_hinkley": {"false_alarms": 10, "max_delay": 300, "mean_delay": 200},
}
STREAM_CASES = [
    pytest.param(name, kind, id=f"{name}-{kind}")
    for name in sorted(DETECTORS)
    for kind in ("binary", "real")
    if kind == "binary" or make_detector(name).input_kind == "real"
]
LEVELS = {"binary": (0.1, 0.4), "real": (1.0, 2.0)}


def test_every_detector_has_limits() -> None:
    assert sorted(LIMITS) == sorted(DETECTORS)


@pytest.mark.parametrize(("name", "kind"), STREAM_CASES)
def test_detector_conformance(name: str, kind: str) -> None:
    low, high = LEVELS[kind]
    false_alarms, delays = 0, []
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        detector = make_detector(name)
        assert isinstance(detector, DriftDetector)
        assert (detector.name, detector.n_updates, detector.detections) == (name, 0, [])

        for x in _errors(kind, rng, 5000, low):
            assert detector.update(x) is detector.drift_detected
        assert detector.n_updates == 5000
        false_alarms += len(detector.detections)

        detector.reset()
        assert (detector.n_updates, detector.detections) == (0, [])
        stream = np.r_[_errors(kind, rng, CHANGE_AT, low), _errors(kind, rng, 1000, high)]
        hits = [i for i, x in enumerate(stream) if detector.update(x)]
        assert detector.detections == hits
        after = [i - CHANGE_AT for i in hits if i >= CHANGE_AT]
        assert after, f"{name} missed the change with seed {seed} (detections: {hits})"
        delays.append(after[0])

    limits = LIMITS[name]
    assert false_alarms <= limits["false_alarms"]
    assert max(delays) <= limits["max_delay"], delays
    assert np.mean(delays) <= limits["mean_delay"], delays


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_same_seed_same_detections(name: str) -> None:
    runs = []
    for _ in range(2):
        detector = make_detector(name)
        rng = np.random.default_rng(5)
        for x in np.r_[_errors("binary", rng, 1500, 0.1), _errors("binary", rng, 500, 0.5)]:
            detector.update(x)
        runs.append(detector.detections)
    assert runs[0] == runs[1] != []


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detections_is_a_read_only_copy(name: str) -> None:
    detector = make_detector(name)
    detector.detections.append(3)
    assert detector.detections == []


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_non_finite_values_are_refused(name: str) -> None:
    detector = make_detector(name)
    detector.update(0.0)
    with pytest.raises(DataError, match=r"at update 1"):
        detector.update(math.nan)
    assert detector.n_updates == 1


def test_ddm_takes_a_binary_stream_only() -> None:
    detector = DDMDetector()
    assert detector.input_kind == "binary"
    detector.update(True)
    with pytest.raises(DataError, match=r"expects a 0/1 error stream.*got 0\.3.*'adwin'"):
        detector.update(0.3)


def test_ddm_reports_its_warning_zone() -> None:
    detector = DDMDetector(warning_threshold=1.0, drift_threshold=50.0)
    rng = np.random.default_rng(0)
    warnings = 0
    for x in np.r_[_errors("binary", rng, 500, 0.05), _errors("binary", rng, 300, 0.5)]:
        detector.update(x)
        warnings += detector.warning_detected
    assert warnings > 200
    assert detector.detections == []


def test_names_and_parameters() -> None:
    assert make_detector("page_hinkley", name="ph_fast").name == "ph_fast"
    adwin = make_detector("adwin", delta=0.01, check_interval=1)
    assert isinstance(adwin, ADWINDetector)
    assert (adwin.delta, adwin.check_interval) == (0.01, 1)
    assert PageHinkleyDetector().mode == "up"
    assert "n_updates=0" in repr(adwin)


def test_page_hinkley_mode_up_ignores_a_falling_error() -> None:
    rng = np.random.default_rng(1)
    stream = np.r_[_errors("binary", rng, 1000, 0.4), _errors("binary", rng, 1000, 0.05)]
    up, both = PageHinkleyDetector(), PageHinkleyDetector(mode="both")
    for x in stream:
        up.update(x)
        both.update(x)
    assert up.detections == []
    assert [i for i in both.detections if i >= 1000]


def test_unknown_detector_lists_the_known_ones() -> None:
    with pytest.raises(ModelpilotError, match=r"unknown drift detector 'kswin'; known .*adwin"):
        make_detector("kswin")


def test_unknown_parameter_suggests_the_close_one() -> None:
    with pytest.raises(
        ModelpilotError,
        match=r"'page_hinkley' does not take 'treshold' \(did you mean 'threshold'\?\).*min_inst",
    ):
        make_detector("page_hinkley", treshold=10.0)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        (
            "adwin",
            {"delta": 1.5},
            r"'delta' parameter of ADWINDetector must be a float in \(0, 1\)",
        ),
        ("adwin", {"check_interval": 0}, r"'check_interval' .* an int >= 1; got 0 instead"),
        ("adwin", {"grace_period": 2.5}, r"'grace_period' .* an int >= 0; got 2\.5"),
        ("ddm", {"drift_threshold": "3"}, r"'drift_threshold' .* a float > 0; got '3'"),
        ("ddm", {"warm_start": True}, r"'warm_start' .* an int >= 0; got True"),
        ("page_hinkley", {"mode": "sideways"}, r"'mode' .* one of 'up', 'down', 'both'"),
        ("page_hinkley", {"alpha": 0.0}, r"'alpha' .* in \(0, 1\]"),
        ("page_hinkley", {"name": ""}, r"'name' .* a non-empty str or None"),
    ],
)
def test_invalid_parameters_are_named(name: str, params: dict[str, object], message: str) -> None:
    with pytest.raises(ModelpilotError, match=message):
        make_detector(name, **params)
