"""`modelpilot init`: write a commented project file, with key metrics that fit the task."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, get_args

import click
import typer
from rich.markup import escape

from modelpilot.cli._root import Task, app, console, err_console, state, working
from modelpilot.errors import ModelpilotError


@app.command()
def init(
    name: Annotated[
        str | None, typer.Option("--name", help="Project name (default: the directory's name).")
    ] = None,
    task: Annotated[
        Task | None,
        typer.Option(
            "--task",
            help="regression, binary or multiclass (default: inferred from --data, else asked "
            "at a terminal, else regression).",
            show_default=False,
        ),
    ] = None,
    target: Annotated[str, typer.Option("--target", help="The label column.")] = "target",
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Training data (CSV/Parquet): the task, the feature schema and key-metric "
            "targets on the labels' scale are inferred from it.",
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing project file.")
    ] = False,
) -> None:
    """Write a commented modelpilot.yaml in the project directory (default: here)."""
    from modelpilot.spec import PROJECT_FILE, FeatureSpec, propose_key_metrics, render_project

    directory = (state.project_dir or Path.cwd()).resolve()
    file = directory / PROJECT_FILE
    if file.exists() and not force:
        raise ModelpilotError(f"{file} already exists; pass --force to overwrite it")
    features: list[FeatureSpec] = []
    labels: list[object] | None = None
    if data is not None:
        from modelpilot.data import check_data, read_table

        with working(f"reading {data.name}"):
            report = check_data(data, target=target, task=task)
            column = read_table(data, columns=[target])[target]
        task = report.task
        features = list(report.schema)
        labels = column.dropna().tolist()
        err_console.print(
            f"{escape(str(data))}: {report.n_rows:,} rows; target {escape(target)} looks like "
            f"a [bold]{task}[/] task; {len(features)} features inferred",
            highlight=False,
        )
    elif task is None:
        task = _ask_task()
    metrics = propose_key_metrics(task, labels=labels)
    directory.mkdir(parents=True, exist_ok=True)
    text = render_project(
        project=name or directory.name,
        task=task,
        target=target,
        features=features,
        key_metrics=metrics,
    )
    file.write_text(text, encoding="utf-8")
    console.print(
        f"wrote [bold]{escape(str(file))}[/] ({task}; key metrics {escape(', '.join(metrics))}: "
        "edit them to your targets)",
        highlight=False,
    )
    if not features:
        console.print(
            f"next: `modelpilot data check DATA --target {escape(target)} --write-schema` fills "
            "in the feature schema",
            highlight=False,
        )


def _ask_task() -> Task:
    """The task, asked at a terminal; regression where nobody can answer."""
    choices = list(get_args(Task))
    if not sys.stdin.isatty():
        return "regression"
    answer = typer.prompt(
        "task (regression, binary, multiclass)",
        default="regression",
        type=click.Choice(choices),
        show_choices=False,
    )
    task: Task = answer
    return task
