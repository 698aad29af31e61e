"""`modelpilot score`: batch scoring of a CSV/Parquet file with a registered model.

A model that a deployment runs behind ``steps`` is scored through those steps (the pipeline
the server builds), so a file's scores are what the server would answer for its rows. Rows
the model (or a step) raises on are rejected and logged as failed predictions, not fatal to
the run (see ``modelpilot.inference._batch``); the exit code stays 0.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from modelpilot.cli._root import app, err_console, open_project, progress_bar
from modelpilot.cli._score_report import max_rejected_check, print_summary
from modelpilot.errors import NotFoundError

if TYPE_CHECKING:
    from modelpilot.data import BatchInputReport
    from modelpilot.project import Project
    from modelpilot.registry import ModelVersion
    from modelpilot.spec import DeploymentSpec


class Engine(enum.StrEnum):
    local = "local"
    dask = "dask"


_MARKS = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[dim]skip[/]"}


def _print_checks(report: BatchInputReport) -> None:
    # On stderr: stdout stays the scored summary (or the JSON) a script reads.
    for check in report.checks:
        err_console.print(
            f"  {_MARKS[check.passed]}  {check.name}: {escape(check.message)}", soft_wrap=True
        )


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
    input_arg: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help=(
                "CSV or Parquet file; with --engine dask, Parquet: a file, a directory, a glob "
                "(data/*.parquet) or s3://bucket/prefix/*.parquet."
            ),
        ),
    ],
    output_arg: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help=(
                "Scored file (.csv/.parquet); with --engine dask, a directory (local or "
                "s3://) of part files."
            ),
        ),
    ],
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
    engine: Annotated[
        Engine,
        typer.Option(
            "--engine",
            help="local: one process, streamed; dask: partitions on a Dask cluster.",
            case_sensitive=False,
        ),
    ] = Engine.local,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="--engine dask: local cluster's processes.")
    ] = 2,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="--engine dask: an existing cluster's scheduler (tcp://host:port).",
            show_default=False,
        ),
    ] = None,
    partition_rows: Annotated[
        int,
        typer.Option(
            "--partition-rows",
            min=1,
            help="--engine dask: rows a partition (whole Parquet row groups) holds at least.",
        ),
    ] = 1_000_000,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            help="--engine dask: finish run RUN_ID in -o (only its missing partitions).",
            metavar="RUN_ID",
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

    --engine dask scores Parquet partitions on a Dask cluster (a local one of --workers
    processes, or --scheduler's) into a directory of part files, rejects/ and _SUCCESS (see
    docs/scale-out.md); a run that stopped is finished with --resume RUN_ID.
    """
    if engine is Engine.dask or resume is not None or scheduler is not None:
        if engine is not Engine.dask:
            raise typer.BadParameter(
                "--resume and --scheduler are options of --engine dask", param_hint="'--engine'"
            )
        if rejects is not None:
            raise typer.BadParameter(
                "--engine dask writes rejects to OUTPUT/rejects/; drop --rejects",
                param_hint="'--rejects'",
            )
        from modelpilot.cli._score_dask import score_on_cluster
        from modelpilot.inference import steps_deployment as steps_of

        project = open_project()
        version, spec = _resolve(project, model, deployment)
        spec = spec if spec is not None else steps_of(project.spec.deployment_specs, version.name)
        result = score_on_cluster(
            project,
            version,
            spec,
            input_arg,
            output_arg,
            trust=trust,
            force=force,
            log=not no_log,
            batch_rows=batch_rows,
            as_json=as_json,
            check=max_rejected_check(max_rejected) if max_rejected is not None else None,
            workers=workers,
            scheduler=scheduler,
            partition_rows=partition_rows,
            resume=resume,
        )
        print_summary(
            result,
            source=input_arg,
            version=version,
            spec=spec,
            steps=[s.name for s in spec.steps] if spec is not None else [],
            log=not no_log,
            as_json=as_json,
            extra={"engine": "dask"},
        )
        return
    input_path, output = Path(input_arg), Path(output_arg)
    from modelpilot.data import BatchInputRejected, check_batch_input, file_format
    from modelpilot.inference import load_scoring, recent_run_rows, score_file, steps_deployment

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
    spec = spec if spec is not None else steps_deployment(specs, version.name)
    runtime, pipeline, scrubber = load_scoring(project, version, spec, trust=trust, force=force)
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
            scrubber=scrubber,
            rejects_path=rejects,
            batch_rows=batch_rows,
            pipeline=pipeline,
            progress=lambda n: bar.advance(task, n),
            check=check,
        )
    print_summary(
        result,
        source=str(input_path),
        version=version,
        spec=spec,
        steps=[s.name for s in pipeline.steps] if pipeline is not None else [],
        log=not no_log,
        as_json=as_json,
        extra={"input_checks": report.to_dict()},
    )
