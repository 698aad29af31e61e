"""Batch scoring on Dask (``modelpilot score --engine dask``): the same rows, rejects and log
rows as the single-process engine; local and S3 (moto) directories; a worker killed mid-run
and a client that stopped: every row scored and logged exactly once.

The model is the marked house-price model (:mod:`marked_model`, a scikit-learn pipeline fitted
on a DataFrame with string categories) that raises on marked rows; some rows break the schema.
Clusters are in-process (``processes=False``) except where a real worker process is needed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from marked_model import MARKED, MARKED_SIZE

from modelpilot.datasets import house_prices
from modelpilot.inference import DaskScoringJob, new_run_id, score_file, score_on_dask
from modelpilot.project import Project
from project_helpers import open_prediction_log, run_cli

distributed = pytest.importorskip("distributed")

N_ROWS = 400
MARKED_ROWS = [5, 130, 131, 377]  # the model raises on them
SMALL_ROWS = [17, 250]  # size_sqft out of the schema's range


@pytest.fixture(scope="module")
def listings() -> pd.DataFrame:
    rows = house_prices(N_ROWS, seed=11).drop(columns="price")
    rows.loc[MARKED_ROWS, "size_sqft"] = MARKED_SIZE
    rows.loc[SMALL_ROWS, "size_sqft"] = 50.0
    return rows


@pytest.fixture(scope="module")
def listings_file(tmp_path_factory: pytest.TempPathFactory, listings: pd.DataFrame) -> Path:
    path = tmp_path_factory.mktemp("input") / "listings.parquet"
    listings.to_parquet(path, row_group_size=100)  # 4 partitions of one row group
    return path


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """An in-process cluster of 2 workers (threads): the tests that need no real process."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address="127.0.0.1:0"
    ) as local:
        yield local


def _logged(project_dir: Path, run_id: str) -> pd.DataFrame:
    with open_prediction_log(project_dir) as log:
        rows = log.window(model=MARKED)
    return rows[rows["batch_id"] == run_id]


def _parts(directory: Path) -> pd.DataFrame:
    files = sorted(directory.glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def _score_args(project: Path, source: str, output: str) -> list[str]:
    return ["-p", str(project), "score", source, "-o", output, "-m", MARKED, "--trust"]


def test_dask_gives_the_local_engines_rows_rejects_and_log(
    batch_project: Path,
    listings_file: Path,
    cluster: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "scored"
    args = _score_args(batch_project, str(listings_file), str(out))
    args += ["--engine", "dask", "--scheduler", cluster.scheduler_address]
    capsys.readouterr()
    assert run_cli([*args, "--partition-rows", "100"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "scored 394 of 400 rows with marked v1" in printed
    assert "rejected 6 rows (model: 4, size_sqft: 2)" in printed
    project = Project.open(batch_project, environ={})
    version = project.registry.resolve(f"{MARKED}@production")
    local = score_file(
        version,
        project.registry.load(version, trust=True),
        listings_file,
        tmp_path / "local.parquet",
        log=project.prediction_log,
        batch_rows=64,
    )
    project.engine.dispose()
    manifest = json.loads((out / "_SUCCESS").read_text())
    assert (manifest["rows"], manifest["rejected"]) == (N_ROWS, 6)
    assert manifest["parts"] == [f"part-{i:05d}.parquet" for i in range(4)]
    scored, expected = _parts(out), pd.read_parquet(tmp_path / "local.parquet")
    pd.testing.assert_frame_equal(
        scored.drop(columns="prediction_id"), expected.drop(columns="prediction_id")
    )
    rejects = pd.concat([pd.read_parquet(f) for f in sorted((out / "rejects").glob("*.parquet"))])
    local_rejects = pd.read_parquet(tmp_path / "local.rejects.parquet")
    assert (
        rejects["_row"].tolist()
        == local_rejects["_row"].tolist()
        == sorted(MARKED_ROWS + SMALL_ROWS)
    )
    assert rejects["_reason"].tolist() == local_rejects["_reason"].tolist()
    run_id = manifest["run_id"]
    logged, logged_local = _logged(batch_project, run_id), _logged(batch_project, local.batch_id)
    assert len(logged) == len(logged_local) == N_ROWS - len(SMALL_ROWS)
    assert set(logged["id"]) == set(scored["prediction_id"]) | set(
        rejects["prediction_id"].dropna()
    )
    # The same predictions (the local engine's ids are random: compared as sorted values).
    assert sorted(logged["prediction"].fillna(-1)) == sorted(logged_local["prediction"].fillna(-1))


def test_s3_input_glob_and_output_against_moto(
    batch_project: Path,
    listings: pd.DataFrame,
    cluster: Any,
    s3_environ: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s3 = s3_environ
    prefix = f"scoring/{uuid.uuid4().hex}"
    for i, half in enumerate((listings.iloc[:200], listings.iloc[200:])):
        local = tmp_path / f"listings-{i}.parquet"
        half.reset_index(drop=True).to_parquet(local, row_group_size=100)
        s3.upload_file(str(local), "logs", f"{prefix}/in/listings-{i}.parquet")
    source, out = f"s3://logs/{prefix}/in/*.parquet", f"s3://logs/{prefix}/out"
    capsys.readouterr()
    args = [*_score_args(batch_project, source, out), "--engine", "dask", "--json"]
    assert run_cli([*args, "--scheduler", cluster.scheduler_address]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["rows"], summary["rejected"], summary["engine"]) == (N_ROWS, 6, "dask")
    keys = {
        o["Key"].removeprefix(f"{prefix}/out/")
        for o in s3.list_objects_v2(Bucket="logs", Prefix=f"{prefix}/out/")["Contents"]
    }
    # One partition a file here (each is smaller than --partition-rows' default).
    assert {k for k in keys if k.startswith("part-")} == {
        "part-00000.parquet",
        "part-00001.parquet",
    }
    assert {"_SUCCESS", "rejects/part-00000.parquet", "rejects/part-00001.parquet"} <= keys
    assert not any(k.startswith("_tmp/") for k in keys)
    logged = _logged(batch_project, summary["batch_id"])
    assert len(logged) == N_ROWS - len(SMALL_ROWS) and logged["id"].is_unique


class ClientStopped(Exception):
    pass


def test_resume_finishes_only_the_missing_partitions_and_logs_nothing_twice(
    batch_project: Path, listings_file: Path, cluster: Any, tmp_path: Path
) -> None:
    project = Project.open(batch_project, environ={})
    version = project.registry.resolve(f"{MARKED}@production")
    out = tmp_path / "scored"
    job = DaskScoringJob(
        run_id=new_run_id(),
        project_dir=str(batch_project),
        model=version.name,
        version=version.version,
        deployment=None,
        output=str(out),
        trust=True,
    )

    def stop(result: Any) -> None:
        raise ClientStopped  # the client dies after its first partition

    with distributed.Client(cluster) as client, pytest.raises(ClientStopped):
        score_on_dask(
            client, job, version, input_url=str(listings_file), partition_rows=100, check=stop
        )
    project.engine.dispose()
    committed = sorted(p.name for p in out.glob("part-*.parquet"))
    assert committed and not (out / "_SUCCESS").exists()
    # A partition whose rows were logged but whose part file was not committed (the worker
    # died in between): resume scores it again, and logs none of its rows twice.
    (out / committed[0]).unlink()
    args = _score_args(batch_project, str(listings_file), str(out))
    args += ["--engine", "dask", "--resume", job.run_id, "--scheduler", cluster.scheduler_address]
    assert run_cli(args) == 0
    manifest = json.loads((out / "_SUCCESS").read_text())
    assert (manifest["run_id"], manifest["rows"], manifest["rejected"]) == (job.run_id, N_ROWS, 6)
    logged = _logged(batch_project, job.run_id)
    assert len(logged) == N_ROWS - len(SMALL_ROWS) and logged["id"].is_unique
    assert len(_parts(out)) == N_ROWS - len(SMALL_ROWS) - len(MARKED_ROWS)


def test_a_worker_killed_mid_run_leaves_every_row_scored_once(
    batch_project: Path, tmp_path: Path
) -> None:
    """Real worker processes; one is killed (SIGKILL) while it scores a partition."""
    rows = house_prices(800, seed=5).drop(columns="price")
    source = tmp_path / "many.parquet"
    rows.to_parquet(source, row_group_size=100)  # 8 partitions
    project = Project.open(batch_project, environ={})
    version = project.registry.resolve(f"{MARKED}@production")
    project.engine.dispose()
    job = DaskScoringJob(
        run_id=new_run_id(),
        project_dir=str(batch_project),
        model=version.name,
        version=version.version,
        deployment=None,
        output=str(tmp_path / "scored"),
        trust=True,
        batch_rows=25,
    )
    killed: list[int] = []
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0"
        ) as local,
        distributed.Client(local) as client,
    ):
        pids = client.run(os.getpid)

        def kill_a_busy_worker(done: int, total: int) -> None:
            if done < 1 or killed:
                return
            busy = [address for address, keys in client.processing().items() if keys]
            if busy:
                killed.append(pids[busy[0]])
                os.kill(pids[busy[0]], signal.SIGKILL)

        result = score_on_dask(
            client,
            job,
            version,
            input_url=str(source),
            partition_rows=100,
            progress=kill_a_busy_worker,
        )
    assert killed, "no worker was busy when the first partition finished"
    assert (result.n_rows, result.n_scored) == (800, 800)
    logged = _logged(batch_project, job.run_id)
    assert len(logged) == 800 and logged["id"].is_unique
    scored = _parts(tmp_path / "scored")
    assert len(scored) == 800 and set(scored["prediction_id"]) == set(logged["id"])


def test_without_the_dask_extra_the_message_names_it(
    batch_project: Path,
    listings_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed: ImportError
    args = _score_args(batch_project, str(listings_file), str(tmp_path / "out"))
    assert run_cli([*args, "--engine", "dask"]) == 2
    printed = " ".join(capsys.readouterr().err.split())
    assert "pip install 'modelpilot[dask]'" in printed


def test_resume_names_what_is_wrong(
    batch_project: Path,
    listings_file: Path,
    cluster: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = _score_args(batch_project, str(listings_file), str(tmp_path / "empty"))
    args += ["--resume", "batch-018bcfe56800a1b2c3d4"]
    assert run_cli(args) == 2  # --resume without --engine dask
    assert "--resume and --scheduler are options of --engine dask" in capsys.readouterr().err
    assert run_cli([*args, "--engine", "dask", "--scheduler", cluster.scheduler_address]) == 2
    printed = " ".join(capsys.readouterr().err.split())
    assert "no run to resume (_RUN.json is missing)" in printed
