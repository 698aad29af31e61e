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

__all__ = [
    "CompactionResult",
    "FeedbackItem",
    "FeedbackResult",
    "LogStats",
    "PiiScrubber",
    "PredictionBatch",
    "PredictionLog",
    "PredictionRecord",
    "compact_segments",
    "create_database",
    "load_pii_key",
    "log_stats",
    "new_ids",
    "resolve_url",
    "upgrade",
]
