"""Reading a project file: every problem at once, each with its line in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpilot.errors import ConfigError
from modelpilot.spec import PROJECT_FILE, find_project_dir, load_project, parse_project

VALID = """\
project: houses
task: regression
target: price
features:
  - {name: size, type: numeric, range: [10, 500]}
key_metrics:
  - mae <= 25000
"""

# Five mistakes on five lines; line numbers are those of the offending values.
BROKEN = """\
project: houses
task: regression
target: price
features:
  - {name: size, type: numberish}
  - name: rooms
    type: numeric
    nullable: maybe
key_metrics:
  - mae <= 25000
  - {name: r2, op: '>=', target: high}
serving:
  port: lots
  colour: blue
"""


def test_valid_file() -> None:
    spec = parse_project(VALID)
    assert spec.project == "houses"
    assert spec.feature("size").range == (10.0, 500.0)
    assert str(spec.key_metrics[0]) == "mae <= 25000"


def test_every_problem_is_reported_with_its_line() -> None:
    with pytest.raises(ConfigError) as info:
        parse_project(BROKEN)
    assert info.value.problems == [
        "modelpilot.yaml:5: features[0].type: expected one of 'numeric', 'categorical', "
        "'boolean' or 'text', got 'numberish'",
        "modelpilot.yaml:8: features[1].nullable: expected true or false, got 'maybe'",
        "modelpilot.yaml:11: key_metrics[1].target: expected a number, got 'high'",
        "modelpilot.yaml:13: serving.port: expected an integer, got 'lots'",
        "modelpilot.yaml:14: serving.colour: unknown key (value 'blue'); check its spelling "
        "against `modelpilot init`'s file",
    ]
    assert info.value.exit_code == 2
    assert str(info.value).startswith("modelpilot.yaml has 5 problems:\n")
    assert "`modelpilot init` writes a commented example" in str(info.value)


def test_missing_required_key() -> None:
    with pytest.raises(ConfigError, match=r"target: is required but missing"):
        parse_project("project: p\ntask: binary\n")


def test_shorthand_metric_error_points_at_its_list_item() -> None:
    text = "project: p\ntask: binary\ntarget: y\nkey_metrics:\n  - accuracy >= 0.9\n  - auc > 1\n"
    with pytest.raises(ConfigError, match=r"modelpilot\.yaml:6: key_metrics\[1\]\.name: unknown"):
        parse_project(text)


def test_invalid_yaml_names_its_line() -> None:
    with pytest.raises(ConfigError, match=r"modelpilot\.yaml:3: not valid YAML"):
        parse_project("project: p\ntask: [regression\ntarget: y\n", source="modelpilot.yaml")


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("", "NoneType")])
def test_a_file_that_is_not_a_mapping(text: str, kind: str) -> None:
    with pytest.raises(ConfigError, match=f"expected a mapping of settings, got {kind}"):
        parse_project(text)


def test_source_names_the_file_in_messages() -> None:
    with pytest.raises(ConfigError, match=r"other\.yaml:2: task: expected one of"):
        parse_project("project: p\ntask: ranking\ntarget: y\n", source="other.yaml")


def test_load_project_from_a_file_or_its_directory(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_text(VALID, encoding="utf-8")
    assert load_project(tmp_path) == load_project(tmp_path / PROJECT_FILE)


def test_load_project_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such file; run `modelpilot init` to create one"):
        load_project(tmp_path / PROJECT_FILE)


def test_load_project_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_bytes(b"project: \xff\xfe\x00 broken")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_project(tmp_path)


def test_load_project_reports_lines_of_the_real_file(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_text(BROKEN, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"modelpilot\.yaml:11: key_metrics\[1\]\.target"):
        load_project(tmp_path)


def test_find_project_dir_walks_up(tmp_path: Path) -> None:
    (tmp_path / PROJECT_FILE).write_text(VALID, encoding="utf-8")
    nested = tmp_path / "notebooks" / "deep"
    nested.mkdir(parents=True)
    assert find_project_dir(nested) == tmp_path.resolve()
    assert find_project_dir(tmp_path) == tmp_path.resolve()


def test_find_project_dir_without_a_project(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"no modelpilot\.yaml in .* or above; run `modelpilot init`"
    ):
        find_project_dir(tmp_path)
