"""The device's prediction log: append-only files that survive a crash, bounded in size.

Each prediction is one line, ``<crc32 in hex> <payload>\\n`` (``_log_lines.py``: a packed line
for numeric inputs, format 2, else a JSON object, format 1), appended with one ``write`` to the
newest segment file (``segments/0000000001.log``, ...) before the prediction is answered. So:

- **kill -9** loses nothing that was answered: the line is in the operating system's page
  cache when ``predict`` returns, and the kernel writes it out whatever happens to the process;
- **power loss** loses at most what was written since the last ``fsync``. ``LogPolicy.fsync``:
  ``"always"`` (every append, ~ms each on flash), ``"interval"`` (the default: at the first
  append after ``fsync_interval_s``, 1 s; at most that much is lost), ``"never"`` (the OS
  decides, typically within 30 s);
- a line torn by a crash (the tail of the last segment without its newline) is cut off when
  the log opens: it was never answered. A line whose checksum fails is skipped and counted.

The log is bounded: a segment is closed at ``segment_bytes``; past ``max_bytes`` in all, the
oldest segment is deleted. Its predictions not yet synced are counted in ``dropped`` (kept in
``state.json``, logged as a warning, and reported to the server at every sync): never silently.

``state.json`` also keeps the sync cursor: the position (segment, byte offset) up to which the
server acknowledged the log. It is replaced atomically (write, fsync, rename), so a sync that
is interrupted resumes from the last acknowledged batch; uploading a batch twice is harmless
(the server keys predictions by id).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ._errors import EdgeError
from ._log_lines import decode_line, encode_line, is_header

__all__ = ["Cursor", "LocalLog", "LogPolicy", "encode_line"]


def _warn(message: str, *args: object) -> None:
    """A warning on the ``modelpilot_edge`` logger. logging is imported here, when there is
    something to say: importing it costs ~12 ms of a device's start-up."""
    import logging

    logging.getLogger("modelpilot_edge").warning(message, *args)


Cursor = tuple[int, int]  # (segment number, byte offset in it)


@dataclass(frozen=True)
class LogPolicy:
    """How the log writes and how large it may grow (see the module's docstring)."""

    fsync: Literal["always", "interval", "never"] = "interval"
    fsync_interval_s: float = 1.0
    segment_bytes: int = 4 * 2**20
    max_bytes: int = 256 * 2**20

    def __post_init__(self) -> None:
        if self.fsync not in ("always", "interval", "never"):
            raise ValueError(f"fsync must be always, interval or never, got {self.fsync!r}")
        if self.segment_bytes < 1024 or self.max_bytes < 2 * self.segment_bytes:
            raise ValueError(
                "segment_bytes must be at least 1024 and max_bytes at least two segments, got "
                f"{self.segment_bytes} and {self.max_bytes}"
            )


class LocalLog:
    """An append-only, crash-safe, bounded log of predictions in ``directory``.

    One process writes a log at a time (a lock file says so); within it, threads may share it.

    Examples
    --------
    >>> import tempfile
    >>> log = LocalLog(tempfile.mkdtemp())
    >>> log.append([{"id": "p1"}, {"id": "p2"}])
    >>> records, cursor = log.pending(10)
    >>> [r["id"] for r in records], log.pending_count()
    (['p1', 'p2'], 2)
    >>> log.acknowledge(cursor)
    >>> log.pending(10)[0], log.pending_count()
    ([], 0)
    >>> log.close()
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        policy: LogPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = Path(directory)
        self.policy = policy or LogPolicy()
        self.clock = clock
        self.segments_dir = self.directory / "segments"
        self.segments_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._lock_file = self._take_lock()
        self._state_path = self.directory / "state.json"
        state = self._read_state()
        self.cursor: Cursor = (int(state["cursor"][0]), int(state["cursor"][1]))
        self.dropped = int(state.get("dropped", 0))
        self.corrupt = int(state.get("corrupt", 0))
        numbers = self._numbers()
        if not numbers:
            numbers = [max(1, self.cursor[0])]
        self._current = numbers[-1]
        self._cut_torn_tail(self._path(self._current))
        self._fd = os.open(self._path(self._current), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self._size = os.fstat(self._fd).st_size
        self._total = sum(self._path(n).stat().st_size for n in numbers if self._path(n).exists())
        self._last_fsync = self.clock()
        self._dirty = False
        # The format-2 header written last in the current segment (None: write it again
        # before the next packed line, as after a restart or a new segment).
        self._header: bytes | None = None

    # ---- files --------------------------------------------------------------------------
    def _take_lock(self) -> Any:
        handle = open(self.directory / "lock", "a+b")  # held while the log is open
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, one writer by convention
            return handle
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise EdgeError(
                f"another process writes to the log in {self.directory}; one process at a "
                "time may hold a device's log (close the other runner first)"
            ) from None
        return handle

    def _path(self, number: int) -> Path:
        return self.segments_dir / f"{number:010d}.log"

    def _numbers(self) -> list[int]:
        return sorted(int(p.stem) for p in self.segments_dir.glob("*.log") if p.stem.isdigit())

    def _read_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self._state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"cursor": [1, 0], "dropped": 0, "corrupt": 0}
        except ValueError:
            raise EdgeError(
                f"{self._state_path} is not readable JSON; it holds the sync cursor: restore "
                "it, or delete it to upload the whole log again (the server ignores duplicates)"
            ) from None
        return state

    def _write_state(self) -> None:
        state = {"cursor": list(self.cursor), "dropped": self.dropped, "corrupt": self.corrupt}
        temporary = self._state_path.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            handle.write(json.dumps(state).encode())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._state_path)
        _fsync_directory(self.directory)

    @staticmethod
    def _cut_torn_tail(path: Path) -> None:
        """Cut a last line without its newline: a write a crash interrupted (never answered)."""
        if not path.exists():
            return
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with open(path, "r+b") as handle:
                handle.truncate(keep)
                os.fsync(handle.fileno())
            _warn("cut a torn last line (%d bytes) off %s", len(data) - keep, path)

    # ---- writing ------------------------------------------------------------------------
    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Write ``records`` as JSON lines (one ``write``); returns once the OS has them (see
        fsync)."""
        self._write(b"".join(encode_line(record) for record in records), None)

    def append_lines(self, lines: Sequence[bytes], header: bytes) -> None:
        """Write packed lines (``RowFormat.line``) that ``header`` describes (one ``write``,
        the header first where the segment does not have it yet)."""
        self._write(b"".join(lines), header)

    def _write(self, data: bytes, header: bytes | None) -> None:
        with self._lock:
            if self._size and self._size + len(data) > self.policy.segment_bytes:
                self._rotate()
            if header is not None and header != self._header:
                data = header + data
                self._header = header
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self._size += len(data)
            self._total += len(data)
            self._dirty = True
            policy = self.policy
            if policy.fsync == "always" or (
                policy.fsync == "interval"
                and self.clock() - self._last_fsync >= policy.fsync_interval_s
            ):
                self._sync_file()
            if self._total > policy.max_bytes:
                self._drop_oldest()

    def _sync_file(self) -> None:
        os.fsync(self._fd)
        self._last_fsync = self.clock()
        self._dirty = False

    def _rotate(self) -> None:
        if self.policy.fsync != "never":
            self._sync_file()
        os.close(self._fd)
        self._current += 1
        self._fd = os.open(
            self._path(self._current), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600
        )
        self._size = 0
        self._header = None
        _fsync_directory(self.segments_dir)

    def _drop_oldest(self) -> None:
        """Delete the oldest segments until the log fits; count what was not synced."""
        numbers = self._numbers()
        lost = 0
        while self._total > self.policy.max_bytes and len(numbers) > 1:
            oldest = numbers.pop(0)
            path = self._path(oldest)
            size = path.stat().st_size
            segment, offset = self.cursor
            if segment <= oldest:
                lost += _count_lines(path, offset if segment == oldest else 0)
                self.cursor = (numbers[0], 0)
            path.unlink()
            self._total -= size
        if lost:
            self.dropped += lost
            _warn(
                "the prediction log in %s reached %d bytes: dropped its oldest %d predictions "
                "that were not synced (%d dropped in all; sync more often or raise max_bytes)",
                self.directory,
                self.policy.max_bytes,
                lost,
                self.dropped,
            )
        self._write_state()

    # ---- reading ------------------------------------------------------------------------
    def _lines_from(
        self, cursor: Cursor, headers: dict[bytes, dict[str, Any]]
    ) -> Iterator[tuple[bytes, Cursor]]:
        """Complete record lines from ``cursor`` on, each with the position just after it
        (a header line gives ``b""``: the cursor moves past it). Format-2 headers met on the
        way, before the cursor too, are added to ``headers``."""
        for number in self._numbers():
            if number < cursor[0]:
                continue
            offset = cursor[1] if number == cursor[0] else 0
            with open(self._path(number), "rb") as handle:
                data = handle.read()
            if offset:  # the headers the records after the cursor may name
                for line in data[:offset].split(b"\n"):
                    if is_header(line):
                        decode_line(line, headers)
            position = offset
            for line in data[offset:].split(b"\n")[:-1]:  # the last: unfinished, or b""
                position += len(line) + 1
                if is_header(line):
                    decode_line(line, headers)
                    line = b""
                yield line, (number, position)
            if number != self._current:
                yield b"", (number + 1, 0)  # a segment read to its end: the cursor moves on

    def pending(self, limit: int) -> tuple[list[dict[str, Any]], Cursor]:
        """Up to ``limit`` records not yet acknowledged, and the cursor just after them."""
        records: list[dict[str, Any]] = []
        cursor = self.cursor
        corrupt = 0
        headers: dict[bytes, dict[str, Any]] = {}
        with self._lock:
            for line, after in self._lines_from(self.cursor, headers):
                if line:
                    record = decode_line(line, headers)
                    if record is None:
                        corrupt += 1
                    else:
                        if len(records) == limit:
                            break
                        records.append(record)
                cursor = after
        if corrupt:
            self.corrupt += corrupt
            _warn("skipped %d damaged line(s) in %s", corrupt, self.segments_dir)
        return records, cursor

    def pending_count(self) -> int:
        """How many records are not yet acknowledged by the server."""
        with self._lock:
            return sum(1 for line, _ in self._lines_from(self.cursor, {}) if line)

    def acknowledge(self, cursor: Cursor) -> None:
        """The server has everything before ``cursor``: remember it (atomically)."""
        with self._lock:
            if cursor > self.cursor:
                self.cursor = cursor
                self._write_state()

    def recent(self, n: int) -> list[dict[str, Any]]:
        """The newest ``n`` records (synced or not), oldest first."""
        with self._lock:
            numbers = self._numbers()
            found: list[dict[str, Any]] = []
            for number in reversed(numbers):
                lines = self._path(number).read_bytes().split(b"\n")[:-1]
                headers: dict[bytes, dict[str, Any]] = {}  # each segment holds its own
                decoded = [r for r in (decode_line(x, headers) for x in lines) if r]
                found = decoded + found
                if len(found) >= n:
                    break
            return found[-n:] if n else []

    def stats(self) -> dict[str, Any]:
        """Bytes, segments, records waiting for a sync, and what was dropped or damaged."""
        return {
            "bytes": self._total,
            "segments": len(self._numbers()),
            "pending": self.pending_count(),
            "dropped": self.dropped,
            "corrupt": self.corrupt,
        }

    def close(self) -> None:
        """fsync what is unsynced (unless the policy is ``never``) and release the log."""
        with self._lock:
            if self._fd < 0:
                return
            if self._dirty and self.policy.fsync != "never":
                self._sync_file()
            os.close(self._fd)
            self._fd = -1
            self._lock_file.close()

    def __enter__(self) -> LocalLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _count_lines(path: Path, offset: int) -> int:
    """The records (not the format-2 headers) in ``path`` from ``offset`` on."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        lines = handle.read().split(b"\n")[:-1]
    return sum(1 for line in lines if not is_header(line))


def _fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (POSIX; elsewhere a no-op)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
