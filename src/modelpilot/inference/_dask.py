"""Batch scoring on a Dask cluster (``modelpilot score --engine dask``): the client's side.

The client plans the partitions (row groups of the input's Parquet files), writes ``_RUN.json``
in the output directory, submits one task per partition not yet committed, counts them as
they finish, and writes ``_SUCCESS`` (the manifest: parts, rows, rejected, run id) last. The
tasks (``_dask_part.py``) score, log and commit their partition themselves.

Plain ``distributed`` futures, one per partition, and not ``dask.dataframe``: a partition's
task writes its own part file and log rows, and the client needs each one's counts and its
completion (progress, ``--max-rejected``, resume), which futures give directly. A worker that
dies takes its tasks with it; the scheduler runs them again on another worker (up to
``distributed.scheduler.allowed-failures`` times), and the partition's deterministic ids keep
its predictions from being logged twice. A client that dies leaves the committed partitions
behind; :func:`score_on_dask` with ``resume=RUN_ID`` scores only the others.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Engine

from modelpilot.errors import ConfigError, DataError, ModelpilotError
from modelpilot.inference._batch import ScoringResult, finish_run, start_run
from modelpilot.inference._dask_files import Part, RunFiles, part_dicts, plan_parts
from modelpilot.inference._dask_part import DaskScoringJob, counts_of, score_part
from modelpilot.registry import ModelVersion
from modelpilot.store import new_ids
from modelpilot.types import Clock

__all__ = ["DaskScoringJob", "dask_client", "new_run_id", "score_on_dask"]

RUN_FILE = "_RUN.json"
SUCCESS_FILE = "_SUCCESS"


class MissingExtra(ModelpilotError):
    """An optional dependency that is not installed (exit code 2)."""

    kind = "missing_extra"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise MissingExtra(
            "--engine dask needs the dask and distributed packages; install them with "
            "pip install 'modelpilot[dask]' (or score with --engine local)"
        ) from None
    return distributed


@contextlib.contextmanager
def dask_client(*, scheduler: str | None = None, workers: int = 2) -> Iterator[Any]:
    """A client of the cluster at ``scheduler``, or of a local cluster of ``workers`` processes
    with one thread each (models release the GIL unevenly: processes scale, threads may not),
    its dashboard on a free port of 127.0.0.1 (``client.dashboard_link``)."""
    distributed = _distributed()
    if scheduler is not None:
        with distributed.Client(scheduler) as client:
            yield client
        return
    with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def new_run_id(*, clock: Clock = time.time) -> str:
    """A run's id, as the single-process engine makes it (``batch-`` and 20 hex digits: a
    millisecond timestamp and random bits).

    Examples
    --------
    >>> run_id = new_run_id(clock=lambda: 1_700_000_000.0)
    >>> run_id[:18], len(run_id)
    ('batch-018bcfe56800', 26)
    """
    return f"batch-{new_ids(1, clock=clock)[0][:20]}"


def _run_record(job: DaskScoringJob, input_url: str, parts: list[Part]) -> dict[str, Any]:
    return {
        "run_id": job.run_id,
        "input": input_url,
        "model": job.model,
        "version": job.version,
        "deployment": job.deployment,
        "parts": part_dicts(parts),
    }


def resume_parts(job: DaskScoringJob) -> tuple[str, list[Part]]:
    """The input and partitions of run ``job.run_id`` (its ``_RUN.json``), to finish it."""
    files = RunFiles(job.output)
    if not files.exists(RUN_FILE):
        raise DataError(
            f"{job.output}: no run to resume ({RUN_FILE} is missing); give the -o of the run "
            f"{job.run_id} started with, or start a new run without --resume"
        )
    record = files.read_json(RUN_FILE)
    if record.get("run_id") != job.run_id:
        raise DataError(
            f"{job.output} holds run {record.get('run_id')!r}, not {job.run_id!r}: pass "
            f"--resume {record.get('run_id')} to finish it"
        )
    if (record.get("model"), record.get("version")) != (job.model, job.version):
        raise ConfigError(
            "--resume",
            [
                f"run {job.run_id} scores {record.get('model')}:{record.get('version')}, not "
                f"{job.model}:{job.version}; pass --model {record.get('model')}:"
                f"{record.get('version')} (a run is finished with the model it started with)"
            ],
        )
    return str(record["input"]), [Part.from_dict(p) for p in record["parts"]]


def score_on_dask(
    client: Any,
    job: DaskScoringJob,
    version: ModelVersion,
    *,
    input_url: str,
    partition_rows: int = 1_000_000,
    resume: bool = False,
    runs: Engine | None = None,
    progress: Callable[[int, int], None] | None = None,
    check: Callable[[ScoringResult], None] | None = None,
    clock: Clock = time.time,
) -> ScoringResult:
    """Score ``input_url`` (Parquet: a file, a directory, a glob, local or ``s3://``) into the
    directory ``job.output`` on the cluster of ``client``; see the module's docstring.

    ``progress`` gets the partitions done and their total (first the ones already committed,
    when resuming), ``check`` the counts so far after each partition; an error it raises stops
    the run (the committed partitions stay, ``--resume`` finishes it).
    """
    files = RunFiles(job.output)
    started = time.perf_counter()
    if resume:
        input_url, parts = resume_parts(job)
        files.prepare()  # idempotent: the directories a stopped run may not have made yet
    else:
        if files.exists(RUN_FILE):
            raise DataError(
                f"{job.output} already holds run {files.read_json(RUN_FILE).get('run_id')}: "
                "finish it with --resume RUN_ID, or write to an empty directory"
            )
        parts = plan_parts(input_url, partition_rows=partition_rows)
        files.prepare()
        files.write_json(RUN_FILE, _run_record(job, input_url, parts))
    result = ScoringResult(
        batch_id=job.run_id, output=job.output, rejects=f"{job.output.rstrip('/')}/rejects"
    )
    if runs is not None:
        if resume:
            finish_run(runs, result, "running", clock())
        else:
            start_run(runs, result, version, input_path=input_url, now=clock())
    done = files.committed(parts)
    for index in sorted(done):
        result.add(counts_of(files.read_json(f"_parts/{parts[index].name}.json")))
    finished = len(done)
    if progress is not None:
        progress(finished, len(parts))
    todo = [p for p in parts if p.index not in done]
    distributed = _distributed()
    futures = [
        client.submit(score_part, job, part, key=f"score-{job.run_id}-{part.name}", pure=False)
        for part in todo
    ]
    try:
        for future in distributed.as_completed(futures):
            result.add(future.result())
            finished += 1
            if progress is not None:
                progress(finished, len(parts))
            if check is not None:
                check(result)
    except BaseException:
        client.cancel(futures)
        if runs is not None:
            finish_run(runs, result, "failed", clock())
        raise
    if not result.n_rejected:
        result.rejects = None
    files.write_json(
        SUCCESS_FILE,
        {
            "run_id": job.run_id,
            "parts": [f"{p.name}.parquet" for p in parts],
            "rows": result.n_rows,
            "scored": result.n_scored,
            "rejected": result.n_rejected,
            "failed": result.n_failed,
        },
    )
    files.clean()
    result.seconds = time.perf_counter() - started
    if runs is not None:
        finish_run(runs, result, "done", clock())
    return result
