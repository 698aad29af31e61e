"""The background writer of the prediction log: group commit off the request path.

Requests hand their rows (:class:`~modelpilot.store.LogRows`, the one shape the writer takes)
to :meth:`LogWriter.submit` and return; a thread commits whatever has gathered every
``flush_interval`` seconds in one transaction, the rows of each model version joined into one
segment. In durable mode a request waits for the commit of its own rows before it answers. A
full queue raises :class:`LogQueueFull` (the server answers 503): rows are never dropped. A
failing commit is retried with back-off, keeping the rows, until it succeeds or the writer is
stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from modelpilot.errors import ModelpilotError
from modelpilot.store import LogRows, PiiScrubber, PredictionBatch, PredictionLog, join_rows
from modelpilot.store import row_records as _row_records
from modelpilot.types import Clock

__all__ = ["LogQueueFull", "LogWriter"]

logger = logging.getLogger("modelpilot.inference")

Callback = Callable[[BaseException | None], None]
_WAKE_BACKLOG = 1000


def _transient(exc: BaseException) -> bool:
    """Errors worth retrying (the database is away or busy), as opposed to bad records."""
    from sqlalchemy.exc import DisconnectionError, OperationalError, TimeoutError

    if isinstance(exc, OperationalError | DisconnectionError | TimeoutError):
        return "no such table" not in str(exc)
    return isinstance(exc, OSError | ConnectionError)


class LogQueueFull(ModelpilotError):
    http_status = 503
    kind = "log_queue_full"

    def __init__(self, queued: int, limit: int) -> None:
        super().__init__(
            f"the prediction log writer is {queued:,} records behind (limit {limit:,}); the "
            "request was not processed, so nothing is lost: retry shortly, and check the "
            "database if this persists"
        )


@dataclass(slots=True)
class _Pending:
    rows: LogRows
    callback: Callback | None
    enqueued: float
    seq: int


@dataclass
class WriterStats:
    committed: int = 0
    commits: int = 0
    failures: int = 0
    dead_lettered: int = 0
    last_error: str | None = None
    last_commit_seconds: float = 0.0
    last_flush: float = field(default_factory=time.monotonic)


class LogWriter:
    """Commits log rows in groups from a background thread.

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> log = PredictionLog(create_database("sqlite://"))
    >>> writer = LogWriter(log, flush_interval=0.01)
    >>> writer.start()
    >>> writer.submit(LogRows("m", 1, ["p1"], 1.0, {"x": [1.0]}, [2.0]))
    >>> writer.stop()
    >>> log.count()
    1
    """

    def __init__(
        self,
        log: PredictionLog,
        *,
        flush_interval: float = 0.05,
        max_queue: int = 100_000,
        scrubbers: Mapping[str, PiiScrubber] | None = None,
        dead_letter_path: Path | None = None,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self.log = log
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.scrubbers = dict(scrubbers or {})
        self.dead_letter_path = dead_letter_path
        self.monotonic = monotonic
        self.stats = WriterStats()
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._flushed = threading.Condition(self._lock)
        self._submitted_seq = 0
        self._committed_seq = 0
        self._stopping = False
        self._thread: threading.Thread | None = None

    # ---- the request side -------------------------------------------------------------
    @property
    def queued(self) -> int:
        return self._queued_rows

    @property
    def lag_seconds(self) -> float:
        """Age of the oldest row not yet committed (0 when the queue is empty)."""
        with self._lock:
            if not self._queue:
                return 0.0
            return max(0.0, self.monotonic() - self._queue[0].enqueued)

    def check_capacity(self, n: int) -> None:
        if self._queued_rows + n > self.max_queue:
            raise LogQueueFull(self._queued_rows, self.max_queue)

    def submit(self, rows: LogRows, callback: Callback | None = None) -> None:
        """Queue rows; ``callback(None)`` runs after their commit (``callback(exc)`` if the
        writer stopped before it could commit them).

        The online server scores a micro-batch at a time; handing it over as one
        :class:`LogRows` costs one queue entry per batch instead of a record per prediction,
        and the commit joins the rows of many batches without converting row by row.
        """
        if len(rows) == 0:
            if callback is not None:
                callback(None)
            return
        with self._lock:
            if self._stopping and self._thread is None:
                raise ModelpilotError("the prediction log writer is stopped")
            self._submitted_seq += 1
            self._queue.append(_Pending(rows, callback, self.monotonic(), self._submitted_seq))
            self._queued_rows += len(rows)
            # Group commit: wake the writer only for a caller waiting on its commit (durable
            # mode) or a large backlog; otherwise it commits what gathered every interval.
            # Waking it per request made it commit ~4 rows at a time at low load, which cost
            # more CPU than the request itself (benchmarks/results/serving.md).
            if callback is not None or self._queued_rows >= _WAKE_BACKLOG:
                self._wake.notify()

    def dead_letter(self, rows: LogRows, exc: BaseException) -> None:
        """Keep rows the writer could not take (it stopped) in the dead-letter file."""
        self._dead_letter(_Pending(rows, None, self.monotonic(), 0), exc)

    def wait_flushed(self, timeout: float | None = None) -> bool:
        """Block until everything submitted before the call is committed."""
        with self._lock:
            target = self._submitted_seq
            self._wake.notify()
            return self._flushed.wait_for(lambda: self._committed_seq >= target, timeout)

    # ---- the thread -------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="modelpilot-log-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit everything queued, then stop the thread (the graceful-shutdown drain)."""
        with self._lock:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        backoff = self.flush_interval
        while True:
            with self._lock:
                if not self._queue and not self._stopping:
                    self._wake.wait(self.flush_interval)
                if not self._queue:
                    if self._stopping:
                        return
                    continue
                batch = list(self._queue)
            try:
                self._commit(batch)
            except Exception as exc:  # keep the rows and try again: never drop them
                self.stats.failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                if not _transient(exc):
                    # One bad group must not block everything queued behind it: commit the
                    # groups one by one, and put what can never be committed aside.
                    batch = self._isolate(batch)
                else:
                    if self._stopping and backoff > 5.0:
                        self._fail(batch, exc)
                        return
                    time.sleep(min(backoff, 5.0))
                    backoff *= 2
                    continue
            backoff = self.flush_interval
            with self._lock:
                for _ in batch:
                    done = self._queue.popleft()
                    self._queued_rows -= len(done.rows)
                self._committed_seq = batch[-1].seq
                self._flushed.notify_all()
            for pending in batch:
                if pending.callback is not None:
                    pending.callback(None)
            if not self._stopping:
                # Group commit: let the next group gather for up to one interval.
                with self._lock:
                    if not self._stopping:
                        self._wake.wait(self.flush_interval)

    def _isolate(self, batch: list[_Pending]) -> list[_Pending]:
        """Commit each pending group alone; dead-letter the ones that fail for good."""
        for pending in batch:
            try:
                self._commit([pending])
            except Exception as exc:
                if _transient(exc):
                    raise
                self._dead_letter(pending, exc)
        return batch

    def _dead_letter(self, pending: _Pending, exc: BaseException) -> None:
        # Not committed, not dropped: the rows go to a JSON-lines file a person can replay,
        # and the failure is counted and logged loudly.
        self.stats.dead_lettered += len(pending.rows)
        logger.error(
            "%d prediction-log records could not be committed (%s: %s); kept in %s",
            len(pending.rows),
            type(exc).__name__,
            exc,
            self.dead_letter_path,
        )
        if self.dead_letter_path is None:
            return
        self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
        error = f"{type(exc).__name__}: {exc}"
        with open(self.dead_letter_path, "ab") as handle:
            for record in _row_records(pending.rows):
                handle.write(
                    orjson.dumps(
                        {"error": error, **record},
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
                    )
                    + b"\n"
                )

    def _commit(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        groups: dict[tuple[Any, ...], list[LogRows]] = {}
        for pending in batch:
            groups.setdefault(pending.rows.key, []).append(pending.rows)
        batches: list[PredictionBatch] = []
        for parts in groups.values():
            try:
                joined = [join_rows(parts)]
            except Exception:  # a bug, not bad data: join each part alone, so others land
                logger.exception("joining %d log parts failed; joining them one by one", len(parts))
                joined = [join_rows([part]) for part in parts]
            batches += [self._scrubbed(part) for part in joined]
        written = self.log.append(batches)
        self.stats.committed += written
        self.stats.commits += 1
        self.stats.last_commit_seconds = time.perf_counter() - started
        self.stats.last_flush = self.monotonic()

    def _scrubbed(self, batch: PredictionBatch) -> PredictionBatch:
        scrub = self.scrubbers.get(batch.model)
        if scrub is None or not scrub.active:
            return batch
        import pandas as pd

        # A copy: a commit that is retried must not scrub (hash) the same values twice.
        scrubbed = scrub.frame(pd.DataFrame(dict(batch.inputs)))  # type: ignore[arg-type]
        return dataclasses.replace(batch, inputs=scrubbed)

    def _fail(self, batch: list[_Pending], exc: BaseException) -> None:
        for pending in batch:
            if pending.callback is not None:
                pending.callback(exc)
