"""The background writer of the prediction log: group commit off the request path.

Requests hand their records to :meth:`LogWriter.submit` and return; a thread commits whatever
has gathered every ``flush_interval`` seconds in one transaction per model version. In durable
mode a request waits for the commit of its own records before it answers. A full queue raises
:class:`LogQueueFull` (the server answers 503): records are never dropped. A failing commit is
retried with back-off, keeping the records, until it succeeds or the writer is stopped.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from modelpilot.errors import ModelpilotError
from modelpilot.serving._outputs import output_columns
from modelpilot.store import PiiScrubber, PredictionBatch, PredictionLog

__all__ = [
    "LazyBatch",
    "LogEntry",
    "LogQueueFull",
    "LogWriter",
    "MatrixColumns",
    "RawPart",
    "join_parts",
]

logger = logging.getLogger("modelpilot.serving")

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


class MatrixColumns(Mapping[str, Any]):
    """The columns of a 2-D array, by name: the inputs of a micro-batch as the model got them.

    Reading a column slices the array; the writer concatenates the arrays of many
    micro-batches first, so each column is sliced once per commit, not once per batch.
    """

    __slots__ = ("matrix", "names")

    def __init__(self, matrix: Any, names: Sequence[str]) -> None:
        self.matrix = matrix
        self.names = tuple(names)

    def __getitem__(self, name: str) -> Any:
        return self.matrix[:, self.names.index(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


@dataclass(frozen=True, slots=True)
class RawPart:
    """A micro-batch's log rows as the model thread left them: numeric inputs in a matrix,
    one model version, every request logged. The writer joins the parts of a commit into one
    batch directly: at one connection a micro-batch is one row, and building a batch per part
    to concatenate them after cost ~15 us a row (``benchmarks/serving.py``)."""

    key: tuple[Any, ...]  # (model, version, input names, classes or None): parts that join
    matrix: Any  # n x len(names) float array
    predictions: list[Any]
    proba: Any  # n x len(classes) array, or None
    ids: list[str]
    ts: float
    latencies: list[tuple[float, int]]  # (latency in ms, rows) per request

    @property
    def n(self) -> int:
        return len(self.ids)


def join_parts(parts: Sequence[RawPart]) -> PredictionBatch:
    """One columnar batch of parts with the same key, in their order."""
    import numpy as np

    model, version, names, classes = parts[0].key
    proba = np.concatenate([part.proba for part in parts]) if classes is not None else None
    outputs = output_columns([x for part in parts for x in part.predictions], proba, classes)
    latencies = [pair for part in parts for pair in part.latencies]
    return PredictionBatch(
        model=model,
        version=version,
        ids=[i for part in parts for i in part.ids],
        ts=np.repeat([part.ts for part in parts], [part.n for part in parts]),
        inputs=MatrixColumns(np.concatenate([part.matrix for part in parts]), names),
        outputs=outputs,
        latency_ms=np.repeat([v for v, _ in latencies], [n for _, n in latencies]),
    )


class LazyBatch:
    """A micro-batch whose log rows the writer builds when it commits, off the event loop.

    ``build`` makes the columnar batch; if it fails (a bug, not bad data: the values were
    validated), ``rows`` makes the same rows one by one, so answered predictions still land.
    ``raw``, when given, is the same rows as a :class:`RawPart` the writer joins with others.
    """

    __slots__ = ("_build", "_rows", "n", "raw")

    def __init__(
        self,
        n: int,
        build: Callable[[], PredictionBatch],
        rows: Callable[[], list[LogEntry]],
        raw: RawPart | None = None,
    ) -> None:
        self.n = n
        self._build = build
        self._rows = rows
        self.raw = raw

    def __len__(self) -> int:
        return self.n

    def resolve(self) -> PredictionBatch | list[LogEntry]:
        try:
            return self._build()
        except Exception:
            logger.exception("building a log batch failed; logging its %d rows one by one", self.n)
            return self._rows()


@dataclass(slots=True)
class LogEntry:
    id: str
    ts: float
    model: str
    version: int
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    latency_ms: float | None = None
    source: str = "online"


@dataclass
class _Pending:
    entries: list[LogEntry]
    callback: Callback | None
    enqueued: float
    seq: int
    batch: PredictionBatch | LazyBatch | None = None  # a columnar micro-batch (fast path)

    @property
    def size(self) -> int:
        return len(self.batch) if self.batch is not None else len(self.entries)


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
    """Commits log entries in groups from a background thread.

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> log = PredictionLog(create_database("sqlite://"))
    >>> writer = LogWriter(log, flush_interval=0.01)
    >>> writer.start()
    >>> writer.submit([LogEntry("p1", 1.0, "m", 1, {"x": 1.0}, {"prediction": 2.0})])
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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.scrubbers = dict(scrubbers or {})
        self.dead_letter_path = dead_letter_path
        self.monotonic = monotonic
        self.stats = WriterStats()
        self._queue: deque[_Pending] = deque()
        self._queued_entries = 0
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
        return self._queued_entries

    @property
    def lag_seconds(self) -> float:
        """Age of the oldest record not yet committed (0 when the queue is empty)."""
        with self._lock:
            if not self._queue:
                return 0.0
            return max(0.0, self.monotonic() - self._queue[0].enqueued)

    def check_capacity(self, n: int) -> None:
        if self._queued_entries + n > self.max_queue:
            raise LogQueueFull(self._queued_entries, self.max_queue)

    def submit(self, entries: Sequence[LogEntry], callback: Callback | None = None) -> None:
        """Queue entries; ``callback(None)`` runs after their commit (``callback(exc)`` if the
        writer stopped before it could commit them)."""
        if not entries:
            if callback is not None:
                callback(None)
            return
        with self._lock:
            if self._stopping and self._thread is None:
                raise ModelpilotError("the prediction log writer is stopped")
            self._submitted_seq += 1
            self._queue.append(
                _Pending(list(entries), callback, self.monotonic(), self._submitted_seq)
            )
            self._queued_entries += len(entries)
            # Group commit: wake the writer only for a caller waiting on its commit (durable
            # mode) or a large backlog; otherwise it commits what gathered every interval.
            # Waking it per request made it commit ~4 rows at a time at low load, which cost
            # more CPU than the request itself (benchmarks/results/serving.md).
            if callback is not None or self._queued_entries >= _WAKE_BACKLOG:
                self._wake.notify()

    def submit_batch(
        self, batch: PredictionBatch | LazyBatch, callback: Callback | None = None
    ) -> None:
        """Queue one columnar micro-batch (inputs and outputs as mappings of columns).

        The online server scores a micro-batch at a time; handing it over as columns costs one
        queue entry per batch instead of a dictionary per prediction, and the commit
        concatenates the columns of many batches without converting row by row.
        """
        if len(batch) == 0:
            if callback is not None:
                callback(None)
            return
        with self._lock:
            if self._stopping and self._thread is None:
                raise ModelpilotError("the prediction log writer is stopped")
            self._submitted_seq += 1
            self._queue.append(_Pending([], callback, self.monotonic(), self._submitted_seq, batch))
            self._queued_entries += len(batch)
            if callback is not None or self._queued_entries >= _WAKE_BACKLOG:
                self._wake.notify()

    def dead_letter_batch(self, batch: PredictionBatch | LazyBatch, exc: BaseException) -> None:
        """Keep a micro-batch the writer could not take (it stopped) in the dead-letter file."""
        self._dead_letter(_Pending([], None, self.monotonic(), 0, batch), exc)

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
            except Exception as exc:  # keep the records and try again: never drop them
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
                    self._queued_entries -= done.size
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
        # Not committed, not dropped: the records go to a JSON-lines file a person can replay,
        # and the failure is counted and logged loudly.
        self.stats.dead_lettered += pending.size
        logger.error(
            "%d prediction-log records could not be committed (%s: %s); kept in %s",
            pending.size,
            type(exc).__name__,
            exc,
            self.dead_letter_path,
        )
        if self.dead_letter_path is None:
            return
        self.dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.dead_letter_path, "ab") as handle:
            for entry in pending.entries or _entries_of(_resolved(pending.batch)):
                handle.write(
                    orjson.dumps(
                        {
                            "error": f"{type(exc).__name__}: {exc}",
                            "id": entry.id,
                            "ts": entry.ts,
                            "model": entry.model,
                            "version": entry.version,
                            "source": entry.source,
                            "inputs": entry.inputs,
                            "outputs": entry.outputs,
                            "latency_ms": entry.latency_ms,
                        },
                        option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS,
                    )
                    + b"\n"
                )

    def _commit(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        groups: dict[tuple[str, int, str], list[LogEntry]] = {}
        chunks: dict[tuple[Any, ...], list[PredictionBatch]] = {}
        raw: dict[tuple[Any, ...], list[LazyBatch]] = {}
        for pending in batch:
            if isinstance(pending.batch, LazyBatch) and pending.batch.raw is not None:
                raw.setdefault(pending.batch.raw.key, []).append(pending.batch)
                continue
            if pending.batch is not None:
                resolved = _resolved(pending.batch)
                if resolved is None:
                    continue
                if isinstance(resolved, list):  # built row by row after a failure
                    for entry in resolved:
                        key3 = (entry.model, entry.version, entry.source)
                        groups.setdefault(key3, []).append(entry)
                    continue
                chunk = resolved
                key = (chunk.model, chunk.version, chunk.source, *chunk.inputs, "|", *chunk.outputs)
                chunks.setdefault(key, []).append(chunk)
            for entry in pending.entries:
                groups.setdefault((entry.model, entry.version, entry.source), []).append(entry)
        for lazies in raw.values():
            try:
                joined = [join_parts([lazy.raw for lazy in lazies if lazy.raw is not None])]
            except Exception:  # a bug, not bad data: build each part the slow way instead
                logger.exception(
                    "joining %d log parts failed; building them one by one", len(lazies)
                )
                joined = []
                for lazy in lazies:
                    resolved = lazy.resolve()
                    if isinstance(resolved, list):
                        for entry in resolved:
                            groups.setdefault(
                                (entry.model, entry.version, entry.source), []
                            ).append(entry)
                    else:
                        joined.append(resolved)
            for chunk in joined:
                key = (chunk.model, chunk.version, chunk.source, *chunk.inputs, "|", *chunk.outputs)
                chunks.setdefault(key, []).append(chunk)
        batches = [self._scrubbed(_concatenate(parts)) for parts in chunks.values()]
        for (model, version, source), entries in groups.items():
            scrub = self.scrubbers.get(model)
            inputs = [e.inputs for e in entries]
            if scrub is not None and scrub.active:
                inputs = [scrub.record(i) for i in inputs]
            batches.append(
                PredictionBatch(
                    model=model,
                    version=version,
                    source=source,
                    ids=[e.id for e in entries],
                    ts=[e.ts for e in entries],
                    inputs=inputs,
                    outputs=[e.outputs for e in entries],
                    latency_ms=[
                        float("nan") if e.latency_ms is None else e.latency_ms for e in entries
                    ],
                )
            )
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


def _concatenate(parts: list[PredictionBatch]) -> PredictionBatch:
    """One batch from micro-batches of one model version with the same columns."""
    if len(parts) == 1:
        return parts[0]
    import numpy as np

    def join(columns: list[Mapping[str, Any]]) -> Mapping[str, Any]:
        matrices = [c for c in columns if isinstance(c, MatrixColumns)]
        if len(matrices) == len(columns):
            return MatrixColumns(np.concatenate([c.matrix for c in matrices]), matrices[0].names)
        out: dict[str, Any] = {}
        for name in columns[0]:
            values = [c[name] for c in columns]
            if all(isinstance(v, np.ndarray) for v in values):
                out[name] = np.concatenate(values)
            else:
                out[name] = [x for v in values for x in v]
        return out

    first = parts[0]
    return PredictionBatch(
        model=first.model,
        version=first.version,
        source=first.source,
        ids=[i for p in parts for i in p.ids],
        ts=np.concatenate([np.asarray(p.ts, dtype=np.float64) for p in parts]),
        inputs=join([p.inputs for p in parts]),  # type: ignore[misc]
        outputs=join([p.outputs for p in parts]),  # type: ignore[misc]
        latency_ms=np.concatenate(
            [
                np.full(len(p), np.nan)
                if p.latency_ms is None
                else np.asarray(p.latency_ms, dtype=np.float64)
                for p in parts
            ]
        ),
    )


def _resolved(
    batch: PredictionBatch | LazyBatch | None,
) -> PredictionBatch | list[LogEntry] | None:
    return batch.resolve() if isinstance(batch, LazyBatch) else batch


def _entries_of(batch: PredictionBatch | list[LogEntry] | None) -> list[LogEntry]:
    """Row records of a columnar batch (for the dead-letter file, which is per row)."""
    if batch is None:
        return []
    if isinstance(batch, list):
        return batch
    inputs: Mapping[str, Any] = batch.inputs  # type: ignore[assignment]
    outputs: Mapping[str, Any] = batch.outputs  # type: ignore[assignment]
    latency: list[Any] = (
        list(batch.latency_ms) if batch.latency_ms is not None else [None] * len(batch)
    )
    return [
        LogEntry(
            pid,
            float(batch.ts[index]),
            batch.model,
            batch.version,
            {name: _item(column[index]) for name, column in inputs.items()},
            {name: _item(column[index]) for name, column in outputs.items()},
            None if latency[index] is None else float(latency[index]),
            batch.source,
        )
        for index, pid in enumerate(batch.ids)
    ]


def _item(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
