"""A bundle's predictions as lines of the device's log (``_log.py``, ``_log_lines.py``).

Predictions of numeric rows are packed (format 2); the others (text inputs, pii features,
failed predictions) are JSON records (format 1), with pii features as the server's log keeps
them: keyed hashes, or left out. Either way the log reads back the same records, which a sync
uploads as they are.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._log import LocalLog
from ._log_lines import RowFormat

__all__ = ["PredictionLogWriter", "plain"]


def plain(value: Any) -> Any:
    """A value the log and the server's JSON can carry (no NaN: JSON has none)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class PredictionLogWriter:
    """Writes one bundle's predictions to ``log``."""

    def __init__(
        self,
        log: LocalLog,
        *,
        model: str,
        version: int,
        names: Sequence[str],
        classes: list[Any] | None,
        pii_fields: Sequence[str],
        pii_mode: str,
        pii_key: bytes,
        clock: Callable[[], float],
    ) -> None:
        self.log = log
        self.model, self.version, self.names, self.classes = model, version, names, classes
        self.pii_fields, self.pii_mode, self.pii_key = list(pii_fields), pii_mode, pii_key
        self.clock = clock
        # pii inputs are hashed into text, which only a JSON line holds.
        self.row_format = (
            None
            if self.pii_fields
            else RowFormat(model=model, version=version, inputs=names, classes=classes)
        )

    def write(
        self,
        ids: list[str],
        rows: Sequence[Sequence[float]] | None,
        columns: Mapping[str, Sequence[Any]] | None,
        predictions: Sequence[Any],
        proba: Sequence[Sequence[float]] | None,
        latency_ms: float,
        *,
        error: str | None = None,
    ) -> None:
        """Append the predictions ``ids`` (one ``write``)."""
        now = self.clock()
        form = self.row_format
        if form is not None and rows is not None and error is None:
            lines = [
                form.line(
                    pid,
                    now,
                    latency_ms,
                    rows[i],
                    predictions[i],
                    None if proba is None else proba[i],
                )
                for i, pid in enumerate(ids)
            ]
            packed = [line for line in lines if line is not None]
            if len(packed) == len(ids):  # else all as JSON: one format per append
                self.log.append_lines(packed, form.header)
                return
        names, classes = self.names, self.classes
        records = []
        for i, pid in enumerate(ids):
            if rows is not None:  # as the server logs them: floats (a JSON 3 is 3.0)
                inputs: dict[str, Any] = dict(zip(names, map(float, rows[i]), strict=True))
            else:
                inputs = {name: (columns or {})[name][i] for name in names}
            if self.pii_fields:
                inputs = self._scrub(inputs)
            outputs: dict[str, Any] = {"prediction": plain(predictions[i])}
            if error is not None:
                outputs["error"] = error
            elif proba is not None and classes is not None:
                outputs["probabilities"] = {
                    str(c): plain(p) for c, p in zip(classes, proba[i], strict=True)
                }
            records.append(
                {
                    "id": pid,
                    "ts": now,
                    "model": self.model,
                    "version": self.version,
                    "inputs": inputs,
                    "outputs": outputs,
                    "latency_ms": latency_ms,
                }
            )
        self.log.append(records)

    def _scrub(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """pii features as the server's log keeps them: keyed hashes (or left out)."""
        for name in self.pii_fields:
            if name not in inputs:
                continue
            if self.pii_mode == "drop":
                del inputs[name]
            elif inputs[name] is not None:
                digest = hmac.new(self.pii_key, str(inputs[name]).encode(), hashlib.sha256)
                inputs[name] = "hmac:" + digest.hexdigest()[:32]
        return inputs
