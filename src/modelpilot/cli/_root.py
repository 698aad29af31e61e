"""The root of the command line: the Typer app, global options, output helpers, and the one
place errors become messages and exit codes.

Every command module imports from here, and only the top (``cli._app``) imports the command
modules: a command module never imports the module that imports it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import click
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from modelpilot.errors import ModelpilotError

if TYPE_CHECKING:
    from rich.progress import Progress

    from modelpilot.project import Project
    from modelpilot.spec import Task as SpecTask

# Modules of the CLI import modelpilot's subpackages and heavy libraries inside the commands:
# typer imports every command module to build `modelpilot --help`, which should not pay for
# pandas, scikit-learn, SQLAlchemy and friends, nor any command for those of another.

#: What `--task` accepts. Typer reads it at start-up, and `modelpilot.spec` (pydantic) would
#: cost every command; mypy holds it equal to the project file's ``Task`` (below).
Task = Literal["regression", "binary", "multiclass"]

if TYPE_CHECKING:

    def _task_in_spec(task: Task) -> SpecTask:
        return task

    def _spec_in_task(task: SpecTask) -> Task:
        return task


app = typer.Typer(
    name="modelpilot",
    help="Take a trained model from a notebook into production and keep it healthy there.",
    no_args_is_help=True,
    # --install-completion / --show-completion: Typer's shell completion for bash, zsh, fish.
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

console = Console(highlight=False, soft_wrap=False)
err_console = Console(stderr=True, highlight=False)


class State:
    def __init__(self) -> None:
        self.project_dir: Path | None = None
        # The projects a command opened: their database connections close when it ends (a
        # command run in-process, as in a notebook or a test, must not leave them to the
        # garbage collector, which warns for PostgreSQL's).
        self.opened: list[Project] = []


state = State()


def _print_version(value: bool) -> None:
    if value:
        from modelpilot import __version__

        console.print(f"modelpilot {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    project: Annotated[
        Path | None,
        typer.Option(
            "--project",
            "-p",
            help="Project directory (default: the nearest one "
            "holding modelpilot.yaml, or $MODELPILOT_PROJECT).",
            show_default=False,
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print modelpilot's version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    del version  # handled by its callback
    state.project_dir = project


def open_project() -> Project:
    from modelpilot.project import Project

    project = Project.open(state.project_dir)
    state.opened.append(project)
    return project


def print_json(value: Any) -> None:
    """Machine output: plain JSON on stdout (NaN and infinity become null), nothing else."""
    sys.stdout.write(json.dumps(_clean(value), indent=2, default=str) + "\n")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return _clean(value.item())
    return value


#: Columns of short words (a state, a status): never broken, so "firing" is never "firi…".
_WORD_COLUMNS = frozenset(
    {"state", "status", "severity", "degree", "role", "source", "version", "agreed", "gate"}
)


def fitted_table(*headings: str, title: str | None = None) -> Table:
    """A table that fits an 80-column terminal: long cells wrap (folding a word only
    when it cannot fit), columns of short words never break.

    Examples
    --------
    >>> table = fitted_table("state", "rule", "labels")
    >>> table.add_row("firing", "latency_p99", "feature=" + "x" * 120)
    >>> import io
    >>> out = Console(width=80, record=True, file=io.StringIO())
    >>> out.print(table)
    >>> text = out.export_text()
    >>> "firing" in text and max(map(len, text.splitlines())) <= 80 and "…" not in text
    True
    """
    table = Table(title=title, title_justify="left")
    for heading in headings:
        if heading in _WORD_COLUMNS:
            table.add_column(heading, no_wrap=True)
        else:
            table.add_column(heading, overflow="fold")
    return table


def shows_progress(*, quiet: bool, terminal: bool, environ: Mapping[str, str]) -> bool:
    """Whether a long command shows a progress bar: to a person at a terminal, never in
    machine output (``--json``), a pipe, a file or CI.

    Examples
    --------
    >>> shows_progress(quiet=False, terminal=True, environ={})
    True
    >>> shows_progress(quiet=False, terminal=True, environ={"CI": "true"})
    False
    """
    return not quiet and terminal and not environ.get("CI")


def progress_bar(label: str, *, quiet: bool = False) -> Progress:
    """A rich progress bar for a long command, shown only to a person: not under ``--json``
    (``quiet``), not when stdout is a pipe or a file, not under CI (``$CI``)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    shown = shows_progress(quiet=quiet, terminal=console.is_terminal, environ=os.environ)
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not shown,
    )


@contextlib.contextmanager
def working(label: str, *, quiet: bool = False) -> Iterator[None]:
    """A pulsing bar while one long step runs whose progress cannot be counted (a DuckDB
    query, a drift comparison); shown as :func:`progress_bar` is."""
    with progress_bar(label, quiet=quiet) as bar:
        bar.add_task(label, total=None)
        yield


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def run_app(argv: list[str] | None = None) -> int:
    """Run the commands registered so far; returns the exit code (0 ok, 1 a check failed, 2
    bad input or usage). ``cli._app.main`` registers every command first."""
    try:
        # Without standalone mode, typer returns a command's exit code instead of exiting.
        result = app(args=argv, prog_name="modelpilot", standalone_mode=False)
    except ModelpilotError as exc:
        err_console.print(Text.assemble(("error: ", "bold red"), exc.message), soft_wrap=True)
        return exc.exit_code
    except (click.exceptions.Exit, typer.Exit) as exc:
        return int(exc.exit_code)
    except (click.exceptions.Abort, typer.Abort):
        err_console.print("aborted")
        return 130
    except (click.ClickException, typer.TyperException) as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show(file=sys.stderr)
        else:
            err_console.print(Text(f"error: {exc}"))
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    finally:
        while state.opened:
            engine = state.opened.pop().engine
            # PostgreSQL's connections are closed (the garbage collector would warn); SQLite's
            # are left to the process's end: closing the last one checkpoints the WAL through
            # its shared-memory file, which kills the process (SIGBUS) when the disk under it
            # has failed, after `serve` has dead-lettered what it could not commit.
            if engine.dialect.name != "sqlite":
                engine.dispose()
    return result if isinstance(result, int) else 0
