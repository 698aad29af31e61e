"""The dead-letter file: prediction-log records that could not be committed, kept for a replay.

The log writer puts here what the database refused for good, and, when it has to give up (a
stop while the database is away), everything it still holds. The file is JSON lines, one
record per line with the error that kept it out of the database.

A disk that is full is the likeliest reason the database refused the records, and then the
dead-letter file, on the same disk, could not take them either. So the writer keeps space for
it: a preallocated *reserve* file beside it, released the first time a write to the dead-letter
file finds the disk full, so that write (and the next ones, up to the reserve's size) lands.
"""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

import orjson

from modelpilot.store import LogRows
from modelpilot.store import row_records as _row_records

__all__ = ["DeadLetterFile"]

logger = logging.getLogger("modelpilot.inference")

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


class DeadLetterFile:
    """Appends log records to a JSON-lines file, with disk space kept in reserve for it.

    Examples
    --------
    >>> import tempfile
    >>> directory = Path(tempfile.mkdtemp())
    >>> dead = DeadLetterFile(directory / "predictions.jsonl", reserve_bytes=4096)
    >>> dead.reserve()
    >>> dead.write(LogRows("m", 1, ["p1"], 5.0, {"x": [1.5]}, [2.0]), "OperationalError: full")
    1
    >>> orjson.loads(dead.path.read_bytes())["error"]
    'OperationalError: full'
    """

    def __init__(self, path: Path, *, reserve_bytes: int = 16 * 1024 * 1024) -> None:
        self.path = path
        self.reserve_bytes = reserve_bytes
        self.reserve_path = path.with_name(path.name + ".reserve")

    def reserve(self) -> None:
        """Set the reserve aside (best effort: a failure is logged, not raised)."""
        if self.reserve_bytes <= 0:
            return
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(self.reserve_path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                # Allocated blocks, not a sparse file: a sparse one frees nothing when removed.
                os.posix_fallocate(descriptor, 0, self.reserve_bytes)
            finally:
                os.close(descriptor)
        except OSError as exc:
            logger.warning(
                "could not keep %d bytes in reserve for the dead-letter file (%s); if the "
                "disk fills up, records the database refuses may be lost",
                self.reserve_bytes,
                exc,
            )

    def release(self) -> bool:
        """Free the reserve; True when there was one."""
        try:
            self.reserve_path.unlink()
        except FileNotFoundError:
            return False
        logger.warning("the disk is full: released the dead-letter file's reserve")
        return True

    def write(self, rows: LogRows, error: str) -> int:
        """Append ``rows`` with ``error``; the number of records written. Raises OSError when
        they could not be written, even after releasing the reserve."""
        data = b"".join(
            orjson.dumps({"error": error, **record}, option=_OPTIONS) + b"\n"
            for record in _row_records(rows)
        )
        try:
            self._append(data)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT) or not self.release():
                raise
            self._append(data)
        return len(rows)

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        size = os.fstat(descriptor).st_size
        try:
            view = memoryview(data)
            while view:
                written = os.write(descriptor, view)
                view = view[written:]
            os.fsync(descriptor)
        except OSError:
            # No half line: a replay reads whole records, so cut back what went in.
            try:
                os.ftruncate(descriptor, size)
            except OSError:
                pass
            raise
        finally:
            os.close(descriptor)
