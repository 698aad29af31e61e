"""The prediction log, run through the same checks on every backend: the metadata database's
(SQLite file and in-memory, PostgreSQL when MODELPILOT_TEST_POSTGRES_URL is set; on CI it must
be) and Delta tables (a local directory, and a moto S3 server)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.exc import IntegrityError

from fake_clock import FakeClock
from modelpilot.store import (
    DeltaPredictionLog,
    FeedbackItem,
    PredictionBatch,
    PredictionLog,
    PredictionRecord,
    PredictionStore,
    create_database,
    new_ids,
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(5_000.0)


@pytest.fixture
def log(log_backend: Callable[[FakeClock], PredictionStore], clock: FakeClock) -> PredictionStore:
    return log_backend(clock)


def _record(
    pid: str, ts: float, *, model: str = "houses", version: int = 1, **inputs: object
) -> PredictionRecord:
    return PredictionRecord(
        id=pid,
        ts=ts,
        model=model,
        version=version,
        inputs=inputs or {"size": ts},
        outputs={"prediction": ts * 2},
    )


def test_round_trip_keeps_values_and_types(log: PredictionStore) -> None:
    records = [
        PredictionRecord(
            id=f"p{i}",
            ts=100.0 + i,
            model="churn",
            version=3,
            inputs={
                "age": 30 + i,
                "spend": 1.5 * i,
                "plan": "ab"[i % 2],
                "active": i == 0,
                "notes": None,
            },
            outputs={
                "prediction": "yes" if i else "no",
                "probabilities": {"no": 0.25 * i, "yes": 1 - 0.25 * i},
            },
            latency_ms=None if i == 0 else 2.5,
        )
        for i in range(3)
    ]
    assert log.append(records) == 3
    frame = log.window(model="churn")
    assert list(frame.columns) == [
        "id",
        "ts",
        "model",
        "version",
        "source",
        "batch_id",
        "latency_ms",
        "age",
        "spend",
        "plan",
        "active",
        "notes",
        "prediction",
        "proba_no",
        "proba_yes",
    ]
    assert frame["id"].tolist() == ["p0", "p1", "p2"]
    assert frame["ts"].tolist() == [100.0, 101.0, 102.0]
    assert frame["age"].tolist() == [30, 31, 32] and frame["age"].dtype.kind == "i"
    assert frame["spend"].tolist() == [0.0, 1.5, 3.0] and frame["spend"].dtype.kind == "f"
    assert frame["plan"].tolist() == ["a", "b", "a"]
    assert frame["active"].tolist() == [True, False, False] and frame["active"].dtype == bool
    assert frame["notes"].isna().all()
    assert frame["prediction"].tolist() == ["no", "yes", "yes"]
    assert frame["proba_yes"].tolist() == [1.0, 0.75, 0.5]
    assert frame["version"].tolist() == [3, 3, 3] and frame["version"].dtype.kind == "i"
    assert frame["source"].tolist() == ["online"] * 3
    assert math.isnan(frame["latency_ms"][0]) and frame["latency_ms"][1] == 2.5
    assert frame["batch_id"].isna().all()


def test_batches_of_frames(log: PredictionStore) -> None:
    ids = new_ids(4, clock=lambda: 1_700_000_000.0)
    batch = PredictionBatch(
        model="houses",
        version=2,
        ids=ids,
        ts=np.array([10.0, 11.0, 12.0, 13.0]),
        inputs=pd.DataFrame({"size": [50.0, 60.0, 70.0, 80.0], "city": list("abab")}),
        outputs=pd.DataFrame({"prediction": [1.0, 2.0, 3.0, 4.0]}),
        source="batch",
        batch_id="run-1",
        latency_ms=[1.0, 1.0, 2.0, 2.0],
    )
    assert log.append(batch) == 4
    frame = log.window(model="houses")
    assert frame["id"].tolist() == ids
    assert frame[["size", "city", "prediction"]].to_dict("list") == {
        "size": [50.0, 60.0, 70.0, 80.0],
        "city": list("abab"),
        "prediction": [1.0, 2.0, 3.0, 4.0],
    }
    assert set(frame["batch_id"]) == {"run-1"} and set(frame["source"]) == {"batch"}
    assert log.count(model="houses", source="batch") == 4


def test_window_filters_by_half_open_time_range(log: PredictionStore) -> None:
    # Three batches appended out of time order; a window reads rows, not whole batches.
    log.append([_record("a", 10.0), _record("b", 20.0), _record("c", 30.0)])
    log.append([_record("d", 5.0), _record("e", 25.0)])
    log.append([_record("f", 40.0)])
    assert log.window()["id"].tolist() == ["d", "a", "b", "e", "c", "f"]  # oldest first
    assert log.window(start=20.0, end=30.0)["id"].tolist() == ["b", "e"]  # [start, end)
    assert log.window(start=30.0)["id"].tolist() == ["c", "f"]
    assert log.window(end=10.0)["id"].tolist() == ["d"]
    assert log.window(start=41.0).empty
    assert log.window(start=5.0, limit=2)["id"].tolist() == ["d", "a"]


def test_window_filters_by_model_version_and_source(log: PredictionStore) -> None:
    log.append([_record("a", 1.0), _record("b", 2.0, version=2), _record("c", 3.0, model="churn")])
    log.append(
        [
            PredictionRecord(
                id="d",
                ts=4.0,
                model="houses",
                version=2,
                inputs={"size": 1},
                outputs={"prediction": 1},
                source="batch",
                batch_id="r",
            )
        ]
    )
    assert log.window(model="houses")["id"].tolist() == ["a", "b", "d"]
    assert log.window(model="houses", version=2)["id"].tolist() == ["b", "d"]
    assert log.window(source="batch")["id"].tolist() == ["d"]
    assert log.count() == 4 and log.count(model="churn") == 1
    assert log.window(model="nobody").empty


def test_an_empty_window_still_has_the_metadata_columns(log: PredictionStore) -> None:
    frame = log.window(model="houses")
    assert frame.empty
    assert list(frame.columns) == [
        "id",
        "ts",
        "model",
        "version",
        "source",
        "batch_id",
        "latency_ms",
    ]
    assert log.append([]) == 0 and log.count() == 0


def test_a_batch_with_a_logged_id_is_written_not_at_all(database_url: str) -> None:
    # The database's unique index; Delta has none (ids are unique by construction there).
    engine = create_database(database_url)
    log = PredictionLog(engine)
    log.append([_record("a", 1.0)])
    with pytest.raises(IntegrityError):
        log.append([_record("new", 2.0), _record("a", 3.0)])
    assert log.exists(["new", "a"]) == {"a"}
    assert log.count() == 1
    engine.dispose()


def test_exists_and_get(log: PredictionStore) -> None:
    ids = [f"id{i}" for i in range(1200)]  # more than one look-up chunk
    log.append([_record(pid, float(i)) for i, pid in enumerate(ids)])
    assert log.exists([*ids[::7], "nope"]) == set(ids[::7])
    assert log.exists([]) == set()
    got = log.get(["id3", "nope", "id1100"])
    assert sorted(got["id"]) == ["id1100", "id3"]
    assert dict(zip(got["id"], got["size"], strict=True)) == {"id3": 3.0, "id1100": 1100.0}


def test_feedback_is_accepted_or_refused_item_by_item(log: PredictionStore) -> None:
    log.append([_record("a", 1.0), _record("b", 2.0)])
    results = log.add_feedback(
        [
            FeedbackItem("a", 310_000.0),
            FeedbackItem("zz", 1.0),
            FeedbackItem("b", None),
            FeedbackItem("b", 2.0, kind="opinion"),
            FeedbackItem("b", kind="redo"),
        ]
    )
    assert [(r.prediction_id, r.accepted, r.error) for r in results] == [
        ("a", True, None),
        ("zz", False, "no prediction with id 'zz' is logged"),
        ("b", False, "a label is required"),
        ("b", False, "kind must be one of label, redo, correction, got 'opinion'"),
        ("b", True, None),
    ]
    labeled = log.labeled()
    assert labeled["id"].tolist() == ["a"]  # a redo is feedback, not a label
    assert labeled["label"].tolist() == [310_000.0]


def test_labeled_keeps_the_newest_label(log: PredictionStore, clock: FakeClock) -> None:
    log.append([_record("a", 1.0), _record("b", 2.0), _record("c", 3.0)])
    clock.now = 6_000.0
    log.add_feedback([FeedbackItem("a", "cheap"), FeedbackItem("b", 0)])
    clock.now = 7_000.0
    log.add_feedback([FeedbackItem("a", "pricey"), FeedbackItem("a", "pricey-corrected")])
    labeled = log.labeled(model="houses")
    assert labeled[["id", "label", "label_ts"]].to_dict("records") == [
        {"id": "a", "label": "pricey-corrected", "label_ts": 7_000.0},
        {"id": "b", "label": 0, "label_ts": 6_000.0},  # a falsy label is still a label
    ]
    assert labeled["size"].tolist() == [1.0, 2.0]  # the window's columns come along
    assert log.labeled(start=2.0)["id"].tolist() == ["b"]
    assert log.labeled(model="churn").empty


def test_label_coverage_counts_in_the_database_what_the_window_shows(
    log: PredictionStore, clock: FakeClock
) -> None:
    """Labeled online predictions of one model since ``start``, over all its predictions then;
    other models, scoring runs, redo requests and repeated labels do not count."""
    for k in range(10):  # segments of 3 rows: ts 100k .. 100k + 2
        base = 100.0 * k
        log.append([_record(f"h{k}-{i}", base + i) for i in range(3)])
        log.append([_record(f"c{k}-{i}", base + i, model="churn") for i in range(3)])
    log.append(
        PredictionBatch(
            model="houses",
            version=1,
            ids=["b0", "b1"],
            ts=[450.0, 451.0],
            inputs={"size": [1.0, 2.0]},
            outputs={"prediction": [1.0, 2.0]},
            source="batch",
            batch_id="run",
        )
    )
    clock.now = 6_000.0
    log.add_feedback(
        [FeedbackItem(pid, 1.0) for pid in ("h1-0", "h4-2", "h4-2", "h8-1", "c5-0", "b0")]
        + [FeedbackItem("h9-0", kind="redo")]
    )
    assert log.label_coverage(model="houses", start=0.0) == (3, 30)
    # From t=400: segments 4..9 (h4-2 and h8-1 labeled).
    assert log.label_coverage(model="houses", start=400.0) == (2, 18)
    # A segment straddling start counts whole: ts 401 is inside segment 4 (400-402). Delta
    # counts rows, exactly.
    exact = isinstance(log, DeltaPredictionLog)
    assert log.label_coverage(model="houses", start=401.0) == (2, 17 if exact else 18)
    assert log.label_coverage(model="churn", start=0.0) == (1, 30)
    assert log.label_coverage(model="houses", start=0.0, source="batch") == (1, 2)
    assert log.label_coverage(model="nobody", start=0.0) == (0, 0)
    window = log.window(model="houses", start=400.0, source="online")
    labeled = log.labeled(model="houses", start=400.0)
    assert len(window) == 18 and len(labeled[labeled["source"] == "online"]) == 2


def test_scan_reads_the_window_a_chunk_at_a_time(log: PredictionStore) -> None:
    day = 86_400.0
    log.append([_record(f"a{i}", 10.0 + i) for i in range(3)])
    log.append([_record(f"b{i}", day + i, rooms=i) for i in range(3)])  # a new input column
    log.append([_record(f"c{i}", 2 * day + i) for i in range(3)])
    log.append([_record("other", 20.0, model="churn")])
    window = log.window(model="houses", start=11.0)
    scan = log.scan(model="houses", start=11.0, chunk_rows=2)
    chunks = list(scan.chunks)
    assert len(chunks) >= 3  # never the whole window at once
    assert sum(read for _, read in chunks) == scan.total_rows >= len(window)
    together = pd.concat([frame for frame, _ in chunks], ignore_index=True)
    assert sorted(together["id"]) == sorted(window["id"])
    assert set(together.columns) == set(window.columns)
    assert together.set_index("id").loc["b2", "rooms"] == 2
    empty = log.scan(model="nobody")
    assert empty.total_rows == 0 and list(empty.chunks) == []


def test_compaction_reports_its_progress(log: PredictionStore) -> None:
    for i in range(6):
        log.append([_record(f"p{i}", 10.0 + i)])
    calls: list[tuple[int, int]] = []
    log.compact(
        older_than=1_000.0, target_rows=1_000, progress=lambda done, n: calls.append((done, n))
    )
    assert calls, "compaction said nothing of its progress"
    assert calls[-1][0] == calls[-1][1] > 0  # it ends at its total
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert log.window()["id"].tolist() == [f"p{i}" for i in range(6)]  # rows unchanged
