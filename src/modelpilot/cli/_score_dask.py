"""`modelpilot score --engine dask`: the cluster, the progress bar (partitions done) and the
run's id; the engine is ``modelpilot.inference._dask``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from modelpilot.cli._root import err_console, progress_bar

if TYPE_CHECKING:
    from modelpilot.inference import ScoringResult
    from modelpilot.project import Project
    from modelpilot.registry import ModelVersion
    from modelpilot.spec import DeploymentSpec


def score_on_cluster(
    project: Project,
    version: ModelVersion,
    spec: DeploymentSpec | None,
    input_url: str,
    output_url: str,
    *,
    trust: bool,
    force: bool,
    log: bool,
    batch_rows: int,
    as_json: bool,
    check: Callable[[ScoringResult], None] | None,
    workers: int,
    scheduler: str | None,
    partition_rows: int,
    resume: str | None,
) -> ScoringResult:
    """Score ``input_url`` into the directory ``output_url`` on a Dask cluster."""
    from modelpilot.errors import ConfigError
    from modelpilot.inference import DaskScoringJob, dask_client, new_run_id, score_on_dask
    from modelpilot.store import PredictionLog

    if log and isinstance(project.prediction_log, PredictionLog):
        url = project.engine.url
        if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
            raise ConfigError(
                "store.database_url",
                [
                    "--engine dask: the workers log to the project's database, and an "
                    f"in-memory SQLite database ({url}) is not shared between processes; use "
                    "a SQLite file or PostgreSQL, or score with --no-log or --engine local"
                ],
            )
    if "://" not in output_url:  # the workers get an absolute path (their cwd may differ)
        output_url = str(Path(output_url).resolve())
    job = DaskScoringJob(
        run_id=resume or new_run_id(),
        project_dir=str(project.directory),
        model=version.name,
        version=version.version,
        deployment=spec.name if spec is not None else None,
        output=output_url,
        trust=trust,
        force=force,
        log=log,
        batch_rows=batch_rows,
    )
    with dask_client(scheduler=scheduler, workers=workers) as client:
        if not as_json:
            where = scheduler or f"a local cluster of {workers} processes"
            err_console.print(
                f"run {job.run_id} on {escape(where)} (dashboard {client.dashboard_link})",
                soft_wrap=True,
            )
        with progress_bar("scoring partitions", quiet=as_json) as bar:
            task = bar.add_task("score", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return score_on_dask(
                client,
                job,
                version,
                input_url=input_url,
                partition_rows=partition_rows,
                resume=resume is not None,
                runs=project.engine if log else None,
                progress=progress,
                check=check,
            )
