"""The Delta log's local spool: appends land on local disk, and are committed to the Delta
table every few seconds in one commit per process.

Why a spool: a Delta commit per micro-batch (every 50 ms) would write thousands of tiny files
and commits an hour, and an object store answers a commit in tens of milliseconds at best. So
an append is one Arrow IPC file written, fsync'd and renamed into the spool (what a durable
request waits for: answered means on this machine's disk), and a thread commits all spooled
files every ``interval`` seconds as one Delta commit, then deletes them.

Each process takes a slot of its own (``w0``, ``w1``, ...: an exclusive ``flock``, released by
the kernel when the process dies, even by kill -9) with a writer id kept in the slot. Every
commit records ``(writer id, number of its newest file)`` as a Delta transaction, so after a
crash between a commit and the deletion of its files, the files are recognised as committed and
not committed twice. A starting process commits what its slot holds, and what any free slot
holds (a server restarted with fewer workers).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from modelpilot.errors import DataError
from modelpilot.store._segments import decode, encode

__all__ = ["Spool", "SpoolTarget", "conflicting_rows"]

logger = logging.getLogger("modelpilot.store")

SUFFIX = ".arrows"


class SpoolTarget(Protocol):
    """Where a spool commits: the Delta log (a Protocol, so the spool is testable alone)."""

    def write(self, name: str, rows: pa.Table, *, txn: tuple[str, int] | None = None) -> None: ...

    def committed_version(self, app_id: str) -> int | None: ...


def conflicting_rows(root: Path) -> int:
    """The rows of the spool's files the Delta table refused (``w*/conflicts/``)."""
    return sum(decode(path.read_bytes()).num_rows for path in root.glob(f"w*/conflicts/*{SUFFIX}"))


def _fsync_dir(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class _Slot:
    """One process's directory in the spool, held with an exclusive lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: int | None = None
        self.writer_id = ""

    def acquire(self) -> bool:
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            return False
        self._handle = handle
        id_file = self.path / "writer-id"
        if not id_file.exists():
            tmp = self.path / "writer-id.tmp"
            tmp.write_text(uuid.uuid4().hex, encoding="utf-8")
            os.replace(tmp, id_file)
            _fsync_dir(self.path)
        self.writer_id = "modelpilot-" + id_file.read_text(encoding="utf-8").strip()
        return True

    def release(self) -> None:
        if self._handle is not None:
            os.close(self._handle)  # closing the descriptor releases the flock
            self._handle = None

    def files(self) -> list[tuple[int, Path]]:
        found = []
        for path in self.path.glob(f"*{SUFFIX}"):
            with contextlib.suppress(ValueError):
                found.append((int(path.stem), path))
        return sorted(found)


class Spool:
    """Spooled appends of one process, committed every ``interval`` seconds.

    Examples
    --------
    >>> import tempfile
    >>> class Table:
    ...     rows = 0
    ...     def write(self, name, rows, *, txn=None): Table.rows += rows.num_rows
    ...     def committed_version(self, app_id): return None
    >>> spool = Spool(Path(tempfile.mkdtemp()), Table(), interval=3600)
    >>> spool.open()
    >>> spool.add(pa.table({"id": ["a", "b"]}))
    >>> spool.pending, Table.rows
    (1, 0)
    >>> spool.close(timeout=5.0), spool.pending, Table.rows
    (True, 0, 2)
    """

    def __init__(self, root: Path, target: SpoolTarget, *, interval: float) -> None:
        self.root = root
        self.target = target
        self.interval = interval
        self._slot: _Slot | None = None
        self._lock = threading.Lock()  # the next file number
        self._upload_lock = threading.Lock()
        self._next = 1
        # The ids of this process's spooled rows, by file: feedback may name a prediction
        # before its commit, and must find it.
        self._spooled: dict[int, dict[str, tuple[str, int]]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.conflicts = 0  # spooled files the table refused for their columns' types

    def spooled(self, ids: set[str]) -> dict[str, tuple[str, int]]:
        """The model and version of those of ``ids`` this process spooled and has not
        committed yet."""
        with self._lock:
            return {
                pid: made
                for found in self._spooled.values()
                for pid, made in found.items()
                if pid in ids
            }

    @property
    def pending(self) -> int:
        """Spooled files not committed yet."""
        return len(self._slot.files()) if self._slot is not None else 0

    def open(self) -> None:
        """Take a slot, commit what this slot and every free one hold, start the thread."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        index = 0
        while True:
            slot = _Slot(self.root / f"w{index}")
            if slot.acquire():
                break
            index += 1
        self._slot = slot
        self._upload(slot)
        for other in sorted(self.root.glob("w*")):
            if other == slot.path or not other.is_dir():
                continue
            orphan = _Slot(other)
            if orphan.acquire():  # its process is gone: commit what it left
                try:
                    self._upload(orphan)
                finally:
                    orphan.release()
        files = slot.files()
        committed = self.target.committed_version(slot.writer_id) or 0
        self._next = max([committed, *(n for n, _ in files)]) + 1
        self._thread = threading.Thread(target=self._run, name="modelpilot-log-spool", daemon=True)
        self._thread.start()

    def add(self, rows: pa.Table) -> None:
        """Keep ``rows`` on local disk (written, fsync'd, renamed) until the next commit."""
        slot = self._slot
        if slot is None:
            raise RuntimeError("the spool is not open")
        with self._lock:
            number = self._next
            self._next += 1
            if {"id", "model", "version"} <= set(rows.column_names):
                self._spooled[number] = {
                    pid: (str(model), int(version))
                    for pid, model, version in zip(
                        rows["id"].to_pylist(),
                        rows["model"].to_pylist(),
                        rows["version"].to_pylist(),
                        strict=True,
                    )
                }
        tmp = slot.path / f".{number:016d}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(encode(rows))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, slot.path / f"{number:016d}{SUFFIX}")
        _fsync_dir(slot.path)

    def _run(self) -> None:
        backoff = self.interval
        while not self._stop.wait(backoff):
            try:
                if self._slot is not None:
                    self._upload(self._slot)
                backoff = self.interval
                self.last_error = None
            except Exception as exc:  # the store is away: the files wait on disk
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.warning(
                    "committing the spooled prediction log failed (%s); %d files wait in %s",
                    self.last_error,
                    self.pending,
                    self.root,
                )
                backoff = min(backoff * 2, 60.0)

    def _upload(self, slot: _Slot) -> int:
        """Commit every file of ``slot`` in one Delta commit; returns the rows committed."""
        with self._upload_lock:
            files = slot.files()
            if not files:
                return 0
            committed = self.target.committed_version(slot.writer_id)
            done = [path for number, path in files if committed is not None and number <= committed]
            todo = [(number, path) for number, path in files if path not in done]
            rows = 0
            if todo:
                tables = [decode(path.read_bytes()) for _, path in todo]
                try:
                    table = pa.concat_tables(tables, promote_options="permissive")
                    self.target.write("predictions", table, txn=(slot.writer_id, todo[-1][0]))
                    rows = table.num_rows
                except (DataError, pa.ArrowInvalid, pa.ArrowTypeError):
                    rows = self._one_by_one(slot, todo, tables)
            for path in done + [path for _, path in todo]:
                path.unlink(missing_ok=True)
            if slot is self._slot:  # an orphan slot's numbers are not this process's
                with self._lock:
                    for number, _ in files:
                        self._spooled.pop(number, None)
            return rows

    def _one_by_one(self, slot: _Slot, todo: list[tuple[int, Path]], tables: list[pa.Table]) -> int:
        """Commit the files one at a time, after a commit of all of them was refused for
        their columns' types (two processes logged a new feature with different types before
        either committed). A file the table refuses on its own is moved to ``conflicts/`` in
        the slot, kept, counted and logged as an error: it never blocks the commits after it,
        and it is not lost (``modelpilot log stats`` shows it)."""
        rows = 0
        for (number, path), table in zip(todo, tables, strict=True):
            try:
                self.target.write("predictions", table, txn=(slot.writer_id, number))
                rows += table.num_rows
            except (DataError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                kept = slot.path / "conflicts" / path.name
                kept.parent.mkdir(exist_ok=True)
                os.replace(path, kept)
                _fsync_dir(slot.path)
                self.conflicts += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                logger.error(
                    "%d spooled predictions conflict with the Delta table's columns and were "
                    "moved to %s, not committed (%s); fix the feature's type, then append that "
                    "file's rows again",
                    table.num_rows,
                    kept,
                    exc,
                )
        return rows

    def close(self, timeout: float = 30.0) -> bool:
        """Stop the thread and commit what is left (retrying until ``timeout``); whether
        everything spooled was committed: False while files wait in the spool (the next start
        commits them) or were set aside as conflicts."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        slot = self._slot
        if slot is None:
            return True
        deadline = time.monotonic() + timeout
        pause = 0.1
        while True:
            try:
                self._upload(slot)
                break
            except Exception as exc:
                if time.monotonic() + pause > deadline:
                    logger.error(
                        "the spooled prediction log could not be committed before the stop "
                        "(%s: %s): %d files stay in %s and are committed at the next start",
                        type(exc).__name__,
                        exc,
                        len(slot.files()),
                        slot.path,
                    )
                    break
                time.sleep(pause)
                pause = min(pause * 2, 2.0)
        empty = not slot.files()
        slot.release()
        self._slot = None
        return empty and not self.conflicts
