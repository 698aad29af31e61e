"""The prediction log the project file asks for (``logging.backend``)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Engine

from modelpilot.spec import LoggingSettings
from modelpilot.store._logstore import PredictionStore
from modelpilot.types import Clock

__all__ = ["open_prediction_log"]


def open_prediction_log(
    settings: LoggingSettings,
    *,
    engine: Engine,
    base_dir: Path,
    environ: Mapping[str, str],
    clock: Clock | None = None,
) -> PredictionStore:
    """The prediction log of ``logging.backend``: in the metadata database (``sql``) or as
    Delta tables (``delta``: relative paths are relative to ``base_dir``, ``s3://`` URLs reach
    their store with ``environ``'s ``AWS_*`` variables).

    Examples
    --------
    >>> import tempfile
    >>> from modelpilot.store import create_database
    >>> settings = LoggingSettings.model_validate({"backend": "delta"})
    >>> log = open_prediction_log(settings, engine=create_database("sqlite://"),
    ...                           base_dir=Path(tempfile.mkdtemp()), environ={})
    >>> type(log).__name__, log.uri.endswith(".modelpilot/log")
    ('DeltaPredictionLog', True)
    """
    now = time.time if clock is None else clock
    if settings.backend == "sql":
        from modelpilot.store._predictions import PredictionLog

        return PredictionLog(engine, clock=now)
    from modelpilot.store._delta import DeltaPredictionLog
    from modelpilot.store._delta_rows import storage_options

    delta = settings.delta
    uri = delta.uri
    if "://" not in uri and not Path(uri).is_absolute():
        uri = str(base_dir / uri)
    spool = Path(delta.spool)
    return DeltaPredictionLog(
        uri,
        storage_options=storage_options(uri, endpoint_url=delta.endpoint_url, environ=environ),
        spool=spool if spool.is_absolute() else base_dir / spool,
        commit_interval=delta.commit_interval_s,
        vacuum_retention_hours=delta.vacuum_retention_hours,
        clock=now,
    )
