"""The background writer of the prediction log: group commit off the request path.

Requests hand their rows (:class:`~modelpilot.store.LogRows`, the one shape the writer takes)
to :meth:`LogWriter.submit` and return; a thread commits whatever has gathered every
``flush_interval`` seconds in one transaction, the rows of each model version joined into one
segment (``_logbatches.py``, which also scrubs PII). In durable mode a request waits for the
commit of its own rows before it answers. A full queue raises :class:`LogQueueFull` (the server
answers 503): rows are never dropped.

When the database fails:

- a commit that fails for a reason worth retrying (the database is away, busy, its disk full)
  is retried with back-off, keeping the rows; the writer says so in the server log at once and
  then at most every ``report_interval`` seconds (queue, age of the oldest record, error);
- in durable mode, a request that has waited ``durable_timeout`` seconds for its commit fails
  (:class:`LogUnavailable`, a 503) and its rows leave the queue: not answered, not logged;
- rows the database refuses for good (a bad record) go to the dead-letter file
  (:class:`~modelpilot.inference._deadletter.DeadLetterFile`), the rest are committed;
- at a stop, the writer keeps retrying until ``stop``'s ``timeout``; then everything it still
  holds goes to the dead-letter file, with an error naming the count. Records that could not
  even be written there are counted as *lost* and logged as such.

:attr:`LogWriter.failed` tells whether any record ended outside the database, so the process
can exit with a status that says so (``modelpilot serve`` exits 1).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from modelpilot.errors import ModelpilotError
from modelpilot.inference._deadletter import DeadLetterFile
from modelpilot.inference._logbatches import commit_batches
from modelpilot.inference._logfaults import (
    FailureReport,
    LogQueueFull,
    LogUnavailable,
    WriterStats,
    short_error,
    transient,
)
from modelpilot.store import LogRows, PiiScrubber, PredictionStore
from modelpilot.types import Clock

__all__ = ["LogQueueFull", "LogUnavailable", "LogWriter"]

logger = logging.getLogger("modelpilot.inference")

Callback = Callable[[BaseException | None], None]
_WAKE_BACKLOG = 1000


@dataclass(slots=True)
class _Pending:
    rows: LogRows
    callback: Callback | None
    enqueued: float
    seq: int


class LogWriter:
    """Commits log rows in groups from a background thread.

    Examples
    --------
    >>> from modelpilot.store import PredictionLog, create_database
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
        log: PredictionStore,
        *,
        flush_interval: float = 0.05,
        max_queue: int = 100_000,
        scrubbers: Mapping[str, PiiScrubber] | None = None,
        dead_letter_path: Path | None = None,
        dead_letter_reserve: int = 16 * 1024 * 1024,
        durable_timeout: float = 10.0,
        report_interval: float = 10.0,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self.log = log
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.scrubbers = dict(scrubbers or {})
        self.dead_letter_path = dead_letter_path
        self.dead_letters = (
            DeadLetterFile(dead_letter_path, reserve_bytes=dead_letter_reserve)
            if dead_letter_path is not None
            else None
        )
        self.durable_timeout = durable_timeout
        self.report_interval = report_interval
        self.monotonic = monotonic
        self.stats = WriterStats()
        self._failures = FailureReport(report_interval, max_queue)
        self._deadline = float("inf")
        # Set by stop(): ends a back-off pause at once (the queue's condition would also be
        # woken by every request, and retry at the rate they arrive).
        self._stop_event = threading.Event()
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._flushed = threading.Condition(self._lock)
        self._submitted_seq = 0
        self._committed_seq = 0
        # A commit was asked for (a durable submit, a backlog, wait_flushed): kept until the
        # writer takes the queue, so a request made while it commits is not lost (a notify
        # reaches only a thread already waiting).
        self._wake_requested = False
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
                self._wake_requested = True
                self._wake.notify()

    def dead_letter(self, rows: LogRows, exc: BaseException) -> None:
        """Keep rows the writer could not take (it stopped) in the dead-letter file."""
        self._dead_letter(_Pending(rows, None, self.monotonic(), 0), exc)

    @property
    def failed(self) -> bool:
        """Whether any record ended outside the database (dead-lettered or lost)."""
        return self.stats.dead_lettered + self.stats.lost > 0

    def wait_flushed(self, timeout: float | None = None) -> bool:
        """Block until everything submitted before the call is committed."""
        with self._lock:
            target = self._submitted_seq
            self._wake_requested = True
            self._wake.notify()
            return self._flushed.wait_for(lambda: self._committed_seq >= target, timeout)

    # ---- the thread -------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        if self.dead_letters is not None:
            self.dead_letters.reserve()
        # A log that spools appends (Delta) commits what an earlier process left, then starts
        # committing its spool every few seconds; the SQL log has nothing to start.
        self.log.start()
        self._thread = threading.Thread(target=self._run, name="modelpilot-log-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit everything queued, then stop the thread (the graceful-shutdown drain).

        While commits fail, the writer retries for up to ``timeout`` seconds; then what it
        still holds goes to the dead-letter file (see the module's docstring).
        """
        with self._lock:
            self._stopping = True
            self._deadline = self.monotonic() + timeout
            self._wake.notify()
        self._stop_event.set()
        thread = self._thread
        if thread is None:
            return
        # A commit may hang past the deadline (a database that does not answer): give it a
        # little longer, then keep what is queued in the dead-letter file from here.
        thread.join(timeout + 10.0)
        if thread.is_alive():
            hung = TimeoutError(f"a commit did not return within {timeout + 10.0:.0f} s")
            self._give_up(self._take_all(), hung)
        self._thread = None
        if not self.log.stop(timeout):
            # Not lost: the spool is on this machine's disk, and the next start commits it.
            logger.error("the prediction log's spool was not fully committed at the stop")

    def _take_all(self) -> list[_Pending]:
        """Everything queued, off the queue (the writer gives up on it)."""
        with self._lock:
            left = list(self._queue)
            self._queue.clear()
            self._queued_rows = 0
            self._committed_seq = self._submitted_seq  # nobody waits for these any more
            self._flushed.notify_all()
        return left

    def _run(self) -> None:
        backoff = self.flush_interval
        while True:
            with self._lock:
                if not self._queue and not self._stopping:
                    self._wake_requested = False  # nothing to commit: nothing to hurry
                    self._wake.wait(self.flush_interval)
                if not self._queue:
                    if self._stopping:
                        return
                    continue
                batch = list(self._queue)
                self._wake_requested = False
            try:
                self._commit(batch)
            except Exception as exc:  # keep the rows and try again: never drop them
                self.stats.failures += 1
                self.stats.last_error = f"{type(exc).__name__}: {short_error(exc)}"
                retry: BaseException | None = exc
                if not transient(exc):
                    # One bad group must not block everything queued behind it: commit the
                    # groups one by one, and put what can never be committed aside.
                    try:
                        self._isolate(batch)
                        retry = None
                    except Exception as again:  # the database went away meanwhile
                        retry = again
                if retry is not None:
                    now = self.monotonic()
                    self._failures.report(retry, now, self._queued_rows, self.lag_seconds)
                    if self._stopping and now >= self._deadline:
                        self._give_up(self._take_all(), retry)
                        return
                    self._expire_durable(now)
                    pause = min(backoff, 5.0)
                    if self._stopping:
                        pause = max(0.0, min(pause, self._deadline - now))
                    self._stop_event.wait(pause)
                    backoff *= 2
                    continue
                batch = []  # _isolate finished each of them
            self._failures.recovered(self.monotonic())
            backoff = self.flush_interval
            self._finish(batch)
            if not self._stopping:
                # Group commit: let the next group gather for up to one interval.
                with self._lock:
                    if not self._stopping and not self._wake_requested:
                        self._wake.wait(self.flush_interval)

    def _finish(self, batch: list[_Pending], error: BaseException | None = None) -> None:
        """Take committed (or dead-lettered) groups off the queue; call their callbacks."""
        if not batch:
            return
        with self._lock:
            for pending in batch:
                # Only the writer thread takes from the queue's head, except a stop that gave
                # up on a hung commit and emptied it: then there is nothing left to take.
                if self._queue and self._queue[0] is pending:
                    self._queue.popleft()
                    self._queued_rows -= len(pending.rows)
            self._committed_seq = max(self._committed_seq, batch[-1].seq)
            self._flushed.notify_all()
        for pending in batch:
            if pending.callback is not None:
                pending.callback(error)

    def _isolate(self, batch: list[_Pending]) -> None:
        """Commit each pending group alone; dead-letter the ones that fail for good. A
        transient failure is raised, with the groups done so far off the queue (no group is
        committed twice)."""
        for pending in batch:
            try:
                self._commit([pending])
            except Exception as exc:
                if transient(exc):
                    raise
                self._dead_letter(pending, exc)
                self._finish([pending], exc)
            else:
                self._finish([pending])

    def _expire_durable(self, now: float) -> None:
        """Fail the durable requests that waited too long for their commit (module doc)."""
        with self._lock:
            expired = [
                p
                for p in self._queue
                if p.callback is not None and now - p.enqueued >= self.durable_timeout
            ]
            if not expired:
                return
            gone = {id(p) for p in expired}
            self._queue = deque(p for p in self._queue if id(p) not in gone)
            self._queued_rows -= sum(len(p.rows) for p in expired)
        self.stats.expired += sum(len(p.rows) for p in expired)
        for pending in expired:
            if pending.callback is not None:
                pending.callback(LogUnavailable(now - pending.enqueued, self.stats.last_error))

    def _give_up(self, left: list[_Pending], exc: BaseException) -> None:
        """The writer stops while commits still fail: keep every record it holds aside."""
        rows = sum(len(p.rows) for p in left)
        if rows:
            logger.error(
                "giving up on the prediction log after %.1f s of failures (%s: %s): %d "
                "records go to the dead-letter file %s",
                self._failures.duration(self.monotonic()),
                type(exc).__name__,
                short_error(exc),
                rows,
                self.dead_letter_path,
            )
        for pending in left:
            self._dead_letter(pending, exc, quiet=True)
            if pending.callback is not None:
                pending.callback(exc)

    def _dead_letter(self, pending: _Pending, exc: BaseException, *, quiet: bool = False) -> None:
        # Not committed, not dropped: the rows go to a JSON-lines file a person can replay,
        # and the failure is counted and logged loudly.
        n = len(pending.rows)
        error = f"{type(exc).__name__}: {short_error(exc)}"
        try:
            if self.dead_letters is None:
                raise FileNotFoundError("no dead-letter file is configured")
            self.dead_letters.write(pending.rows, error)
        except Exception as failure:
            self.stats.lost += n
            logger.critical(
                "%d prediction-log records are LOST: they could not be committed (%s) nor "
                "written to the dead-letter file %s (%s: %s)",
                n,
                error,
                self.dead_letter_path,
                type(failure).__name__,
                failure,
            )
            return
        self.stats.dead_lettered += n
        if quiet:  # the caller said it for all of them at once
            return
        logger.error(
            "%d prediction-log records could not be committed (%s); kept in %s",
            n,
            error,
            self.dead_letter_path,
        )

    def _commit(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        written = self.log.append(commit_batches([p.rows for p in batch], self.scrubbers))
        self.stats.committed += written
        self.stats.commits += 1
        self.stats.last_commit_seconds = time.perf_counter() - started
        self.stats.last_flush = self.monotonic()
