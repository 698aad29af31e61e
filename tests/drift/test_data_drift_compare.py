"""`compare`: defaults, overrides, multiple testing, the effect-size floor, the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from modelpilot.drift import (
    DomainClassifier,
    DriftReference,
    DriftReport,
    KSTest,
    PopulationStabilityIndex,
    compare,
)
from modelpilot.errors import DataError, ModelpilotError
from modelpilot.spec import FeatureSpec


def _frame(n: int, *, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1.0, n),
            "rooms": rng.integers(1, 4, n).astype(float),  # 3 distinct values
            "city": rng.choice(["paris", "lyon", "nice"], n, p=[0.5, 0.3, 0.2]),
            "garage": rng.random(n) < 0.4,
        }
    )


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (800, {"x": "ks", "rooms": "chi_square", "city": "chi_square", "garage": "chi_square"}),
        (
            1500,
            {
                "x": "wasserstein",
                "rooms": "jensen_shannon",
                "city": "jensen_shannon",
                "garage": "jensen_shannon",
            },
        ),
    ],
)
def test_defaults_follow_evidentlys_rules_by_type_and_reference_size(
    n: int, expected: dict[str, str]
) -> None:
    report = compare(_frame(n, seed=1), _frame(700, seed=2))
    assert {f.name: f.method for f in report.features} == expected
    assert {f.name: f.kind for f in report.features} == {
        "x": "numeric",
        "rooms": "numeric",
        "city": "categorical",
        "garage": "categorical",
    }
    assert {f.threshold for f in report.features} == ({0.05} if n <= 1000 else {0.1})
    assert not report.dataset_drifted


def test_per_feature_methods_and_thresholds() -> None:
    report = compare(
        _frame(2000, seed=1),
        _frame(2000, seed=2, shift=0.2),
        methods={"x": "ks", "city": PopulationStabilityIndex(n_bins=5)},
        thresholds={"x": 0.01, "rooms": 0.5},
    )
    x, city, rooms = report.feature("x"), report.feature("city"), report.feature("rooms")
    assert (x.method, x.threshold, x.drifted) == ("ks", 0.01, True)
    assert (city.method, city.threshold) == ("psi", 0.1)
    assert (rooms.method, rooms.threshold) == ("jensen_shannon", 0.5)


def test_features_restrict_and_type_the_comparison() -> None:
    ref, cur = _frame(500, seed=1), _frame(500, seed=2)
    report = compare(ref, cur, features=[FeatureSpec(name="rooms", type="categorical"), "x"])
    assert [(f.name, f.kind) for f in report.features] == [
        ("rooms", "categorical"),
        ("x", "numeric"),
    ]


def test_100_healthy_features_raise_5_false_alarms_without_correction_and_none_with_it() -> None:
    rng = np.random.default_rng(42)
    names = [f"f{i:03d}" for i in range(100)]
    ref = pd.DataFrame(rng.normal(size=(500, 100)), columns=names)
    cur = pd.DataFrame(rng.normal(size=(400, 100)), columns=names)
    alarms = {c: compare(ref, cur, correction=c).n_drifted for c in ("none", "bh", "bonferroni")}
    assert alarms == {"none": 5, "bh": 0, "bonferroni": 0}
    report = compare(ref, cur)
    assert all(
        f.p_value_adjusted is not None and f.p_value_adjusted >= f.p_value for f in report.features
    )


def test_correction_keeps_real_drift() -> None:
    rng = np.random.default_rng(5)
    names = [f"f{i:02d}" for i in range(50)]
    ref = pd.DataFrame(rng.normal(size=(600, 50)), columns=names)
    cur = pd.DataFrame(rng.normal(size=(600, 50)), columns=names)
    cur[names[:3]] += 0.5
    assert compare(ref, cur).drifted_features == names[:3]


def test_effect_size_floor_keeps_a_negligible_shift_at_a_million_rows_from_being_drift() -> None:
    rng = np.random.default_rng(7)
    ref = pd.DataFrame({"x": rng.normal(size=1_000_000)})
    cur = pd.DataFrame({"x": rng.normal(0.02, 1.0, size=1_000_000)})  # 2% of a std
    floored = compare(ref, cur, methods={"x": "ks"}).feature("x")
    assert floored.p_value is not None and floored.p_value < 1e-10
    assert floored.effect_size < 0.03
    assert not floored.drifted
    assert compare(ref, cur, methods={"x": KSTest()}, effect_size_floor=0).feature("x").drifted


def test_dataset_verdict_is_the_share_of_drifted_features() -> None:
    ref, cur = _frame(1500, seed=1), _frame(1500, seed=2, shift=1.0)
    report = compare(ref, cur)
    assert report.drifted_features == ["x"]
    assert (report.n_drifted, report.share_drifted, report.dataset_drifted) == (1, 0.25, False)
    assert compare(ref, cur, dataset_threshold=0.25).dataset_drifted


def test_report_as_frame_and_json() -> None:
    report = compare(_frame(1500, seed=1), _frame(1200, seed=2, shift=1.0))
    frame = report.to_frame()
    assert list(frame["feature"]) == ["x", "rooms", "city", "garage"]
    assert {"method", "statistic", "p_value", "threshold", "drifted", "effect_size"} <= set(frame)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["dataset_drifted"] is False and data["drifted_features"] == ["x"]
    x = data["features"][0]
    assert x["summary"]["kind"] == "histogram"
    assert len(x["summary"]["edges"]) == len(x["summary"]["reference"]) + 1
    assert sum(x["summary"]["current"]) == pytest.approx(1.0, abs=1e-4)
    city = data["features"][2]["summary"]
    assert (city["kind"], sorted(city["labels"])) == ("categories", ["lyon", "nice", "paris"])


def test_json_size_does_not_grow_with_the_data() -> None:
    small = json.dumps(compare(_frame(2000, seed=1), _frame(2000, seed=2)).to_dict())
    large = json.dumps(compare(_frame(200_000, seed=1), _frame(200_000, seed=2)).to_dict())
    assert len(large) < 1.2 * len(small) < 20_000


def test_missing_values_are_counted_not_compared() -> None:
    ref, cur = _frame(1200, seed=1), _frame(1000, seed=2)
    cur.loc[:99, "x"] = np.nan
    cur.loc[:9, "city"] = None
    report = compare(ref, cur)
    assert (report.feature("x").n_current, report.feature("x").n_missing_current) == (900, 100)
    assert report.feature("city").n_missing_current == 10


def test_a_prepared_reference_is_reused() -> None:
    ref = _frame(3000, seed=1)
    prepared = DriftReference.from_frame(ref)
    for seed, shift in ((2, 0.0), (3, 0.4)):
        cur = _frame(1000, seed=seed, shift=shift)
        assert compare(prepared, cur).to_dict() == compare(ref, cur).to_dict()
    assert prepared.columns["x"].values is prepared.columns["x"].values  # sorted once


def test_threads_give_the_same_report() -> None:
    ref, cur = _frame(3000, seed=1), _frame(3000, seed=2, shift=0.3)
    assert compare(ref, cur, n_jobs=1).to_dict() == compare(ref, cur, n_jobs=3).to_dict()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"methods": {"size": "ks"}},
            DataError,
            "methods names feature 'size', which is not compared; the features are x, rooms",
        ),
        ({"methods": {"x": "t-test"}}, ModelpilotError, "unknown drift method 't-test'"),
        ({"methods": {"city": "ks"}}, DataError, "'ks' works on numeric features, but 'city'"),
        ({"thresholds": {"x": -1}}, ModelpilotError, "threshold of 'x' must be a positive"),
        (
            {"correction": "holm"},
            ModelpilotError,
            "correction must be one of bh, bonferroni, none; got 'holm'",
        ),
        ({"dataset_threshold": 0}, ModelpilotError, r"it must be in \(0, 1\], got 0"),
        ({"effect_size_floor": 2}, ModelpilotError, r"effect_size_floor must be a number"),
        (
            {"features": ["x", "age"]},
            DataError,
            "feature 'age' is not in the reference data; it has city, garage, rooms, x",
        ),
    ],
)
def test_bad_arguments_say_what_is_wrong(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        compare(_frame(100, seed=1), _frame(100, seed=2), **kwargs)  # type: ignore[arg-type]


def test_a_feature_missing_from_the_current_data_is_an_error() -> None:
    with pytest.raises(DataError, match="feature 'city' is missing from the current data"):
        compare(_frame(100, seed=1), _frame(100, seed=2).drop(columns="city"))


def test_domain_classifier_sees_a_change_in_the_joint_distribution() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 1500))
    ref = pd.DataFrame({"x": a, "y": a + rng.normal(0, 0.2, 1500)})
    cur = pd.DataFrame({"x": b, "y": -b + rng.normal(0, 0.2, 1500)})  # same marginals
    report = compare(ref, cur, domain_classifier=True)
    assert not report.dataset_drifted  # each feature alone looks the same
    assert report.domain_classifier is not None
    assert report.domain_classifier.roc_auc > 0.9 and report.domain_classifier.drifted
    healthy = compare(
        ref,
        ref.sample(frac=1.0, random_state=1).reset_index(drop=True) + 0,
        domain_classifier=DomainClassifier(n_splits=3, seed=1),
    )
    assert healthy.domain_classifier is not None and not healthy.domain_classifier.drifted
    assert report.to_dict()["domain_classifier"]["roc_auc"] > 0.9


def test_domain_classifier_needs_raw_reference_data() -> None:
    from modelpilot.data import build_profile

    ref = _frame(300, seed=1)
    profile = build_profile(ref, [FeatureSpec(name="x", type="numeric")])
    with pytest.raises(DataError, match="the domain classifier needs the raw reference data"):
        compare(profile, _frame(300, seed=2), domain_classifier=True)


def test_html_report_is_self_contained_with_one_plot_per_feature() -> None:
    ref, cur = _frame(20_000, seed=1), _frame(20_000, seed=2, shift=0.5)
    ref["<b>odd name</b>"] = ref["x"]
    cur["<b>odd name</b>"] = cur["x"]
    report = compare(ref, cur)
    page = report.to_html(title="Weekly check")
    assert page.startswith("<!DOCTYPE html>") and "<title>Weekly check</title>" in page
    assert page.count("<svg") == report.n_features == 5
    assert "<script" not in page and "http" not in page
    assert "&lt;b&gt;odd name&lt;/b&gt;" in page and "<b>odd name</b>" not in page
    assert len(page) < 60_000  # binned summaries only, not 20,000 rows
    assert isinstance(report, DriftReport)
