"""`modelpilot score`: batch scoring of a CSV/Parquet file with a registered model."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from modelpilot.cli._app import app, console, err_console, open_project, print_json
from modelpilot.errors import NotFoundError

if TYPE_CHECKING:
    from modelpilot.data import BatchInputReport

_MARKS = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[dim]skip[/]"}


def _print_checks(report: BatchInputReport) -> None:
    # On stderr: stdout stays the scored summary (or the JSON) a script reads.
    for check in report.checks:
        err_console.print(
            f"  {_MARKS[check.passed]}  {check.name}: {escape(check.message)}", soft_wrap=True
        )


@app.command()
def score(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="CSV or Parquet file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Scored file (.csv/.parquet).")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="NAME, NAME:VERSION or NAME@ALIAS (default: the project's model @production).",
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", help="Where invalid rows go (default: OUTPUT.rejects.EXT)."),
    ] = None,
    trust: Annotated[bool, typer.Option("--trust", help="Allow pickle/joblib models.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Allow a rejected version.")] = False,
    no_log: Annotated[
        bool, typer.Option("--no-log", help="Do not write to the prediction log.")
    ] = False,
    batch_rows: Annotated[
        int, typer.Option("--batch-rows", min=1, help="Rows per chunk.")
    ] = 50_000,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
    skip_checks: Annotated[
        bool,
        typer.Option(
            "--skip-checks", help="Score even if the input is stale or of an unusual size."
        ),
    ] = False,
) -> None:
    """Score INPUT with a registered model; invalid rows go to a rejects file with reasons.

    Before reading a row, INPUT's age and row count are checked (``batch_checks`` in
    modelpilot.yaml); a failed check stops the command with exit code 2 unless --skip-checks.
    """
    from modelpilot.data import BatchInputRejected, check_batch_input, file_format
    from modelpilot.serving import recent_run_rows, score_file
    from modelpilot.store import PiiScrubber, load_pii_key

    if not input_path.is_file():
        raise NotFoundError("file", str(input_path), hint="check the path")
    file_format(input_path)
    file_format(output)
    project = open_project()
    version = project.registry.resolve(model or f"{project.spec.model_name}@production")
    settings = project.spec.batch_checks
    report = check_batch_input(
        input_path,
        settings,
        history=recent_run_rows(project.engine, version.name, limit=settings.history_runs),
    )
    blocked = bool(report.failed) and settings.blocking and not skip_checks
    if report.failed or not as_json:
        err_console.print(f"input checks of {escape(str(input_path))}:", soft_wrap=True)
        _print_checks(report)
    if blocked:
        raise BatchInputRejected(report)
    if report.failed:
        err_console.print("[yellow]scoring anyway[/] (--skip-checks or batch_checks.blocking)")
    runtime = project.registry.load(version, trust=trust, force=force)
    scrubber = PiiScrubber(
        version.features,
        mode=project.spec.logging.pii,
        key=load_pii_key(project.directory, project.environ),
    )
    total = report.rows
    with Progress(
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=as_json,
    ) as bar:
        task = bar.add_task("score", total=total)
        result = score_file(
            version,
            runtime,
            input_path,
            output,
            log=None if no_log else project.prediction_log,
            scrubber=scrubber if scrubber.active else None,
            rejects_path=rejects,
            batch_rows=batch_rows,
            progress=lambda n: bar.advance(task, n),
        )
    if as_json:
        print_json(
            {
                **result.to_dict(),
                "model": version.name,
                "version": version.version,
                "input_checks": report.to_dict(),
            }
        )
        return
    console.print(
        f"scored [bold]{result.n_scored:,}[/] of {result.n_rows:,} rows with "
        f"{version.name} v{version.version} in {result.seconds:.2f}s -> {result.output}"
    )
    if result.n_rejected:
        reasons = ", ".join(f"{k}: {v:,}" for k, v in sorted(result.reasons.items()))
        console.print(
            f"[yellow]rejected {result.n_rejected:,} rows[/] ({reasons}) -> {result.rejects}"
        )
    else:
        console.print("no rows rejected")
    if not no_log:
        console.print(f"logged as batch {result.batch_id}")
