"""Devices' logs into the server's prediction log: ``source="edge"``, a ``device`` column,
keyed by the predictions' own ids so that an upload sent twice is stored once.

An upload (``POST /v1/edge/{deployment}/predictions``) is checked whole before anything is
written: every record must name a registered version of the deployment's model, carry an id,
a time, its inputs and its outputs; the problems of all records are listed at once (422). The
ids already in the log are left out (a retried batch, or part of one), the rest is appended in
one transaction, one segment per version and output shape; two uploads racing with the same ids
meet the primary key of ``prediction_ids``, and the loser filters again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy.exc import IntegrityError

from modelpilot.errors import ValidationFailed
from modelpilot.registry import ModelVersion
from modelpilot.store import PredictionBatch, PredictionStore, output_columns

__all__ = ["MAX_RECORDS", "IngestResult", "ingest"]

#: Records per upload: the device's default batch is 500.
MAX_RECORDS = 2000
_ID = re.compile(r"^[0-9A-Za-z_-]{1,32}$")
_OUTPUTS = frozenset({"prediction", "probabilities", "error"})


@dataclass
class IngestResult:
    accepted: int
    duplicates: int


def _problem(index: int, field: str, expected: str, got: Any) -> dict[str, Any]:
    return {"instance": index, "field": field, "expected": expected, "got": got}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check(
    index: int, record: Any, model: str, version_of: Callable[[int], ModelVersion | None]
) -> list[dict[str, Any]]:
    if not isinstance(record, Mapping):
        return [
            _problem(
                index,
                "(record)",
                "an object: id, ts, model, version, inputs, outputs",
                type(record).__name__,
            )
        ]
    problems = []
    if not isinstance(record.get("id"), str) or not _ID.match(record["id"]):
        problems.append(
            _problem(
                index, "id", "a prediction id (1-32 letters, digits, _ or -)", record.get("id")
            )
        )
    if not _number(record.get("ts")):
        problems.append(
            _problem(index, "ts", "a time in seconds since the epoch", record.get("ts"))
        )
    if record.get("model") != model:
        problems.append(
            _problem(index, "model", f"{model!r}, the deployment's model", record.get("model"))
        )
    version = record.get("version")
    known = (
        version_of(version) if isinstance(version, int) and not isinstance(version, bool) else None
    )
    if known is None:
        problems.append(_problem(index, "version", f"a registered version of {model}", version))
    inputs = record.get("inputs")
    if not isinstance(inputs, Mapping):
        problems.append(
            _problem(index, "inputs", "an object of feature values", type(inputs).__name__)
        )
    elif known is not None:
        extra = sorted(set(inputs) - {f.name for f in known.features})
        if extra:
            problems.append(_problem(index, "inputs", f"features of {model} v{version}", extra))
    outputs = record.get("outputs")
    if not isinstance(outputs, Mapping) or "prediction" not in outputs:
        problems.append(_problem(index, "outputs", 'an object with "prediction"', outputs))
    elif set(outputs) - _OUTPUTS:
        problems.append(
            _problem(
                index,
                "outputs",
                "prediction, probabilities, error",
                sorted(set(outputs) - _OUTPUTS),
            )
        )
    elif outputs.get("probabilities") is not None and not (
        isinstance(outputs["probabilities"], Mapping)
        and all(_number(v) for v in outputs["probabilities"].values())
    ):
        problems.append(
            _problem(
                index,
                "outputs.probabilities",
                "an object of class: number",
                outputs["probabilities"],
            )
        )
    latency = record.get("latency_ms")
    if latency is not None and not (_number(latency) and latency >= 0):
        problems.append(_problem(index, "latency_ms", "milliseconds, or null", latency))
    return problems


def _batches(
    model: str,
    device: str,
    records: Sequence[Mapping[str, Any]],
    version_of: Callable[[int], ModelVersion | None],
) -> list[PredictionBatch]:
    groups: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
    for record in records:
        classes = tuple((record["outputs"].get("probabilities") or {}).keys())
        groups.setdefault((record["version"], classes), []).append(record)
    batches = []
    for (version, classes), rows in groups.items():
        known = version_of(version)
        names = [f.name for f in known.features] if known is not None else []
        inputs = {name: [row["inputs"].get(name) for row in rows] for name in names}
        proba = None
        if classes:
            proba = np.array(
                [[row["outputs"]["probabilities"][c] for c in classes] for row in rows],
                dtype=np.float64,
            )
        outputs = output_columns(
            [row["outputs"]["prediction"] for row in rows],
            proba,
            list(classes) if classes else None,
        )
        errors = [row["outputs"].get("error") for row in rows]
        if any(e is not None for e in errors):
            outputs["error"] = errors
        outputs["device"] = [device] * len(rows)
        batches.append(
            PredictionBatch(
                model=model,
                version=int(version),
                ids=[row["id"] for row in rows],
                ts=[float(row["ts"]) for row in rows],
                inputs=inputs,
                outputs=outputs,
                source="edge",
                latency_ms=[row.get("latency_ms") for row in rows],
            )
        )
    return batches


def ingest(
    log: PredictionStore,
    *,
    model: str,
    device: str,
    records: Sequence[Any],
    version_of: Callable[[int], ModelVersion | None],
) -> IngestResult:
    """Check ``records`` and append those not logged yet (see the module's docstring)."""
    problems = [p for i, r in enumerate(records) for p in _check(i, r, model, version_of)]
    if problems:
        raise ValidationFailed(problems)
    unique: dict[str, Mapping[str, Any]] = {}
    for record in records:
        unique.setdefault(record["id"], record)

    def fresh() -> list[Mapping[str, Any]]:
        known = log.exists(list(unique))
        return [r for pid, r in unique.items() if pid not in known]

    new = fresh()
    try:
        log.append(_batches(model, device, new, version_of))
    except IntegrityError:  # another upload of the same ids committed in between: filter again
        new = fresh()
        log.append(_batches(model, device, new, version_of))
    return IngestResult(len(new), len(records) - len(new))
