"""What a Dask worker runs: one partition scored by the same :class:`ChunkScorer` as the
single-process engine, its predictions logged, then its part file committed.

Workers load the model themselves, from the project's registry (the project directory, the
version, ``--trust``): the task graph carries a few strings, not a pickled model. A fitted
model can weigh hundreds of megabytes, would be pickled once per task or held by the
scheduler, and would skip the registry's checksum and trust checks; loading it once per
worker process (cached) costs one read per worker. The price: the workers must see the project
(its directory and its database or artifact store), which a local cluster always does.

"Answered means logged": a partition's rows are appended to the log chunk by chunk (one
transaction each), and its part file is committed only after the last append. A partition
scored a second time (a worker died, or ``--resume``) makes the same prediction ids (the run,
the partition and the row decide them), and a chunk whose first id is already logged is not
logged again: an append is one transaction, so its first row is there only if all of it is.
The check costs one look-up per chunk, and only on a partition's second attempt (marked by
``_attempts/part-NNNNN`` before its first append).

Workers append to the project's log themselves, over its database URL or to its Delta tables:
PostgreSQL and Delta take concurrent appends. SQLite takes one writer at a time: its appends
wait for each other on the file's lock (WAL, a 30 s busy timeout; the lock of a worker that
dies goes with its process), so they serialize, and workers must share the machine's disk
(a local cluster). An in-memory SQLite log cannot be shared, and is refused.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq

from modelpilot.inference._batch_chunk import ChunkScorer, Tally
from modelpilot.inference._dask_files import Part, PartWriter, RunFiles, filesystem
from modelpilot.project import Project
from modelpilot.store import PredictionStore

__all__ = ["DaskScoringJob", "PartResult", "part_ids", "score_part"]


@dataclass(frozen=True)
class DaskScoringJob:
    """What every partition's task gets: which model, how, and where the results go (a few
    strings: the workers load the model themselves, see the module's docstring).

    Examples
    --------
    >>> job = DaskScoringJob("batch-018bcfe56800a1b2c3d4", "/srv/houses", "houses", 3,
    ...                      deployment=None, output="s3://bucket/scored", trust=True)
    >>> job.model, job.version, job.log, job.batch_rows
    ('houses', 3, True, 50000)
    """

    run_id: str
    project_dir: str
    model: str
    version: int
    deployment: str | None
    output: str
    trust: bool = False
    force: bool = False
    log: bool = True
    batch_rows: int = 50_000


@dataclass
class PartResult(Tally):
    index: int = 0


def part_ids(run_id: str, part: Part, rows: np.ndarray) -> list[str]:
    """The prediction ids of ``rows`` (rows of the part's file) of ``part`` in run ``run_id``:
    the run's 20 hex digits (time-ordered, as every id), then the partition and the row in it.

    Examples
    --------
    >>> part = Part(3, "in.parquet", (0,), first_row=100, n_rows=50)
    >>> part_ids("batch-018bcfe56800a1b2c3d4", part, np.array([100, 149]))
    ['018bcfe56800a1b2c3d4000030000000', '018bcfe56800a1b2c3d4000030000031']
    """
    prefix = f"{run_id.removeprefix('batch-')[:20]}{part.index:05x}"
    return [f"{prefix}{row:07x}" for row in (rows - part.first_row).tolist()]


@functools.lru_cache(maxsize=2)
def _scorer(job: DaskScoringJob) -> tuple[ChunkScorer, PredictionStore | None]:
    """The worker's scorer and log for ``job``: loaded once per worker process."""
    project = Project.open(job.project_dir)
    version = project.registry.get(job.model, job.version)
    spec = next((s for s in project.spec.deployment_specs if s.name == job.deployment), None)
    scorer = ChunkScorer.for_project(
        project,
        version,
        spec,
        batch_id=job.run_id,
        trust=job.trust,
        force=job.force,
        log=job.log,
    )
    return scorer, project.prediction_log if job.log else None


def score_part(job: DaskScoringJob, part: Part) -> PartResult:
    """Score ``part``: log its predictions, then commit its rejects and its part file."""
    scorer, log = _scorer(job)
    files = RunFiles(job.output)
    fs, _ = files.fs_path
    tmp = f"{files.fs_path[1]}/_tmp"
    marker = f"_attempts/{part.name}"
    retried = files.exists(marker)
    if log is not None and not retried:
        files.write_json(marker, {"run": job.run_id})
    in_fs, in_path = filesystem(part.file)
    writer, rejects = (
        PartWriter(fs, files.part(part), tmp),
        PartWriter(fs, files.rejects(part), tmp),
    )
    result = PartResult(index=part.index)
    columns: list[str] = []

    def ids(rows: np.ndarray) -> list[str]:
        return part_ids(job.run_id, part, rows)

    offset = part.first_row
    with in_fs.open_input_file(in_path) as handle:
        batches = pq.ParquetFile(handle).iter_batches(
            batch_size=job.batch_rows, row_groups=list(part.row_groups)
        )
        for batch in batches:
            chunk = batch.to_pandas()
            scored = scorer.score(chunk, offset=offset, ids=ids)
            columns = scored.columns
            scored.write(writer, rejects)
            if log is not None and scored.batches:
                first = scored.batches[0].ids[0]
                if not (retried and log.exists([first])):
                    log.append(scored.batches)
            result.add(scored)
            offset += len(chunk)
    if result.n_rejected:
        rejects.commit([])
    files.write_json(f"_parts/{part.name}.json", _counts(result))
    writer.commit([*columns, "prediction"])  # last: the partition is done
    return result


def _counts(result: PartResult) -> dict[str, object]:
    return {
        "index": result.index,
        "rows": result.n_rows,
        "scored": result.n_scored,
        "rejected": result.n_rejected,
        "failed": result.n_failed,
        "reasons": result.reasons,
        "unseen": result.unseen,
    }


def counts_of(data: dict[str, object]) -> PartResult:
    """A partition's counts as :func:`score_part` wrote them (``_parts/part-NNNNN.json``)."""

    def number(key: str) -> int:
        value = data[key]
        return int(value) if isinstance(value, int | str | float) else 0

    reasons, unseen = data.get("reasons"), data.get("unseen")
    return PartResult(
        index=number("index"),
        n_rows=number("rows"),
        n_scored=number("scored"),
        n_rejected=number("rejected"),
        n_failed=number("failed"),
        reasons=dict(reasons) if isinstance(reasons, dict) else {},
        unseen=dict(unseen) if isinstance(unseen, dict) else {},
    )
