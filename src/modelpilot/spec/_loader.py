"""Read a project file and turn pydantic's errors into messages a person can act on.

PyYAML's composed node tree keeps line numbers, so every problem is reported with its place in
the file (``modelpilot.yaml:14: key_metrics[1].target: expected a number, got 'high'``) and all
problems are reported at once. pydantic alone would give ``key_metrics.1.target`` and no line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from modelpilot.errors import ConfigError
from modelpilot.spec._model import ProjectSpec

PROJECT_FILE = "modelpilot.yaml"

_EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list of two numbers [low, high]",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "finite_number": "a finite number",
}


def format_location(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic location as a path into the file.

    Examples
    --------
    >>> format_location(("key_metrics", 1, "target"))
    'key_metrics[1].target'
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    line = None if node is None else node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = None
            for key, value in node.value:
                if key.value == part:
                    child = value
                    break
            if child is None:
                return line
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def _describe(error: Mapping[str, Any]) -> str:
    kind = error["type"]
    got = error.get("input")
    if kind == "missing":
        return "is required but missing"
    if kind == "extra_forbidden":
        return f"unknown key (value {got!r}); check its spelling against `modelpilot init`'s file"
    if kind == "literal_error":
        return f"expected one of {error['ctx']['expected']}, got {got!r}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {got!r}"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{error['msg']}, got {got!r}"


def _problems(error: ValidationError, root: yaml.Node | None, source: str) -> list[str]:
    problems = []
    for item in error.errors():
        loc = tuple(
            p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        line = _line_of(root, loc)
        where = f"{source}:{line}: " if line else ""
        problems.append(f"{where}{format_location(loc)}: {_describe(item)}")
    return problems


def parse_project(text: str, *, source: str = PROJECT_FILE) -> ProjectSpec:
    """Validate the text of a project file.

    Examples
    --------
    >>> parse_project("project: p\\ntask: binary\\ntarget: y\\n").task
    'binary'
    >>> parse_project("project: p\\ntask: binary\\ntarget: y\\nkey_metrics:\\n"
    ...               "  - {name: accuracy, op: '>=', target: high}\\n")
    Traceback (most recent call last):
    ...
    modelpilot.errors.ConfigError: modelpilot.yaml has 1 problem:
      - modelpilot.yaml:5: key_metrics[0].target: expected a number, got 'high'
    Fix the file and run the command again (`modelpilot init` writes a commented example).
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(
            source, [f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})"]
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            source, [f"{source}: expected a mapping of settings, got {type(data).__name__}"]
        )
    try:
        return ProjectSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _problems(exc, root, source)) from None


def find_project_dir(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest directory at or above ``start`` that holds a project file."""
    here = Path(start or os.getcwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / PROJECT_FILE).is_file():
            return candidate
    raise ConfigError(
        str(here / PROJECT_FILE),
        [
            f"no {PROJECT_FILE} in {here} or above; run `modelpilot init` to create one, "
            "or pass --project DIR"
        ],
    )


def load_project(path: str | os.PathLike[str]) -> ProjectSpec:
    """Load and validate a project file (or the project file in a directory)."""
    file = Path(path)
    if file.is_dir():
        file = file / PROJECT_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            str(file), [f"{file}: no such file; run `modelpilot init` to create one"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(file), [f"{file}: cannot be read ({exc})"]) from None
    return parse_project(text, source=file.name if file.name else str(file))
