"""The project file `modelpilot init` writes, and rewriting its feature schema in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpilot.errors import ConfigError
from modelpilot.spec import FeatureSpec, load_project, parse_project, render_project, write_features

FEATURES = [
    FeatureSpec(name="size", type="numeric", range=(10, 500), description="square metres"),
    FeatureSpec(name="city", type="categorical", categories=["oslo", "bergen"], nullable=True),
    FeatureSpec(name="garage", type="boolean"),
    FeatureSpec(name="notes", type="text", pii=True),
]


@pytest.mark.parametrize(
    ("task", "metrics"),
    [
        ("regression", ["mae <= 25000", "r2 >= 0.8"]),
        ("binary", ["accuracy >= 0.9", "roc_auc >= 0.85"]),
        ("multiclass", ["accuracy >= 0.9", "f1_macro >= 0.85"]),
    ],
)
def test_rendered_file_loads_with_task_defaults(task: str, metrics: list[str]) -> None:
    spec = parse_project(render_project(project="p", task=task, target="y"))  # type: ignore[arg-type]
    assert (spec.project, spec.task, spec.target) == ("p", task, "y")
    assert [str(m) for m in spec.key_metrics] == metrics


def test_rendered_file_is_commented() -> None:
    text = render_project(project="p", task="binary", target="y")
    assert "# Key metrics and the targets a model version must reach" in text
    assert "--target y --write-schema" in text


def test_rendered_features_round_trip() -> None:
    text = render_project(project="p", task="regression", target="price", features=FEATURES)
    assert parse_project(text).features == FEATURES


def test_explicit_key_metrics_replace_the_defaults() -> None:
    custom = render_project(project="p", task="regression", target="y", key_metrics=["rmse < 3"])
    assert [str(m) for m in parse_project(custom).key_metrics] == ["rmse < 3"]
    none = render_project(project="p", task="regression", target="y", key_metrics=[])
    assert parse_project(none).key_metrics == []


@pytest.mark.parametrize("name", ["2024", "on", "null", "a: b", "#hash", "it's", "- dash"])
def test_names_yaml_would_misread_stay_strings(name: str) -> None:
    features = [FeatureSpec(name=f"{name} x", type="numeric")]
    spec = parse_project(
        render_project(project=name, task="regression", target=name, features=features)
    )
    assert (spec.project, spec.target, spec.feature_names) == (name, name, [f"{name} x"])


def test_render_refuses_what_it_could_not_read_back() -> None:
    with pytest.raises(ConfigError, match="does not fit task 'regression'"):
        render_project(project="p", task="regression", target="y", key_metrics=["accuracy > 1"])


# ---- write_features -------------------------------------------------------------------


@pytest.fixture
def project_file(tmp_path: Path) -> Path:
    path = tmp_path / "modelpilot.yaml"
    path.write_text(render_project(project="p", task="regression", target="price"), "utf-8")
    return path


def test_write_features_replaces_only_the_block(project_file: Path) -> None:
    before = project_file.read_text("utf-8")
    write_features(project_file, FEATURES)
    after = project_file.read_text("utf-8")
    spec = load_project(project_file)
    assert spec.features == FEATURES
    assert [str(m) for m in spec.key_metrics] == ["mae <= 25000", "r2 >= 0.8"]
    # Every comment of the original file is still there, in the same order.
    comments = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert [line for line in after.splitlines() if line.lstrip().startswith("#")] == comments


def test_write_features_again_replaces_rather_than_appends(project_file: Path) -> None:
    write_features(project_file, FEATURES)
    once = project_file.read_text("utf-8")
    write_features(project_file, FEATURES[:1])
    write_features(project_file, FEATURES)
    assert project_file.read_text("utf-8") == once
    assert not list(project_file.parent.glob("*.tmp"))


def test_write_features_appends_a_missing_block(tmp_path: Path) -> None:
    path = tmp_path / "modelpilot.yaml"
    path.write_text("# mine\nproject: p\ntask: binary\ntarget: y\n", "utf-8")
    write_features(path, FEATURES[:2])
    assert load_project(path).features == FEATURES[:2]
    assert path.read_text("utf-8").startswith("# mine\nproject: p\n")


def test_write_features_keeps_the_file_when_the_result_is_invalid(project_file: Path) -> None:
    before = project_file.read_text("utf-8")
    with pytest.raises(ConfigError, match="the target 'price' must not also be a feature"):
        write_features(project_file, [FeatureSpec(name="price", type="numeric")])
    assert project_file.read_text("utf-8") == before
