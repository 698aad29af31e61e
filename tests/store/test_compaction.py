"""Compacting the prediction log: fewer, larger segments, and every reader's answer unchanged.

Run on every backend (SQLite file and in-memory, PostgreSQL when MODELPILOT_TEST_POSTGRES_URL
is set). The log is filled the way the online writer fills it: many small segments, of several
models, versions, sources and scoring runs, interleaved in time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from fake_clock import FakeClock
from modelpilot.store import (
    FeedbackItem,
    PredictionBatch,
    PredictionLog,
    compact_segments,
    log_stats,
)


@pytest.fixture
def log(engine: Engine) -> PredictionLog:
    return PredictionLog(engine, clock=FakeClock(9_000.0))


def _batch(
    start: int,
    n: int,
    *,
    model: str = "houses",
    version: int = 1,
    source: str = "online",
    batch_id: str | None = None,
    deferred: bool = False,
) -> PredictionBatch:
    ids = [f"{model}-{version}-{source}-{start + i}" for i in range(n)]
    outputs: dict[str, object] = {"prediction": np.arange(start, start + n) * 2.0}
    if deferred:  # a column only some segments have (rows deferred to people)
        outputs["deferred"] = ["partial"] * n
    return PredictionBatch(
        model=model,
        version=version,
        ids=ids,
        ts=np.arange(start, start + n, dtype=np.float64),
        inputs={
            "size": np.arange(start, start + n, dtype=np.float64),
            "city": ["a", "b"] * (n // 2) + ["c"] * (n % 2),
        },
        outputs=outputs,
        source=source,
        batch_id=batch_id,
        latency_ms=np.full(n, 1.5),
    )


def _fill(log: PredictionLog) -> None:
    """300 segments of 1-7 rows: two models, two versions, a scoring run, interleaved."""
    rng = np.random.default_rng(0)
    t = 0
    for i in range(300):
        n = int(rng.integers(1, 8))
        kind = i % 5
        if kind == 0:
            log.append(_batch(t, n, model="churn"))
        elif kind == 1:
            log.append(_batch(t, n, version=2))
        elif kind == 2:
            log.append(_batch(t, n, source="batch", batch_id="run-1"))
        else:
            log.append(_batch(t, n, deferred=i % 7 == 0))
        t += n


def _everything(log: PredictionLog) -> pd.DataFrame:
    return log.window()


def test_compaction_keeps_every_row_and_every_answer(log: PredictionLog, engine: Engine) -> None:
    _fill(log)
    before = log_stats(engine)
    whole, houses = _everything(log), log.window(model="houses", version=1, start=100, end=900)
    result = compact_segments(engine, older_than=1e9, target_rows=100)
    after = log_stats(engine)
    assert after.rows == before.rows == len(whole)
    assert 0 < result.rows <= before.rows
    assert before.segments == 300
    # 4 keys; each key's segments merge into runs of at most 100 rows.
    assert after.segments < 30
    assert before.segments - after.segments == result.segments_merged - result.segments_written
    pd.testing.assert_frame_equal(_everything(log), whole)
    pd.testing.assert_frame_equal(log.window(model="houses", version=1, start=100, end=900), houses)


def test_merged_segments_hold_at_most_the_target_rows(log: PredictionLog, engine: Engine) -> None:
    for i in range(40):
        log.append(_batch(i * 10, 10))
    compact_segments(engine, older_than=1e9, target_rows=35)
    stats = log_stats(engine)
    assert stats.rows == 400
    # Runs of three 10-row segments (30 rows; a fourth would pass 35): 40 segments -> 14.
    assert stats.segments == 14


def test_ids_find_their_rows_and_labels_join_after_compaction(
    log: PredictionLog, engine: Engine
) -> None:
    _fill(log)
    ids = _everything(log)["id"].tolist()
    picked = ids[::37]
    log.add_feedback([FeedbackItem(pid, float(k)) for k, pid in enumerate(picked)])
    expected_labels = log.labeled().sort_values("id").reset_index(drop=True)
    compact_segments(engine, older_than=1e9, target_rows=1000)
    got = log.get(picked)
    assert sorted(got["id"]) == sorted(picked)
    assert log.exists(ids) == set(ids)
    pd.testing.assert_frame_equal(
        log.labeled().sort_values("id").reset_index(drop=True), expected_labels
    )


def test_recent_segments_are_left_to_the_writer(log: PredictionLog, engine: Engine) -> None:
    for i in range(10):
        log.append(_batch(i * 2, 2))  # ts 0..19
    result = compact_segments(engine, older_than=10.0, target_rows=1000)
    # Segments whose newest row is before t=10: ts 0-1, 2-3, 4-5, 6-7, 8-9.
    assert (result.segments_merged, result.segments_written) == (5, 1)
    assert log_stats(engine).segments == 6


def test_a_second_compaction_finds_nothing_to_do(log: PredictionLog, engine: Engine) -> None:
    _fill(log)
    compact_segments(engine, older_than=1e9, target_rows=1000)
    again = compact_segments(engine, older_than=1e9, target_rows=1000)
    assert (again.segments_merged, again.segments_written) == (0, 0)


def test_max_runs_bounds_one_call(log: PredictionLog, engine: Engine) -> None:
    for i in range(40):
        log.append(_batch(i * 10, 10))
    first = compact_segments(engine, older_than=1e9, target_rows=20, max_runs=3)
    assert (first.segments_merged, first.segments_written) == (6, 3)
    rest = compact_segments(engine, older_than=1e9, target_rows=20)
    assert rest.segments_written == 17
    assert log_stats(engine).segments == 20


def test_a_target_below_two_rows_is_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="target_rows must be at least 2, got 1"):
        compact_segments(engine, older_than=1e9, target_rows=1)
