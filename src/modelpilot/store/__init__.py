"""Storage: the metadata database (SQLAlchemy + Alembic) and the prediction log."""

from modelpilot.store._compaction import (
    CompactionResult,
    LogStats,
    compact_segments,
    log_stats,
)
from modelpilot.store._db import create_database, resolve_url, upgrade
from modelpilot.store._pii import PiiScrubber, load_pii_key
from modelpilot.store._predictions import (
    FeedbackItem,
    FeedbackResult,
    PredictionBatch,
    PredictionLog,
    PredictionRecord,
    new_ids,
)
from modelpilot.store._rows import LogRows, MatrixColumns, join_rows, output_columns, row_records

__all__ = [
    "CompactionResult",
    "FeedbackItem",
    "FeedbackResult",
    "LogRows",
    "LogStats",
    "MatrixColumns",
    "PiiScrubber",
    "PredictionBatch",
    "PredictionLog",
    "PredictionRecord",
    "compact_segments",
    "create_database",
    "join_rows",
    "load_pii_key",
    "log_stats",
    "new_ids",
    "output_columns",
    "resolve_url",
    "row_records",
    "upgrade",
]
