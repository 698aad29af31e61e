"""What one commit of the log writer writes: the rows of each model version joined into one
batch, their PII features scrubbed (``_logwriter.py`` decides when and how reliably)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from modelpilot.store import LogRows, PiiScrubber, PredictionBatch, join_rows

__all__ = ["commit_batches"]

logger = logging.getLogger("modelpilot.inference")


def commit_batches(
    rows: Sequence[LogRows], scrubbers: Mapping[str, PiiScrubber]
) -> list[PredictionBatch]:
    """``rows`` grouped by model version, each group joined into one scrubbed batch."""
    groups: dict[tuple[Any, ...], list[LogRows]] = {}
    for part in rows:
        groups.setdefault(part.key, []).append(part)
    batches: list[PredictionBatch] = []
    for parts in groups.values():
        try:
            joined = [join_rows(parts)]
        except Exception:  # a bug, not bad data: join each part alone, so others land
            logger.exception("joining %d log parts failed; joining them one by one", len(parts))
            joined = [join_rows([part]) for part in parts]
        batches += [_scrubbed(part, scrubbers) for part in joined]
    return batches


def _scrubbed(batch: PredictionBatch, scrubbers: Mapping[str, PiiScrubber]) -> PredictionBatch:
    scrub = scrubbers.get(batch.model)
    if scrub is None or not scrub.active:
        return batch
    import pandas as pd

    # A copy: a commit that is retried must not scrub (hash) the same values twice.
    scrubbed = scrub.frame(pd.DataFrame(dict(batch.inputs)))  # type: ignore[arg-type]
    return dataclasses.replace(batch, inputs=scrubbed)
