"""`modelpilot data check`: is the training data fit to learn from?"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.text import Text

from modelpilot.cli._root import (
    Task,
    app,
    console,
    err_console,
    fitted_table,
    open_project,
    print_json,
    state,
    working,
)
from modelpilot.errors import ConfigError, ModelpilotError

if TYPE_CHECKING:
    from modelpilot.data import CheckResult, DataCheckReport
    from modelpilot.project import Project
    from modelpilot.spec import FeatureSpec

data_app = typer.Typer(
    help="Check training data before a model learns from it.", no_args_is_help=True
)
app.add_typer(data_app, name="data")

_STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def _project() -> Project | None:
    """The project, if there is one: --project, $MODELPILOT_PROJECT, or a modelpilot.yaml in
    the working directory or above. Without one, data checks still run on inferred defaults."""
    from modelpilot.spec import find_project_dir

    if state.project_dir is None and not os.environ.get("MODELPILOT_PROJECT"):
        try:
            find_project_dir()
        except ConfigError:
            return None
    return open_project()


@data_app.command("check")
def check(
    file: Annotated[
        Path, typer.Argument(help="The training data: a CSV or Parquet file.", show_default=False)
    ],
    target: Annotated[
        str | None,
        typer.Option(
            "--target", help="The label column (default: the project's target).", show_default=False
        ),
    ] = None,
    task: Annotated[
        Task | None,
        typer.Option(
            "--task",
            help="regression, binary or multiclass (default: the project's task, or "
            "regression for a numeric target with more than 20 values, else classification).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    write_schema: Annotated[
        bool,
        typer.Option(
            "--write-schema", help="Write the inferred feature schema into modelpilot.yaml."
        ),
    ] = False,
) -> None:
    """Check that training data is fit to learn from.

    Checks the schema, gaps, constant columns, duplicates, label conflicts, classes and ranges.

    Exit code: 0 passed (warnings allowed), 1 a blocking check failed, 2 bad input.
    """
    from modelpilot.data import check_data  # DuckDB and pandas: only when data is checked
    from modelpilot.spec import DataChecks, write_features

    project = _project()
    if write_schema and project is None:
        raise ModelpilotError(
            f"--write-schema writes into modelpilot.yaml, but there is none in {Path.cwd()} or "
            "above; run `modelpilot init` first, or pass --project DIR"
        )
    spec = project.spec if project is not None else None
    target = target or (spec.target if spec is not None else None)
    if target is None:
        raise ModelpilotError(
            "--target is required without a project file; name the label column, for example "
            f"`modelpilot data check {file} --target price`"
        )
    with working(f"checking {file.name}", quiet=as_json):
        report = check_data(
            file,
            target=target,
            task=task or (spec.task if spec is not None else None),
            features=[f for f in spec.features if f.name != target] if spec is not None else None,
            thresholds=spec.data_checks if spec is not None else DataChecks(),
        )
    if write_schema and project is not None:
        features = _merge(project.spec.features, report.schema)
        write_features(project.file, features)
        err_console.print(
            f"wrote {len(features)} features to {escape(str(project.file))}; ranges, pii flags "
            "and descriptions already declared were kept",
            highlight=False,
        )
    if as_json:
        print_json(report.to_dict())
    else:
        _print_report(report)
    if not report.passed:
        raise typer.Exit(1)


def _merge(declared: Sequence[FeatureSpec], inferred: Sequence[FeatureSpec]) -> list[FeatureSpec]:
    """The inferred schema, keeping what only a person can say: ranges, pii, descriptions."""
    before = {feature.name: feature for feature in declared}
    merged = []
    for feature in inferred:
        old = before.get(feature.name)
        if old is not None:
            keep: dict[str, Any] = {"pii": old.pii, "description": old.description}
            if feature.type == "numeric" and old.range is not None:
                keep["range"] = old.range
            feature = feature.model_copy(update=keep)
        merged.append(feature)
    return merged


def _print_report(report: DataCheckReport) -> None:
    console.print(
        f"[bold]{escape(report.source)}[/]: {report.n_rows:,} rows, {report.n_columns} columns; "
        f"target {escape(report.target)} ({report.task})"
    )
    table = fitted_table("check", "status", "summary")
    for result in report.checks:
        status = Text(result.status, style=_STYLES[result.status])
        table.add_row(result.name, status, Text(result.summary))
    console.print(table)
    for result in report.checks:
        lines = _detail_lines(result) if result.status != "pass" else []
        if lines:
            console.print(f"[{_STYLES[result.status]}]{result.name}[/]:")
            for line in lines:
                console.print(Text("  " + line))
    failed = [r.name for r in report.checks if r.status == "fail"]
    warned = sum(r.status == "warn" for r in report.checks)
    warnings = f" ({warned} warning{'s' if warned != 1 else ''})" if warned else ""
    if failed:
        console.print(
            f"[bold red]FAILED[/]: {len(failed)} blocking check{'s' if len(failed) != 1 else ''} "
            f"failed ({', '.join(failed)}){warnings}; fix the data, or change data_checks in "
            "modelpilot.yaml"
        )
    else:
        console.print(f"[green]passed[/]: the data is fit to train on{warnings}")


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{value:.0f}"
    return str(value)


def _values(features: dict[str, Any]) -> str:
    return ", ".join(f"{name}={_show(value)}" for name, value in features.items())


def _detail_lines(result: CheckResult) -> list[str]:
    """The numbers behind a failed or warning check, a line each."""
    details = result.details
    if result.name == "duplicate_rows":
        return [
            f"{e['count']}x  {_values(e['features'])} -> {_show(e['label'])}"
            for e in details.get("examples", [])
        ]
    if result.name == "label_consistency":
        return [
            f"{_values(e['features'])} -> "
            + ", ".join(f"{_show(label['label'])} ({label['count']}x)" for label in e["labels"])
            for e in details.get("examples", [])
        ]
    if result.name == "class_balance":
        return [f"{label}: {count:,}" for label, count in details.get("classes", {}).items()]
    if result.name == "missing_values":
        return [
            f"{name}: {c['missing']:,} missing ({c['rate']:.1%}"
            f"{', nullable' if c['nullable'] else ''})"
            for name, c in details.get("columns", {}).items()
        ]
    if result.name == "out_of_range":
        return [
            f"{name}: {c['count']:,} outside [{c['range'][0]:g}, {c['range'][1]:g}] (values "
            f"from {_show(c['min'])} to {_show(c['max'])})"
            for name, c in details.get("columns", {}).items()
            if c["count"]
        ]
    if result.name == "unseen_categories":
        return [
            f"{name}: {c['count']:,} values, e.g. {', '.join(map(repr, c['examples']))}"
            for name, c in details.get("columns", {}).items()
            if c["count"]
        ]
    return []
