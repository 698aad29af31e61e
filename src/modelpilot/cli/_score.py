"""`modelpilot score`: batch scoring of a CSV/Parquet file with a registered model.

A model that a deployment runs behind ``steps`` is scored through those steps (the pipeline
the server builds), so a file's scores are what the server would answer for its rows. Rows
the model (or a step) raises on are rejected and logged as failed predictions, not fatal to
the run (see ``modelpilot.inference._batch``); the exit code stays 0.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from modelpilot.cli._root import (
    app,
    console,
    err_console,
    open_project,
    print_json,
    progress_bar,
)
from modelpilot.errors import ModelpilotError, NotFoundError

if TYPE_CHECKING:
    from modelpilot.data import BatchInputReport
    from modelpilot.inference import ScoringResult
    from modelpilot.project import Project
    from modelpilot.registry import ModelVersion
    from modelpilot.spec import DeploymentSpec

_MARKS = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[dim]skip[/]"}


def _print_checks(report: BatchInputReport) -> None:
    # On stderr: stdout stays the scored summary (or the JSON) a script reads.
    for check in report.checks:
        err_console.print(
            f"  {_MARKS[check.passed]}  {check.name}: {escape(check.message)}", soft_wrap=True
        )


class ScoringFailed(ModelpilotError):
    """A run that scored no row, or rejected more rows than --max-rejected allows: exit 1,
    as a failed check (the input was readable; its rows were not fit to score)."""

    exit_code = 1
    kind = "scoring_failed"


def _reasons(result: ScoringResult) -> str:
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(result.reasons.items())) or "none"


def max_rejected_check(limit: str) -> Callable[[ScoringResult], None]:
    """The check ``--max-rejected N|P%`` makes after each chunk: it stops the run at once
    when more than N rows (or P% of the rows read so far) were rejected.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> check = max_rejected_check("10%")
    >>> check(SimpleNamespace(n_rows=100, n_rejected=10, reasons={}))  # 10% is allowed
    >>> check(SimpleNamespace(n_rows=100, n_rejected=11, reasons={"size": 11}))
    Traceback (most recent call last):
    ...
    modelpilot.cli._score.ScoringFailed: stopped after 100 rows: 11 rejected (11.0%), ...
    """
    text = limit.strip()
    try:
        if text.endswith("%"):
            share, count = float(text[:-1]) / 100, None
            if not 0 <= share <= 1:
                raise ValueError(text)
        else:
            share, count = None, int(text)
            if count < 0:
                raise ValueError(text)
    except ValueError:
        raise typer.BadParameter(
            f"expected a number of rows (100) or a percentage (5%), got {limit!r}",
            param_hint="'--max-rejected'",
        ) from None

    def check(result: ScoringResult) -> None:
        over = (
            result.n_rejected > count
            if count is not None
            else share is not None and result.n_rejected > share * result.n_rows
        )
        if over:
            raise ScoringFailed(
                f"stopped after {result.n_rows:,} rows: {result.n_rejected:,} rejected "
                f"({result.n_rejected / max(result.n_rows, 1):.1%}), more than --max-rejected "
                f"{text} allows; reasons so far: {_reasons(result)}. No output was written: fix "
                "the input (the reasons name the columns) or raise --max-rejected"
            )

    return check


def _resolve(
    project: Project, model: str | None, deployment: str | None
) -> tuple[ModelVersion, DeploymentSpec | None]:
    """The version to score, and the deployment named by --deployment (if any)."""
    if deployment is None:
        return project.registry.resolve(model or f"{project.spec.model_name}@production"), None
    specs = project.spec.deployment_specs
    spec = next((s for s in specs if s.name == deployment), None)
    if spec is None:
        known = ", ".join(s.name for s in specs)
        raise NotFoundError("deployment", deployment, hint=f"the project's deployments: {known}")
    version = project.registry.resolve(model or f"{spec.model}@{spec.alias}")
    if version.name != spec.model:
        raise typer.BadParameter(
            f"{model} names model {version.name!r}, but deployment {spec.name!r} serves "
            f"model {spec.model!r}; pass a version of {spec.model!r} "
            f"(e.g. {spec.model}:1) or drop --deployment",
            param_hint="'--model'",
        )
    return version, spec


@app.command()
def score(
    input_path: Annotated[Path, typer.Argument(metavar="INPUT", help="CSV or Parquet file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Scored file (.csv/.parquet).")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help=(
                "NAME, NAME:VERSION or NAME@ALIAS (default: the project's model @production, "
                "or with --deployment its model @ its alias). A model that a deployment runs "
                "behind steps is scored through them, as the server does."
            ),
        ),
    ] = None,
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment",
            "-d",
            help=(
                "Score as deployment NAME serves: its model @ its alias (or --model's version "
                "of that model), through its steps, rows following the project's features."
            ),
        ),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects",
            help=(
                "Where rows that are not scored go, with reasons: rows the schema rejects and "
                "rows a step or the model raises on (default: OUTPUT.rejects.EXT)."
            ),
        ),
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
    max_rejected: Annotated[
        str | None,
        typer.Option(
            "--max-rejected",
            help="Stop as soon as more than N rows (or P% of the rows read) are rejected.",
            metavar="N|P%",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Score INPUT with a registered model; invalid rows go to a rejects file with reasons.

    A deployment's steps run before its model as on the server (pick it with --deployment, or
    a --model that a deployment runs behind steps). A row on which a step or the model raises
    goes to the rejects file with the step's name (or "model") and the error, and is logged as
    a failed prediction (its prediction_id is in the rejects file); the other rows are scored.
    A run with rejected rows still exits with 0: the summary (--json: "rejected", "failed",
    "rejection_reasons", "unseen_categories") says how many and why. A run that scores no row
    exits with 1, and so does one that --max-rejected stops.

    Before reading a row, INPUT's age and row count are checked (``batch_checks`` in
    modelpilot.yaml); a failed check stops the command with exit code 2 unless --skip-checks.
    """
    from modelpilot.data import BatchInputRejected, check_batch_input, file_format
    from modelpilot.inference import PipelineBuilder, recent_run_rows, score_file, steps_deployment
    from modelpilot.store import PiiScrubber, load_pii_key

    check = max_rejected_check(max_rejected) if max_rejected is not None else None
    if not input_path.is_file():
        raise NotFoundError("file", str(input_path), hint="check the path")
    file_format(input_path)
    file_format(output)
    project = open_project()
    version, spec = _resolve(project, model, deployment)
    specs = project.spec.deployment_specs
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
    spec = spec if spec is not None else steps_deployment(specs, version.name)
    pipeline = (
        PipelineBuilder.for_project(project, trust=trust, force=force).build(spec, version)
        if spec is not None and spec.steps
        else None
    )
    scrubber = PiiScrubber(
        pipeline.features if pipeline is not None else version.features,
        mode=project.spec.logging.pii,
        key=load_pii_key(project.directory, project.environ),
    )
    total = report.rows
    with progress_bar("scoring", quiet=as_json) as bar:
        task = bar.add_task("score", total=total)
        result = score_file(
            version,
            runtime,
            input_path,
            output,
            log=None if no_log else project.prediction_log,
            runs=None if no_log else project.engine,
            scrubber=scrubber if scrubber.active else None,
            rejects_path=rejects,
            batch_rows=batch_rows,
            pipeline=pipeline,
            progress=lambda n: bar.advance(task, n),
            check=check,
        )
    if result.n_scored == 0:
        where = f" -> {result.rejects}" if result.rejects else ""
        raise ScoringFailed(
            f"no row of {input_path} was scored: {result.n_rejected:,} of {result.n_rows:,} "
            f"rejected (reasons: {_reasons(result)}){where}"
            if result.n_rows
            else f"{input_path} has no rows to score"
        )
    if as_json:
        print_json(
            {
                **result.to_dict(),
                "model": version.name,
                "version": version.version,
                "deployment": spec.name if spec is not None else None,
                "steps": [s.name for s in pipeline.steps] if pipeline is not None else [],
                "input_checks": report.to_dict(),
            }
        )
        return
    through = (
        f" behind the steps of deployment {spec.name} ({', '.join(s.name for s in pipeline.steps)})"
        if spec is not None and pipeline is not None
        else ""
    )
    console.print(
        f"scored [bold]{result.n_scored:,}[/] of {result.n_rows:,} rows with "
        f"{version.name} v{version.version}{escape(through)} in {result.seconds:.2f}s "
        f"-> {result.output}"
    )
    if result.unseen:
        unseen = ", ".join(f"{k}: {v:,}" for k, v in sorted(result.unseen.items()))
        console.print(f"[yellow]values outside the declared categories[/]: {escape(unseen)}")
    if result.n_rejected:
        console.print(
            f"[yellow]rejected {result.n_rejected:,} rows[/] ({escape(_reasons(result))}) "
            f"-> {result.rejects}"
        )
        if result.n_failed:
            logged = "" if no_log else ", logged as failed predictions"
            console.print(
                f"[yellow]{result.n_failed:,} of them failed in the model or a step[/]{logged} "
                "(prediction_id in the rejects file)"
            )
    else:
        console.print("no rows rejected")
    if not no_log:
        console.print(f"logged as batch {result.batch_id}")
