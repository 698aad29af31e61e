"""`modelpilot init`: write a commented project file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelpilot.cli._root import Task, app, console, state
from modelpilot.errors import ModelpilotError


@app.command()
def init(
    name: Annotated[
        str | None, typer.Option("--name", help="Project name (default: the directory's name).")
    ] = None,
    task: Annotated[
        Task, typer.Option("--task", help="regression, binary or multiclass.")
    ] = "regression",
    target: Annotated[str, typer.Option("--target", help="The label column.")] = "target",
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing project file.")
    ] = False,
) -> None:
    """Write a commented modelpilot.yaml in the project directory (default: here)."""
    from modelpilot.spec import PROJECT_FILE, render_project

    directory = (state.project_dir or Path.cwd()).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    file = directory / PROJECT_FILE
    if file.exists() and not force:
        raise ModelpilotError(f"{file} already exists; pass --force to overwrite it")
    text = render_project(project=name or directory.name, task=task, target=target)
    file.write_text(text, encoding="utf-8")
    console.print(
        f"wrote [bold]{file}[/]; next: `modelpilot data check DATA --target {target} "
        "--write-schema` fills in the feature schema"
    )
