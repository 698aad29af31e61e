"""What only the Delta backend has: its table layout, the local spool between commits (and what
it keeps across a kill -9), compaction and vacuum. Everything both backends share is checked
on both in test_prediction_log.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import deltalake
import pyarrow as pa
import pytest

from fake_clock import FakeClock
from modelpilot.errors import DataError
from modelpilot.store import (
    DeltaPredictionLog,
    FeedbackItem,
    PredictionRecord,
    new_ids,
    open_prediction_log,
)
from modelpilot.store._delta_spool import Spool

DAY = 86_400.0
T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def _records(n: int, *, ts: float = T0, model: str = "houses") -> list[PredictionRecord]:
    ids = new_ids(n, clock=lambda: ts)
    return [
        PredictionRecord(pid, ts + i, model, 1, {"size": float(i)}, {"prediction": 2.0 * i})
        for i, pid in enumerate(ids)
    ]


def test_predictions_are_partitioned_by_day_and_model_and_labels_have_their_own_table(
    tmp_path: Path,
) -> None:
    log = DeltaPredictionLog(str(tmp_path), clock=FakeClock(T0 + 2 * DAY))
    log.append(_records(3))
    log.append(_records(2, ts=T0 + DAY, model="churn"))
    [first, *_] = _records(1)
    log.append([first])
    log.add_feedback([FeedbackItem(first.id, 7.0)])
    table = deltalake.DeltaTable(str(tmp_path / "predictions"))
    assert table.metadata().partition_columns == ["day", "model"]
    assert sorted(tuple(sorted(p.items())) for p in table.partitions()) == [
        (("day", "2023-11-14"), ("model", "houses")),
        (("day", "2023-11-15"), ("model", "churn")),
    ]
    # Any Delta reader sees the rows with their inputs and outputs as columns.
    rows = table.to_pyarrow_table().to_pylist()
    assert {r["model"] for r in rows} == {"houses", "churn"} and len(rows) == 6
    assert {"in_size", "out_prediction"} <= set(rows[0])
    labels = deltalake.DeltaTable(str(tmp_path / "labels")).to_pyarrow_table().to_pylist()
    assert [(r["prediction_id"], r["label"]) for r in labels] == [(first.id, "7.0")]
    assert log.labeled(model="houses")["label"].tolist() == [7.0]


def test_a_feature_keeps_one_type_across_the_table(tmp_path: Path) -> None:
    log = DeltaPredictionLog(str(tmp_path))
    log.append([PredictionRecord("a", T0, "m", 1, {"x": 1.5}, {"prediction": 1.0})])
    log.append([PredictionRecord("b", T0 + 1, "m", 1, {"x": 2}, {"prediction": 1.0})])  # int: fits
    assert log.window()["x"].tolist() == [1.5, 2.0]
    with pytest.raises(DataError, match=r"column 'in_x' as double, but model 'm' logs it as"):
        log.append([PredictionRecord("c", T0, "m", 1, {"x": "big"}, {"prediction": 1.0})])


def test_spooled_rows_are_committed_every_interval_and_found_by_feedback_before(
    tmp_path: Path,
) -> None:
    log = DeltaPredictionLog(
        str(tmp_path / "log"), spool=tmp_path / "spool", commit_interval=3600.0
    )
    log.start()
    records = _records(4)
    log.append(records[:2])
    log.append(records[2:])
    assert log.count() == 0  # on local disk, not committed yet
    assert log.exists([r.id for r in records]) == {r.id for r in records}
    assert [r.accepted for r in log.add_feedback([FeedbackItem(records[0].id, 1.0)])] == [True]
    assert log.versions_of([records[3].id]) == {records[3].id: ("houses", 1)}
    assert log.stop() is True  # one commit of both files
    assert log.count() == 4
    assert deltalake.DeltaTable(str(tmp_path / "log" / "predictions")).version() == 0
    assert not list((tmp_path / "spool").rglob("*.arrows"))


def test_a_commit_made_before_a_crash_is_not_made_again(tmp_path: Path) -> None:
    """The process died between the Delta commit and the deletion of its spool files: the next
    start recognises the commit by its transaction id."""
    log = DeltaPredictionLog(str(tmp_path / "log"))
    spool = Spool(tmp_path / "spool", log, interval=3600.0)
    spool.open()
    rows = pa.table({"id": ["a"], "ts": [T0], "day": ["2023-11-14"], "model": ["m"]})
    spool.add(rows)
    slot = spool._slot
    assert slot is not None
    log.write("predictions", rows, txn=(slot.writer_id, 1))  # committed ...
    slot.release()  # ... and the process is gone, its file still spooled
    again = Spool(tmp_path / "spool", log, interval=3600.0)
    again.open()
    assert again.pending == 0 and log.count() == 1
    assert again.close() is True


def test_a_new_feature_spooled_with_two_types_sets_one_file_aside_and_commits_the_rest(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Two processes log a new feature before either commits, one as numbers, one as text:
    the second's file is kept aside (counted in the stats), and its other files commit."""
    uri, root = str(tmp_path / "log"), tmp_path / "spool"
    first = DeltaPredictionLog(uri, spool=root, commit_interval=3600.0)
    second = DeltaPredictionLog(uri, spool=root, commit_interval=3600.0)
    first.start()
    second.start()
    first.append([PredictionRecord("a", T0, "m", 1, {"x": 1}, {"prediction": 1.0})])
    second.append([PredictionRecord("b", T0, "m", 1, {"x": "big"}, {"prediction": 1.0})])
    second.append([PredictionRecord("c", T0 + 1, "m", 1, {"size": 2.0}, {"prediction": 1.0})])
    assert first.stop() is True
    assert second.stop() is False  # not everything could be committed ...
    assert second.exists(["a", "b", "c"]) == {"a", "c"}  # ... but the file after it was
    kept = list(root.glob("w*/conflicts/*.arrows"))
    assert len(kept) == 1 and second.stats().conflicting_rows == 1
    assert "conflict with the Delta table's columns" in caplog.text
    assert "in_x" in caplog.text


CRASHING_WRITER = """
import os, signal, sys
from pathlib import Path
from modelpilot.store import DeltaPredictionLog, PredictionRecord, new_ids
log = DeltaPredictionLog(sys.argv[1], spool=Path(sys.argv[2]), commit_interval=3600.0)
log.start()
ids = new_ids(5, clock=lambda: 1_700_000_000.0)
log.append([PredictionRecord(i, 1_700_000_000.0, "m", 1, {"x": 1.0}, {"y": 2.0}) for i in ids])
print(",".join(ids), flush=True)  # "answered": the rows are on this machine's disk
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_spooled_rows_survive_a_kill_9_and_the_next_start_commits_them(tmp_path: Path) -> None:
    uri, spool = str(tmp_path / "log"), tmp_path / "spool"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CRASHING_WRITER), uri, str(spool)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    answered = done.stdout.strip().split(",")
    log = DeltaPredictionLog(uri, spool=spool)
    assert log.count() == 0  # the process died before its first commit
    log.start()  # a new process takes over the dead one's spool
    assert log.stop() is True
    assert log.exists(answered) == set(answered) and log.count() == 5


def test_compaction_rewrites_small_files_keeps_rows_and_labels(tmp_path: Path) -> None:
    log = DeltaPredictionLog(str(tmp_path), vacuum_retention_hours=0)
    records = _records(12)
    for k in range(0, 12, 2):
        log.append(records[k : k + 2])
    log.add_feedback([FeedbackItem(records[3].id, 9.0)])
    before = log.stats()
    assert (before.rows, before.segments) == (12, 6)
    result = log.compact(older_than=T0 + DAY, target_rows=0)
    assert (result.segments_merged, result.segments_written) == (6, 1)
    assert result.files_removed == 6  # vacuumed: no version kept reads them
    after = log.stats()
    assert (after.rows, after.segments) == (12, 1)
    assert log.window()["id"].tolist() == [r.id for r in records]
    assert log.labeled()["label"].tolist() == [9.0]
    assert log.compact(older_than=T0 + DAY, target_rows=0).segments_merged == 0


def test_the_project_file_picks_the_backend(tmp_path: Path) -> None:
    from modelpilot.spec import LoggingSettings
    from modelpilot.store import create_database

    settings = LoggingSettings.model_validate(
        {"backend": "delta", "delta": {"uri": "s3://logs/prod", "endpoint_url": "http://s3:9000"}}
    )
    log = open_prediction_log(
        settings,
        engine=create_database("sqlite://"),
        base_dir=tmp_path,
        environ={"AWS_ACCESS_KEY_ID": "key", "PATH": "/bin"},
    )
    assert isinstance(log, DeltaPredictionLog)
    assert log.uri == "s3://logs/prod" and log.spool == tmp_path / ".modelpilot/log-spool"
    assert log.storage_options == {
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_ENDPOINT_URL": "http://s3:9000",
        "AWS_ALLOW_HTTP": "true",
    }


CONCURRENT_WRITER = """
import sys, time
from pathlib import Path
from modelpilot.store import DeltaPredictionLog, PredictionRecord, new_ids
from modelpilot.store._delta_rows import storage_options
uri, endpoint, spool, who = sys.argv[1:5]
options = storage_options(uri, endpoint_url=endpoint, environ={
    "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"})
log = DeltaPredictionLog(uri, storage_options=options, spool=Path(spool), commit_interval=0.05)
log.start()
for batch in range(8):
    ids = new_ids(25, clock=lambda: 1_700_000_000.0 + batch)
    log.append([PredictionRecord(i, 1_700_000_000.0 + batch, "m", 1, {"x": 1.0, "who": who},
                                 {"y": 2.0}) for i in ids])
    time.sleep(0.06)  # the spool's thread commits every 50 ms, racing the other writers
sys.exit(0 if log.stop() else 1)
"""


def test_concurrent_writers_on_s3_lose_no_commit(tmp_path: Path, s3_endpoint: str) -> None:
    """Three processes commit to one table on the S3 stand-in at once (each spool every
    50 ms): delta-rs' conditional writes order the commits, a commit that lost the race (the
    table's creation, a new column) is retried by the spool, and none is lost or doubled."""
    import uuid

    from modelpilot.store._delta_rows import storage_options

    uri = f"s3://logs/{uuid.uuid4().hex}"
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(CONCURRENT_WRITER),
                uri,
                s3_endpoint,
                str(tmp_path / f"spool{n}"),
                f"w{n}",
            ],
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=180)
        assert writer.returncode == 0, stderr
    environ = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }
    log = DeltaPredictionLog(
        uri, storage_options=storage_options(uri, endpoint_url=s3_endpoint, environ=environ)
    )
    rows = log.window()
    assert len(rows) == 3 * 8 * 25 and rows["id"].is_unique
    assert rows.groupby("who").size().to_dict() == {"w0": 200, "w1": 200, "w2": 200}
    table = deltalake.DeltaTable(f"{uri}/predictions", storage_options=dict(log.storage_options))
    assert table.version() >= 2  # at least one commit of each writer
