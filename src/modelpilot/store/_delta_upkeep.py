"""Size and upkeep of the Delta log: its statistics (read from the Delta log's file statistics,
not from the data), and OPTIMIZE and VACUUM of both tables (the leader's compaction)."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from modelpilot.store._leases import Lease
from modelpilot.store._logstore import CompactionResult, LogStats, Progress

if TYPE_CHECKING:
    from deltalake import DeltaTable

__all__ = ["DeltaUpkeep"]


class DeltaUpkeep(abc.ABC):
    """The size-and-upkeep part of :class:`~modelpilot.store.DeltaPredictionLog`."""

    spool: Path | None
    vacuum_retention_hours: float

    @abc.abstractmethod
    def _table(self, name: str) -> DeltaTable | None: ...

    @abc.abstractmethod
    def count(self, *, model: str | None = None, source: str | None = None) -> int: ...

    def stats(self) -> LogStats:
        """Rows, data files and their bytes in the predictions table (read from the Delta
        log's file statistics, not from the data)."""
        from modelpilot.store._delta_spool import conflicting_rows

        held = conflicting_rows(self.spool) if self.spool is not None else 0
        table = self._table("predictions")
        if table is None:
            return LogStats(0, 0, 0, held)
        actions = pa.table(table.get_add_actions(flatten=True))
        rows = actions["num_records"] if "num_records" in actions.column_names else None
        return LogStats(
            int(pc.sum(rows).as_py() or 0) if rows is not None else self.count(),
            actions.num_rows,
            int(pc.sum(actions["size_bytes"]).as_py() or 0),
            held,
        )

    def compact(
        self,
        *,
        older_than: float,
        target_rows: int = 0,
        fence: Lease | None = None,
        progress: Progress | None = None,
    ) -> CompactionResult:
        """OPTIMIZE (the small files of each day and model rewritten into large ones), then
        VACUUM (files no version of the last ``vacuum_retention_hours`` reads are deleted), on
        both tables. ``older_than``, ``target_rows`` and ``fence`` are the SQL backend's:
        delta-rs bins files by bytes (100 MB by default), a file being appended is never
        rewritten, and a second leader's OPTIMIZE is a conflicting commit Delta refuses, so
        there is nothing to fence. ``progress`` counts four steps: OPTIMIZE and VACUUM of
        each table."""
        merged = written = removed = 0
        for step, name in enumerate(("predictions", "labels")):
            table = self._table(name)
            if table is None:
                if progress is not None:
                    progress(2 * step + 2, 4)
                continue
            # Today's files too: a drift window reads the last hour, and a replica commits every
            # few seconds. OPTIMIZE only removes files, so concurrent appends do not conflict.
            metrics = table.optimize.compact()
            merged += int(metrics.get("numFilesRemoved", 0))
            written += int(metrics.get("numFilesAdded", 0))
            if progress is not None:
                progress(2 * step + 1, 4)
            removed += len(
                table.vacuum(
                    retention_hours=int(self.vacuum_retention_hours),
                    dry_run=False,
                    enforce_retention_duration=False,
                )
            )
            if progress is not None:
                progress(2 * step + 2, 4)
        return CompactionResult(merged, written, 0, 0, removed)
