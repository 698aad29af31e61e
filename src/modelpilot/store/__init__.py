"""Storage: the metadata database (SQLAlchemy + Alembic) and the prediction log."""

from typing import TYPE_CHECKING

from modelpilot._lazy import lazy_exports

if TYPE_CHECKING:
    from modelpilot.store._compaction import compact_segments, log_stats
    from modelpilot.store._db import create_database, resolve_url, upgrade
    from modelpilot.store._delta import DeltaPredictionLog
    from modelpilot.store._export import newest_rows, write_frames
    from modelpilot.store._leases import (
        Lease,
        LeaseLost,
        LeaseTable,
        check_fence,
        current_fence,
        fenced,
        uses_database_time,
    )
    from modelpilot.store._logstore import (
        CompactionResult,
        LogScan,
        LogStats,
        PredictionStore,
        Progress,
    )
    from modelpilot.store._open import open_prediction_log
    from modelpilot.store._pii import PiiScrubber, load_pii_key
    from modelpilot.store._predictions import (
        FeedbackItem,
        FeedbackResult,
        PredictionBatch,
        PredictionLog,
        PredictionRecord,
        new_ids,
    )
    from modelpilot.store._rows import (
        LogRows,
        MatrixColumns,
        join_rows,
        output_columns,
        row_records,
    )
    from modelpilot.store._sql import floor_int

__all__ = [
    "CompactionResult",
    "DeltaPredictionLog",
    "FeedbackItem",
    "FeedbackResult",
    "Lease",
    "LeaseLost",
    "LeaseTable",
    "LogRows",
    "LogScan",
    "LogStats",
    "MatrixColumns",
    "PiiScrubber",
    "PredictionBatch",
    "PredictionLog",
    "PredictionRecord",
    "PredictionStore",
    "Progress",
    "check_fence",
    "compact_segments",
    "create_database",
    "current_fence",
    "fenced",
    "floor_int",
    "join_rows",
    "load_pii_key",
    "log_stats",
    "new_ids",
    "newest_rows",
    "open_prediction_log",
    "output_columns",
    "resolve_url",
    "row_records",
    "upgrade",
    "uses_database_time",
    "write_frames",
]

# Each name is imported on first use (PEP 562): a command that only reads the metadata
# database (`models list`, `alerts`) should not pay for pandas and pyarrow.
_SOURCES = {
    "_compaction": ("compact_segments", "log_stats"),
    "_db": ("create_database", "resolve_url", "upgrade"),
    "_delta": ("DeltaPredictionLog",),
    "_export": ("newest_rows", "write_frames"),
    "_logstore": ("CompactionResult", "LogScan", "LogStats", "PredictionStore", "Progress"),
    "_open": ("open_prediction_log",),
    "_leases": (
        "Lease",
        "LeaseLost",
        "LeaseTable",
        "check_fence",
        "current_fence",
        "fenced",
        "uses_database_time",
    ),
    "_pii": ("PiiScrubber", "load_pii_key"),
    "_predictions": (
        "FeedbackItem",
        "FeedbackResult",
        "PredictionBatch",
        "PredictionLog",
        "PredictionRecord",
        "new_ids",
    ),
    "_rows": ("LogRows", "MatrixColumns", "join_rows", "output_columns", "row_records"),
    "_sql": ("floor_int",),
}

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name
    __getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
