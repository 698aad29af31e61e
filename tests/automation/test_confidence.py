"""The confidence numbers partial automation routes on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelpilot.automation import ensemble_confidence, margin_confidence, typicality_confidence
from modelpilot.spec import FeatureSpec

X = FeatureSpec(name="x", type="numeric")
Y = FeatureSpec(name="y", type="numeric")
CITY = FeatureSpec(name="city", type="categorical")
PROFILE = {
    "features": {
        "x": {"type": "numeric", "quantiles": list(range(101))},  # 0..100
        "y": {"type": "numeric", "quantiles": [float(v) for v in range(0, 1010, 10)]},
        "city": {"type": "categorical", "counts": {"paris": 10, "rome": 5}},
    }
}


def test_margin_is_top_minus_runner_up() -> None:
    assert margin_confidence([[1.0, 0.0], [0.5, 0.5], [0.2, 0.5, 0.3]]) == pytest.approx(
        [1.0, 0.0, 0.2]
    )


def test_margin_of_a_single_class_is_its_probability() -> None:
    assert margin_confidence([[0.7]]) == pytest.approx([0.7])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (50.0, 1.0),  # the median
        (0.5, 1.0),  # exactly at the 0.5 % quantile: still inside the central 99 %
        (99.5, 1.0),
        (0.25, 0.5),  # half-way through the lower tail
        (99.8, 0.4),
        (0.0, 0.0),  # the smallest value ever seen
        (100.0, 0.0),
        (-1.0, 0.0),  # outside the training values
        (1e6, 0.0),
    ],
)
def test_typicality_of_one_numeric_feature(value: float, expected: float) -> None:
    assert typicality_confidence({"x": [value]}, [X], PROFILE) == pytest.approx([expected])


def test_typicality_is_the_smallest_over_features() -> None:
    columns = {"x": [50.0, 50.0, 0.25], "y": [500.0, 998.0, 500.0]}
    assert typicality_confidence(columns, [X, Y], PROFILE) == pytest.approx([1.0, 0.4, 0.5])


def test_unseen_category_is_zero_and_missing_values_do_not_count() -> None:
    columns = {"x": [50.0, 50.0, None], "city": ["paris", "berlin", None]}
    assert typicality_confidence(columns, [X, CITY], PROFILE) == [1.0, 0.0, 1.0]


def test_features_without_a_profile_are_ignored() -> None:
    other = FeatureSpec(name="other", type="numeric")
    columns = {"x": [50.0], "other": [1e9]}
    assert typicality_confidence(columns, [X, other], PROFILE) == [1.0]
    assert typicality_confidence(columns, [X, other], {}) == [1.0]


def test_ensemble_confidence_is_high_where_members_agree() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.uniform(0, 1, 300), "b": rng.uniform(0, 1, 300)})
    target = 100 + 10 * frame["a"] + rng.normal(0, 0.1, 300)
    model = make_pipeline(StandardScaler(), RandomForestRegressor(20, random_state=0))
    model.fit(frame, target)
    inputs = frame.iloc[:5]
    confidence = ensemble_confidence(model, inputs, model.predict(inputs))
    assert len(confidence) == 5
    assert all(0.9 < c <= 1.0 for c in confidence)


def test_ensemble_confidence_refuses_a_model_without_members() -> None:
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0]})
    model = LinearRegression().fit(frame, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"no ensemble members.*use 'typicality'"):
        ensemble_confidence(model, frame, model.predict(frame))
