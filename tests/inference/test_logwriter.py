"""LogWriter: group commit off the request path, durable callbacks, back-pressure, retries."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine

from modelpilot.errors import ModelpilotError
from modelpilot.inference import LogQueueFull, LogUnavailable, LogWriter
from modelpilot.spec import FeatureSpec
from modelpilot.store import (
    LogRows,
    PiiScrubber,
    PredictionBatch,
    PredictionLog,
    PredictionRecord,
    create_database,
)

WAIT = 30.0  # the longest any commit may take here; a bound, never a pause


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_database("sqlite://")
    yield engine
    engine.dispose()


@pytest.fixture
def log(engine: Engine) -> PredictionLog:
    return PredictionLog(engine)


def entries(n: int, *, start: int = 0, model: str = "m") -> LogRows:
    numbers = range(start, start + n)
    return LogRows(
        model,
        1,
        [f"p{i:05d}" for i in numbers],
        1000.0 + start,
        {"x": [float(i) for i in numbers], "email": [f"{i}@a.b" for i in numbers]},
        [2.0 * i for i in numbers],
        latencies=[(0.5, n)],
    )


class FlakyLog(PredictionLog):
    """A prediction log whose first ``failures`` appends fail, as a database going away would."""

    def __init__(self, engine: Engine, *, failures: int) -> None:
        super().__init__(engine)
        self.failures = failures
        self.attempts = 0

    def append(self, items: PredictionBatch | Sequence[PredictionBatch | PredictionRecord]) -> int:
        self.attempts += 1
        if self.attempts <= self.failures:
            raise ConnectionError(f"database unavailable (attempt {self.attempts})")
        return super().append(items)


class Callbacks:
    """Collects durable-mode callbacks; :meth:`wait` blocks until ``n`` have arrived."""

    def __init__(self) -> None:
        self.results: list[BaseException | None] = []
        self._arrived = threading.Condition()

    def __call__(self, error: BaseException | None) -> None:
        with self._arrived:
            self.results.append(error)
            self._arrived.notify_all()

    def wait(self, n: int) -> list[BaseException | None]:
        with self._arrived:
            assert self._arrived.wait_for(lambda: len(self.results) >= n, WAIT)
            return list(self.results)


def test_submitted_entries_are_committed(log: PredictionLog) -> None:
    writer = LogWriter(log, flush_interval=0.01)
    writer.start()
    writer.submit(entries(3))
    writer.submit(entries(2, start=3))
    assert writer.wait_flushed(WAIT)
    assert log.count() == 5 and writer.queued == 0
    frame = log.window(model="m")
    assert frame["id"].tolist() == [f"p{i:05d}" for i in range(5)]
    assert frame["prediction"].tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert writer.stats.committed == 5
    writer.stop()


def test_wait_flushed_with_nothing_submitted_returns_at_once(log: PredictionLog) -> None:
    writer = LogWriter(log)
    assert writer.wait_flushed(0.0)


def test_what_gathered_before_a_commit_goes_in_one_transaction(log: PredictionLog) -> None:
    writer = LogWriter(log, flush_interval=0.01)
    for start in range(0, 50, 5):  # queued before the thread runs: one group
        writer.submit(entries(5, start=start))
    writer.start()
    assert writer.wait_flushed(WAIT)
    assert (log.count(), writer.stats.commits) == (50, 1)
    writer.stop()


def test_stop_commits_everything_submitted_before_it(log: PredictionLog) -> None:
    writer = LogWriter(log, flush_interval=0.01)
    writer.start()
    writer.submit(entries(7))
    writer.stop()
    assert log.count() == 7
    with pytest.raises(ModelpilotError, match="the prediction log writer is stopped"):
        writer.submit(entries(1, start=7))


def test_durable_callbacks_run_after_the_commit(log: PredictionLog) -> None:
    callbacks = Callbacks()
    seen_in_log: list[set[str]] = []

    def callback(error: BaseException | None) -> None:
        seen_in_log.append(log.exists(ids))  # what a durable request may rely on
        callbacks(error)

    writer = LogWriter(log, flush_interval=0.01)
    writer.start()
    ids = [f"p{i:05d}" for i in range(4)]
    writer.submit(entries(2), callback)
    writer.submit(entries(2, start=2), callback)
    assert callbacks.wait(2) == [None, None]
    assert seen_in_log[-1] == set(ids)
    writer.stop()


def test_an_empty_submission_calls_back_at_once(log: PredictionLog) -> None:
    callbacks = Callbacks()
    LogWriter(log).submit(entries(0), callbacks)
    assert callbacks.results == [None]


def test_a_full_queue_refuses_new_requests(log: PredictionLog) -> None:
    writer = LogWriter(log, max_queue=100)  # not started: nothing leaves the queue
    writer.submit(entries(60))
    writer.check_capacity(40)
    with pytest.raises(LogQueueFull, match=r"60 records behind \(limit 100\).*nothing is lost"):
        writer.check_capacity(41)
    assert LogQueueFull(60, 100).http_status == 503
    assert writer.queued == 60


def test_lag_is_the_age_of_the_oldest_uncommitted_record(log: PredictionLog) -> None:
    now = [100.0]
    writer = LogWriter(log, monotonic=lambda: now[0])
    assert writer.lag_seconds == 0.0
    writer.submit(entries(1))
    now[0] = 103.5
    writer.submit(entries(1, start=1))
    assert writer.lag_seconds == 3.5


def test_failed_commits_are_retried_and_nothing_is_lost(engine: Engine) -> None:
    log = FlakyLog(engine, failures=3)
    callbacks = Callbacks()
    writer = LogWriter(log, flush_interval=0.001)
    writer.start()
    writer.submit(entries(10), callbacks)
    assert callbacks.wait(1) == [None]
    writer.submit(entries(5, start=10))
    writer.stop()
    assert log.count() == 15  # every record once: no loss, no duplicate
    assert (writer.stats.failures, log.attempts) == (3, 5)
    assert writer.stats.last_error == "ConnectionError: database unavailable (attempt 3)"
    assert sorted(log.window()["id"]) == [f"p{i:05d}" for i in range(15)]


def test_pii_features_are_scrubbed_before_they_are_written(log: PredictionLog) -> None:
    features = [
        FeatureSpec(name="x", type="numeric"),
        FeatureSpec(name="email", type="text", pii=True),
    ]
    scrubber = PiiScrubber(features, mode="hash", key=b"secret")
    writer = LogWriter(log, flush_interval=0.01, scrubbers={"m": scrubber})
    writer.start()
    writer.submit(entries(2))
    writer.submit(entries(1, start=2, model="other"))
    assert writer.wait_flushed(WAIT)
    writer.stop()
    scrubbed = log.window(model="m")
    assert scrubbed["email"].tolist() == [scrubber.token("0@a.b"), scrubber.token("1@a.b")]
    assert all(value.startswith("hmac:") for value in scrubbed["email"])
    assert log.window(model="other")["email"].tolist() == ["2@a.b"]  # no scrubber for it


def test_wait_flushed_commits_without_waiting_for_the_timer(log: PredictionLog) -> None:
    # An interval of an hour: only wait_flushed's wake-up can commit within the test's timeout.
    writer = LogWriter(log, flush_interval=3600.0)
    writer.start()
    writer.submit(entries(1))
    assert writer.wait_flushed(WAIT)
    writer.submit(entries(1, start=1))
    assert writer.wait_flushed(WAIT)
    assert log.count() == 2
    writer.stop()


class GapWriter(LogWriter):
    """Stops after each commit's callbacks, before the group-commit wait, until told to go on:
    the moment a wake-up used to be lost (it reached no waiting thread)."""

    def __init__(self, log: PredictionLog) -> None:
        super().__init__(log, flush_interval=3600.0)
        self.in_gap = threading.Event()
        self.go_on = threading.Event()
        self.committed_rows = 0
        self.second_commit = threading.Event()

    def _commit(self, batch: list[Any]) -> None:
        super()._commit(batch)
        self.committed_rows += sum(len(p.rows) for p in batch)
        if self.committed_rows >= 2:
            self.second_commit.set()

    def _finish(self, batch: list[Any], error: BaseException | None = None) -> None:
        super()._finish(batch, error)
        if batch and not self.go_on.is_set():
            self.in_gap.set()
            self.go_on.wait(WAIT)


@pytest.mark.parametrize("wake", ["wait_flushed", "durable submit"])
def test_a_commit_asked_for_while_the_writer_commits_is_not_lost(
    log: PredictionLog, wake: str
) -> None:
    # An interval of an hour: only the wake-up asked for in the gap can commit the second row.
    writer = GapWriter(log)
    writer.start()
    writer.submit(entries(1))
    assert writer.wait_flushed(WAIT)
    assert writer.in_gap.wait(WAIT)
    if wake == "wait_flushed":
        writer.submit(entries(1, start=1))
        assert not writer.wait_flushed(timeout=0)  # asks for the commit, does not wait
    else:
        writer.submit(entries(1, start=1), callback=lambda exc: None)
    writer.go_on.set()
    assert writer.second_commit.wait(WAIT), "the wake-up asked for during the gap was lost"
    assert log.count() == 2
    writer.stop()


class DownLog(PredictionLog):
    """A prediction log whose database is away for good."""

    def append(self, items: PredictionBatch | Sequence[PredictionBatch | PredictionRecord]) -> int:
        raise ConnectionError("database unavailable")


def test_a_stop_while_the_database_is_away_dead_letters_everything_and_says_so(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "dead" / "predictions.jsonl"
    writer = LogWriter(DownLog(engine), flush_interval=0.001, dead_letter_path=path)
    writer.start()
    writer.submit(entries(3))
    writer.submit(entries(4, start=3))
    with caplog.at_level(logging.WARNING, logger="modelpilot.inference"):
        writer.stop(timeout=0.2)
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [r["id"] for r in records] == [f"p{i:05d}" for i in range(7)]
    assert records[0]["error"] == "ConnectionError: database unavailable"
    assert records[0]["inputs"] == {"x": 0.0, "email": "0@a.b"}
    assert (writer.stats.dead_lettered, writer.stats.lost, writer.failed) == (7, 0, True)
    assert writer.queued == 0
    [give_up] = [r for r in caplog.records if "giving up" in r.message]
    assert (
        give_up.levelno == logging.ERROR
        and "7 records go to the dead-letter file" in give_up.message
    )
    assert (path.parent / "predictions.jsonl.reserve").stat().st_size == 16 * 1024 * 1024
    # Retries were reported, but not once per retry.
    reports = [r for r in caplog.records if "cannot be written" in r.message]
    assert 1 <= len(reports) <= 2


def test_records_that_cannot_reach_the_dead_letter_file_are_counted_lost(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    writer = LogWriter(
        DownLog(engine), flush_interval=0.001, dead_letter_path=blocker / "predictions.jsonl"
    )
    writer.start()
    writer.submit(entries(2))
    with caplog.at_level(logging.CRITICAL, logger="modelpilot.inference"):
        writer.stop(timeout=0.05)
    assert (writer.stats.dead_lettered, writer.stats.lost, writer.failed) == (0, 2, True)
    assert any("2 prediction-log records are LOST" in r.message for r in caplog.records)


def test_durable_requests_fail_with_503_when_their_commit_takes_too_long(
    engine: Engine,
) -> None:
    callbacks = Callbacks()
    writer = LogWriter(DownLog(engine), flush_interval=0.001, durable_timeout=0.05)
    writer.start()
    writer.submit(entries(2), callbacks)
    [error] = callbacks.wait(1)
    assert isinstance(error, LogUnavailable) and error.http_status == 503
    assert "durable mode a prediction is answered only once it is logged" in str(error)
    assert writer.queued == 0  # not answered, so not logged either
    assert writer.stats.expired == 2
    writer.stop(timeout=0.05)
    assert not writer.failed  # nothing answered was put aside


class PickyLog(PredictionLog):
    """Refuses for good any batch holding prediction id p00001 (a record it cannot store)."""

    def append(self, items: PredictionBatch | Sequence[PredictionBatch | PredictionRecord]) -> int:
        batches = items if isinstance(items, Sequence) else [items]
        if any("p00001" in list(getattr(b, "ids", [])) for b in batches):
            raise ValueError("cannot store p00001")
        return super().append(items)


def test_a_bad_group_is_dead_lettered_alone_and_the_others_are_committed_once(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "dead.jsonl"
    callbacks = Callbacks()
    log = PickyLog(engine)
    writer = LogWriter(log, flush_interval=0.01, dead_letter_path=path)
    bad = entries(1, start=1)
    writer.submit(entries(1))
    writer.submit(bad, callbacks)
    writer.submit(entries(1, start=2))
    writer.start()
    [error] = callbacks.wait(1)
    assert error is not None
    assert writer.wait_flushed(WAIT)
    writer.stop()
    assert sorted(log.window()["id"]) == ["p00000", "p00002"]
    assert [orjson.loads(line)["id"] for line in path.read_bytes().splitlines()] == ["p00001"]
