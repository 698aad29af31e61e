"""The prediction log: every prediction modelpilot makes, and the labels that arrive later.

Why one SQL table with JSON columns rather than Parquet segments: a batch of records is one
transaction, so "answered means logged" (durable serving) is a single commit, the same on SQLite
and PostgreSQL, and feedback can be checked against prediction ids with an index lookup. The
write path hands pre-serialised rows straight to the driver's ``executemany`` (no ORM, no
per-row SQLAlchemy processing), which keeps appends well above 100,000 rows/s on SQLite
(``benchmarks/log_throughput.py``). See ``docs/architecture.md``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pandas as pd
from sqlalchemy import Engine, bindparam, select, text

from modelpilot.store._tables import feedback, predictions

__all__ = ["FeedbackItem", "FeedbackResult", "PredictionLog", "PredictionRecord", "new_ids"]

FEEDBACK_KINDS = ("label", "redo", "correction")


def new_ids(n: int, *, clock: Callable[[], float] = time.time) -> list[str]:
    """``n`` unique, time-ordered prediction ids (48-bit milliseconds + 80 random bits, in hex).

    Examples
    --------
    >>> ids = new_ids(3, clock=lambda: 1_700_000_000.0)
    >>> len(ids), len(set(ids)), ids[0][:12]
    (3, 3, '018bcfe56800')
    """
    prefix = f"{int(clock() * 1000):012x}"
    noise = os.urandom(10 * n).hex()
    return [prefix + noise[i * 20 : (i + 1) * 20] for i in range(n)]


@dataclass(frozen=True, slots=True)
class PredictionRecord:
    """One logged prediction. ``inputs``/``outputs`` are dicts or already-serialised JSON."""

    id: str
    ts: float
    model: str
    version: int
    inputs: dict[str, Any] | str
    outputs: dict[str, Any] | str
    source: str = "online"
    batch_id: str | None = None
    latency_ms: float | None = None

    def as_row(self) -> tuple[Any, ...]:
        return (
            self.id,
            self.ts,
            self.model,
            self.version,
            self.source,
            self.batch_id,
            self.latency_ms,
            _json(self.inputs),
            _json(self.outputs),
        )


def _json(value: dict[str, Any] | str) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS).decode()


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """A ground-truth label (or a 'redo' / 'correction' event) for one prediction."""

    prediction_id: str
    label: Any = None
    kind: str = "label"
    source: str = "api"


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    prediction_id: str
    accepted: bool
    error: str | None = None


@dataclass
class PredictionLog:
    """Append predictions and feedback; read time windows back as DataFrames.

    Examples
    --------
    >>> from modelpilot.store import create_database
    >>> log = PredictionLog(create_database("sqlite://"))
    >>> rec = PredictionRecord(id="a1", ts=10.0, model="m", version=1,
    ...                        inputs={"x": 1.5}, outputs={"prediction": 3.0})
    >>> log.append([rec])
    1
    >>> log.window(model="m")[["id", "x", "prediction"]].to_dict("records")
    [{'id': 'a1', 'x': 1.5, 'prediction': 3.0}]
    >>> [r.accepted for r in log.add_feedback([FeedbackItem("a1", 3.5), FeedbackItem("zz", 1)])]
    [True, False]
    """

    engine: Engine
    clock: Callable[[], float] = field(default=time.time)

    def __post_init__(self) -> None:
        style = self.engine.dialect.paramstyle
        marks = ", ".join(["?"] * 9 if style == "qmark" else ["%s"] * 9)
        self._insert_sql = (
            "INSERT INTO predictions (id, ts, model, version, source, batch_id, latency_ms, "
            f"inputs, outputs) VALUES ({marks})"
        )

    def append(self, records: Sequence[PredictionRecord] | Iterable[tuple[Any, ...]]) -> int:
        """Write a batch of records in one transaction; returns how many were written."""
        rows = [r.as_row() if isinstance(r, PredictionRecord) else tuple(r) for r in records]
        if not rows:
            return 0
        with self.engine.begin() as connection:
            connection.exec_driver_sql(self._insert_sql, rows)
        return len(rows)

    def count(self, *, model: str | None = None, source: str | None = None) -> int:
        query = "SELECT COUNT(*) FROM predictions WHERE 1=1"
        params: dict[str, Any] = {}
        if model is not None:
            query += " AND model = :model"
            params["model"] = model
        if source is not None:
            query += " AND source = :source"
            params["source"] = source
        with self.engine.connect() as connection:
            return int(connection.execute(text(query), params).scalar_one())

    def window(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        start: float | None = None,
        end: float | None = None,
        source: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Predictions in ``[start, end)`` as one DataFrame: metadata, input and output columns.

        Input columns keep their feature names; output columns are ``prediction`` and, for
        classifiers, ``proba_<class>``/``confidence``.
        """
        query = select(
            predictions.c.id,
            predictions.c.ts,
            predictions.c.model,
            predictions.c.version,
            predictions.c.source,
            predictions.c.batch_id,
            predictions.c.latency_ms,
            predictions.c.inputs,
            predictions.c.outputs,
        ).order_by(predictions.c.ts)
        if model is not None:
            query = query.where(predictions.c.model == model)
        if version is not None:
            query = query.where(predictions.c.version == version)
        if start is not None:
            query = query.where(predictions.c.ts >= start)
        if end is not None:
            query = query.where(predictions.c.ts < end)
        if source is not None:
            query = query.where(predictions.c.source == source)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return _frame(rows)

    def exists(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are logged predictions."""
        found: set[str] = set()
        stmt = select(predictions.c.id).where(predictions.c.id.in_(bindparam("ids", expanding=True)))
        with self.engine.connect() as connection:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                found.update(connection.execute(stmt, {"ids": chunk}).scalars())
        return found

    def add_feedback(self, items: Sequence[FeedbackItem]) -> list[FeedbackResult]:
        """Record labels by prediction id. Each item is accepted or gets its own error."""
        known = self.exists([item.prediction_id for item in items])
        now = self.clock()
        rows, results = [], []
        for item in items:
            if item.kind not in FEEDBACK_KINDS:
                results.append(FeedbackResult(item.prediction_id, False,
                               f"kind must be one of {', '.join(FEEDBACK_KINDS)}, got {item.kind!r}"))
            elif item.prediction_id not in known:
                results.append(FeedbackResult(item.prediction_id, False,
                               f"no prediction with id {item.prediction_id!r} is logged"))
            elif item.kind == "label" and item.label is None:
                results.append(FeedbackResult(item.prediction_id, False, "a label is required"))
            else:
                rows.append({
                    "prediction_id": item.prediction_id,
                    "ts": now,
                    "kind": item.kind,
                    "label": None if item.label is None else orjson.dumps(item.label).decode(),
                    "source": item.source,
                })
                results.append(FeedbackResult(item.prediction_id, True))
        if rows:
            with self.engine.begin() as connection:
                connection.execute(feedback.insert(), rows)
        return results

    def labeled(
        self, *, model: str | None = None, start: float | None = None, end: float | None = None
    ) -> pd.DataFrame:
        """Predictions joined with their latest label: the window plus a ``label`` column."""
        frame = self.window(model=model, start=start, end=end)
        if frame.empty:
            return frame.assign(label=pd.Series(dtype=object), label_ts=pd.Series(dtype=float))
        stmt = (
            select(feedback.c.prediction_id, feedback.c.label, feedback.c.ts)
            .where(feedback.c.kind == "label")
            .where(feedback.c.prediction_id.in_(bindparam("ids", expanding=True)))
            .order_by(feedback.c.ts, feedback.c.id)
        )
        labels: dict[str, tuple[Any, float]] = {}
        ids = frame["id"].tolist()
        with self.engine.connect() as connection:
            for begin in range(0, len(ids), 500):
                for pid, label, ts in connection.execute(stmt, {"ids": ids[begin : begin + 500]}):
                    labels[pid] = (orjson.loads(label), ts)  # later rows win: the newest label
        frame["label"] = [labels[i][0] if i in labels else None for i in ids]
        frame["label_ts"] = [labels[i][1] if i in labels else None for i in ids]
        return frame[frame["label"].notna()].reset_index(drop=True)


_META = ["id", "ts", "model", "version", "source", "batch_id", "latency_ms"]


def _frame(rows: Sequence[Any]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in _META})
    meta = pd.DataFrame([tuple(r[:7]) for r in rows], columns=_META)
    # One orjson parse per row, then a columnar build: much faster than json_normalize.
    inputs = pd.DataFrame.from_records([orjson.loads(r[7]) for r in rows])
    outputs = pd.DataFrame.from_records([orjson.loads(r[8]) for r in rows])
    outputs = outputs.drop(columns=[c for c in outputs.columns if c in inputs.columns])
    return pd.concat([meta, inputs, outputs], axis=1)
