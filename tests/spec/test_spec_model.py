"""The project file's data model: what a feature, a key metric and a whole project may say."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from modelpilot.spec import METRICS, FeatureSpec, KeyMetric, ProjectSpec


def _project(**overrides: object) -> ProjectSpec:
    data: dict[str, object] = {"project": "houses", "task": "regression", "target": "price"}
    data.update(overrides)
    return ProjectSpec.model_validate(data)


# ---- features -------------------------------------------------------------------------


def test_feature_range_is_only_for_numeric_features() -> None:
    with pytest.raises(ValidationError, match="range is only allowed on numeric features"):
        FeatureSpec(name="city", type="categorical", range=(0, 1))


@pytest.mark.parametrize(
    ("low", "high"), [(5.0, 1.0), (0.0, math.inf), (-math.inf, 0.0), (math.nan, 1.0)]
)
def test_feature_range_must_be_finite_and_ordered(low: float, high: float) -> None:
    with pytest.raises(ValidationError, match=r"range must be \[low, high\] with low <= high"):
        FeatureSpec(name="size", type="numeric", range=(low, high))


def test_feature_range_may_be_a_single_point() -> None:
    assert FeatureSpec(name="size", type="numeric", range=(3, 3)).range == (3.0, 3.0)


def test_feature_categories_are_only_for_categorical_features() -> None:
    with pytest.raises(ValidationError, match="categories are only allowed on categorical"):
        FeatureSpec(name="size", type="numeric", categories=["a"])


def test_feature_rejects_unknown_keys_and_types() -> None:
    with pytest.raises(ValidationError, match=r"colour\n  Extra inputs are not permitted"):
        FeatureSpec.model_validate({"name": "x", "type": "numeric", "colour": "red"})
    with pytest.raises(ValidationError, match="type"):
        FeatureSpec.model_validate({"name": "x", "type": "integer"})
    with pytest.raises(ValidationError, match="name"):
        FeatureSpec.model_validate({"name": "", "type": "numeric"})


def test_feature_is_immutable() -> None:
    feature = FeatureSpec(name="size", type="numeric")
    with pytest.raises(ValidationError, match="frozen"):
        feature.nullable = True  # type: ignore[misc]


# ---- key metrics ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name", "op", "target"),
    [
        ("mae <= 25000", "mae", "<=", 25000.0),
        ("r2>=0.8", "r2", ">=", 0.8),
        ("  accuracy > 0.9 ", "accuracy", ">", 0.9),
        ("log_loss < 1e-1", "log_loss", "<", 0.1),
    ],
)
def test_key_metric_shorthand(text: str, name: str, op: str, target: float) -> None:
    metric = KeyMetric.model_validate(text)
    assert (metric.name, metric.op, metric.target) == (name, op, target)


def test_key_metric_mapping_and_shorthand_are_the_same() -> None:
    mapping = KeyMetric.model_validate({"name": "mae", "op": "<=", "target": 25000})
    assert mapping == KeyMetric.model_validate("mae <= 25000")
    assert str(mapping) == "mae <= 25000"


@pytest.mark.parametrize("text", ["mae == 3", "mae <= ", "mae 3", "<= 3"])
def test_key_metric_malformed_shorthand(text: str) -> None:
    with pytest.raises(ValidationError, match="expected 'metric <= target'"):
        KeyMetric.model_validate(text)


def test_key_metric_unknown_metric_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="unknown metric 'mea'; known metrics: mae, rmse"):
        KeyMetric.model_validate("mea <= 3")


@pytest.mark.parametrize(
    ("op", "value", "passes"),
    [
        ("<=", 10.0, True),
        ("<=", 10.5, False),
        ("<", 10.0, False),
        ("<", 9.9, True),
        (">=", 10.0, True),
        (">=", 9.9, False),
        (">", 10.0, False),
        (">", 10.1, True),
    ],
)
def test_key_metric_passes(op: str, value: float, passes: bool) -> None:
    metric = KeyMetric.model_validate({"name": "mae", "op": op, "target": 10})
    assert metric.passes(value) is passes


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_key_metric_never_passes_a_non_finite_value(value: float) -> None:
    assert not KeyMetric.model_validate("mae <= 10").passes(value)
    assert not KeyMetric.model_validate("r2 >= 0.1").passes(value)


def test_metric_directions() -> None:
    lower = {name for name, better in METRICS.items() if better == "lower"}
    assert lower == {"mae", "rmse", "mse", "mape", "log_loss"}


# ---- the whole project ----------------------------------------------------------------


def test_project_defaults() -> None:
    spec = _project()
    assert spec.model_name == "houses"
    assert spec.features == [] and spec.key_metrics == []
    assert spec.store.database_url == "sqlite:///.modelpilot/modelpilot.db"
    assert spec.serving.host == "127.0.0.1"
    assert spec.logging.pii == "hash"


def test_project_model_name_overrides_the_project_name() -> None:
    assert _project(model="house-prices").model_name == "house-prices"


def test_project_feature_lookup() -> None:
    spec = _project(
        features=[{"name": "size", "type": "numeric"}, {"name": "city", "type": "text"}]
    )
    assert spec.feature_names == ["size", "city"]
    assert spec.feature("city").type == "text"
    with pytest.raises(KeyError):
        spec.feature("price")


def test_project_feature_names_must_be_unique() -> None:
    features = [{"name": "size", "type": "numeric"}, {"name": "size", "type": "categorical"}]
    with pytest.raises(ValidationError, match="feature names must be unique; repeated: size"):
        _project(features=features)


def test_project_target_must_not_be_a_feature() -> None:
    with pytest.raises(ValidationError, match="the target 'price' must not also be a feature"):
        _project(features=[{"name": "price", "type": "numeric"}])


@pytest.mark.parametrize(
    ("task", "metric"), [("regression", "accuracy >= 0.9"), ("binary", "mae <= 3")]
)
def test_project_metric_must_fit_the_task(task: str, metric: str) -> None:
    with pytest.raises(ValidationError, match=f"does not fit task '{task}'"):
        _project(task=task, key_metrics=[metric])


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("service_objectives", "error_rate", 1.5),
        ("service_objectives", "latency_p99_ms", 0),
        ("serving", "port", 70000),
        ("logging", "pii", "keep"),
        ("data_checks", "blocking", ["spelling"]),
    ],
)
def test_project_sections_are_bounded(section: str, key: str, value: object) -> None:
    with pytest.raises(ValidationError, match=key):
        _project(**{section: {key: value}})
