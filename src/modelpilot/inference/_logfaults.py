"""What the log writer says when the database fails: its errors, which failures are worth a
retry, a report of failing commits that does not flood the server log, and its counters."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from modelpilot.errors import ModelpilotError

__all__ = [
    "FailureReport",
    "LogQueueFull",
    "LogUnavailable",
    "WriterStats",
    "short_error",
    "transient",
]

logger = logging.getLogger("modelpilot.inference")


def transient(exc: BaseException) -> bool:
    """Errors worth retrying (the database is away, busy or its disk full), as opposed to
    bad records.

    Examples
    --------
    >>> transient(ConnectionError("refused")), transient(ValueError("bad row"))
    (True, False)
    """
    from sqlalchemy.exc import DisconnectionError, OperationalError, TimeoutError

    if isinstance(exc, OperationalError | DisconnectionError | TimeoutError):
        return "no such table" not in str(exc)
    return isinstance(exc, OSError | ConnectionError)


def short_error(exc: BaseException) -> str:
    """An error's text on one line, without SQLAlchemy's statement and parameters.

    Examples
    --------
    >>> short_error(OSError("disk full\\n[SQL: INSERT ...]"))
    'disk full'
    """
    text = str(getattr(exc, "orig", None) or exc).splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


class LogQueueFull(ModelpilotError):
    http_status = 503
    kind = "log_queue_full"

    def __init__(self, queued: int, limit: int) -> None:
        super().__init__(
            f"the prediction log writer is {queued:,} records behind (limit {limit:,}); the "
            "request was not processed, so nothing is lost: retry shortly, and check the "
            "database if this persists"
        )


class LogUnavailable(ModelpilotError):
    """Durable mode: the request's rows could not be committed in time, so it is not answered."""

    http_status = 503
    kind = "log_unavailable"

    def __init__(self, waited: float, error: str | None) -> None:
        super().__init__(
            f"the prediction log could not be written for {waited:.0f} s ({error or 'no error'}"
            "); in durable mode a prediction is answered only once it is logged, so this one "
            "was not made: retry later, and check the database and its disk"
        )


class FailureReport:
    """Says that commits fail: at the first failure, then at most every ``interval`` seconds,
    and once more when they succeed again.

    Examples
    --------
    >>> report = FailureReport(10.0, 1000)
    >>> [report.report(OSError("full"), t, 5, 0.0) for t in (0.0, 4.0, 10.5)]
    [True, False, True]
    >>> report.duration(12.0)
    12.0
    >>> report.recovered(12.0), report.duration(13.0)
    (True, 0.0)
    """

    def __init__(self, interval: float, limit: int) -> None:
        self.interval = interval
        self.limit = limit
        self.since: float | None = None
        self._reported_at = 0.0

    def duration(self, now: float) -> float:
        """How long commits have been failing (0 when they are not)."""
        return 0.0 if self.since is None else now - self.since

    def report(self, exc: BaseException, now: float, queued: int, lag: float) -> bool:
        """Record a failure; True when it was logged."""
        if self.since is None:
            self.since = now
        elif now - self._reported_at < self.interval:
            return False
        self._reported_at = now
        logger.warning(
            "the prediction log cannot be written for %.1f s (%s: %s); retrying, %d records "
            "queued (limit %d), the oldest %.1f s old",
            now - self.since,
            type(exc).__name__,
            short_error(exc),
            queued,
            self.limit,
            lag,
        )
        return True

    def recovered(self, now: float) -> bool:
        """A commit succeeded; True when that ended a run of failures (and was logged)."""
        if self.since is None:
            return False
        logger.warning(
            "the prediction log is written again after %.1f s of failures", now - self.since
        )
        self.since = None
        return True


@dataclass
class WriterStats:
    """What the writer committed, retried, dead-lettered and lost (``LogWriter.stats``)."""

    committed: int = 0
    commits: int = 0
    failures: int = 0
    dead_lettered: int = 0
    #: Records neither committed nor written to the dead-letter file.
    lost: int = 0
    #: Durable requests failed because their commit took longer than ``durable_timeout``.
    expired: int = 0
    last_error: str | None = None
    last_commit_seconds: float = 0.0
    last_flush: float = field(default_factory=time.monotonic)
