"""Storage: the metadata database (SQLAlchemy + Alembic) and the prediction log."""

from modelpilot.store._db import create_database, resolve_url, upgrade
from modelpilot.store._predictions import (
    FeedbackItem,
    FeedbackResult,
    PredictionLog,
    PredictionRecord,
    new_ids,
)

__all__ = [
    "FeedbackItem",
    "FeedbackResult",
    "PredictionLog",
    "PredictionRecord",
    "create_database",
    "new_ids",
    "resolve_url",
    "upgrade",
]
