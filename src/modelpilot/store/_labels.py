"""Labels in the prediction log: recording them by prediction id (a later label may replace an
earlier one, which is kept as history), and reading them back joined with their predictions."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pandas as pd
from sqlalchemy import Engine, bindparam, func, select, update

from modelpilot.store._segments import META
from modelpilot.store._tables import feedback, prediction_ids, prediction_segments
from modelpilot.types import Clock

__all__ = [
    "FEEDBACK_KINDS",
    "FeedbackItem",
    "FeedbackResult",
    "LabelReads",
    "SqlLabels",
    "check_feedback",
]

FEEDBACK_KINDS = ("label", "redo", "correction")
#: Labels no later label replaced: the ones every reader counts.
ACTIVE = feedback.c.replaced_at.is_(None)


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """A ground-truth label (or a 'redo' / 'correction' event) for one prediction."""

    prediction_id: str
    label: Any = None
    kind: str = "label"
    source: str = "api"
    #: A correction: the prediction's earlier labels are marked replaced (kept as history,
    #: read by no metric), this one counts.
    replace: bool = False


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    prediction_id: str
    accepted: bool
    error: str | None = None


def check_feedback(
    items: Sequence[FeedbackItem], known: set[str], now: float
) -> tuple[list[dict[str, Any]], list[FeedbackResult], list[str]]:
    """The rows to store, each item's result, and the prediction ids whose earlier labels
    the accepted ``replace`` labels supersede (the same checks on every backend)."""
    rows: list[dict[str, Any]] = []
    results: list[FeedbackResult] = []
    for item in items:
        if item.kind not in FEEDBACK_KINDS:
            results.append(
                FeedbackResult(
                    item.prediction_id,
                    False,
                    f"kind must be one of {', '.join(FEEDBACK_KINDS)}, got {item.kind!r}",
                )
            )
        elif item.prediction_id not in known:
            results.append(
                FeedbackResult(
                    item.prediction_id,
                    False,
                    f"no prediction with id {item.prediction_id!r} is logged",
                )
            )
        elif item.kind == "label" and item.label is None:
            results.append(FeedbackResult(item.prediction_id, False, "a label is required"))
        else:
            rows.append(
                {
                    "prediction_id": item.prediction_id,
                    "ts": now,
                    "kind": item.kind,
                    "label": None if item.label is None else orjson.dumps(item.label).decode(),
                    "source": item.source,
                    "replace": bool(item.replace and item.kind == "label"),
                }
            )
            results.append(FeedbackResult(item.prediction_id, True))
    replaced = sorted({str(row["prediction_id"]) for row in rows if row["replace"]})
    return rows, results, replaced


class LabelReads(abc.ABC):
    """The label half of both prediction logs: what is the same on every backend (checking
    feedback, joining labels with their predictions). A backend stores labels
    (:meth:`_write_labels`) and reads them back (:meth:`_labels_after`, :meth:`_newest_labels`);
    it reads predictions with its own ``window``, ``get`` and ``exists``."""

    clock: Clock

    @abc.abstractmethod
    def window(
        self,
        *,
        model: str | None = None,
        version: int | None = None,
        start: float | None = None,
        end: float | None = None,
        source: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame: ...

    @abc.abstractmethod
    def get(self, ids: Sequence[str]) -> pd.DataFrame: ...

    @abc.abstractmethod
    def exists(self, ids: Sequence[str]) -> set[str]: ...

    @abc.abstractmethod
    def _write_labels(self, rows: list[dict[str, Any]], replaced: list[str], now: float) -> None:
        """Store accepted feedback ``rows``; earlier labels of ``replaced`` stop counting."""

    @abc.abstractmethod
    def _labels_after(self, since: float, limit: int) -> list[tuple[str, str, float]]:
        """``(prediction id, label as JSON, ts)`` of the labels no later label replaced that
        arrived after ``since``, in arrival order, at most ``limit``."""

    @abc.abstractmethod
    def _newest_labels(self, ids: Sequence[str]) -> dict[str, tuple[Any, float]]:
        """Each of ``ids``' newest label (decoded) and its arrival time, where it has one."""

    @abc.abstractmethod
    def label_coverage(
        self, *, model: str, start: float, source: str = "online"
    ) -> tuple[int, int]: ...

    def add_feedback(self, items: Sequence[FeedbackItem]) -> list[FeedbackResult]:
        """Record labels by prediction id. Each item is accepted or gets its own error."""
        known = self.exists([item.prediction_id for item in items])
        now = self.clock()
        rows, results, replaced = check_feedback(items, known, now)
        if rows:
            self._write_labels(rows, replaced, now)
        return results

    def labels_since(
        self, since: float, *, model: str | None = None, limit: int = 100_000
    ) -> pd.DataFrame:
        """Labels that arrived after ``since`` (whatever the age of their predictions), joined
        with their predictions, in arrival order: what a concept-drift monitor consumes."""
        rows = self._labels_after(since, limit)
        if not rows:
            return pd.DataFrame(columns=[*META, "label", "label_ts"])
        predictions = self.get([r[0] for r in rows]).set_index("id", drop=False)
        if model is not None:
            predictions = predictions[predictions["model"] == model]
        keep = [r for r in rows if r[0] in predictions.index]
        frame = predictions.loc[[r[0] for r in keep]].reset_index(drop=True)
        frame["label"] = [orjson.loads(r[1]) for r in keep]
        frame["label_ts"] = [r[2] for r in keep]
        return frame

    def labeled(
        self,
        *,
        model: str | None = None,
        start: float | None = None,
        end: float | None = None,
        version: int | None = None,
        source: str | None = None,
    ) -> pd.DataFrame:
        """Predictions in the window that have a label: the window plus ``label``/``label_ts``.

        When a prediction got several labels, the newest one counts. Labels keep the type they
        were sent with (numbers stay numbers, classes stay strings).

        Examples
        --------
        >>> from modelpilot.store import PredictionLog, PredictionRecord, create_database
        >>> log = PredictionLog(create_database("sqlite://"), clock=lambda: 500.0)
        >>> _ = log.append([PredictionRecord(f"p{i}", 100.0 + i, "spam", 1, {"words": i},
        ...                                  {"prediction": "ham"}) for i in range(3)])
        >>> _ = log.add_feedback([FeedbackItem("p1", "spam"), FeedbackItem("p2", "ham")])
        >>> log.labeled(model="spam")[["id", "prediction", "label", "label_ts"]]
           id prediction label  label_ts
        0  p1        ham  spam     500.0
        1  p2        ham   ham     500.0
        """
        frame = self.attach_labels(
            self.window(model=model, start=start, end=end, version=version, source=source)
        )
        return frame[frame["label"].notna()].reset_index(drop=True)

    def attach_labels(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (rows of the log) with ``label`` and ``label_ts`` columns: each
        prediction's newest label and when it arrived, or None where none has arrived yet."""
        if frame.empty:
            return frame.assign(label=pd.Series(dtype=object), label_ts=pd.Series(dtype=float))
        ids = frame["id"].tolist()
        labels = self._newest_labels(ids)
        frame = frame.copy()
        frame["label"] = pd.Series(
            [labels[i][0] if i in labels else None for i in ids], index=frame.index, dtype=object
        )
        frame["label_ts"] = [labels[i][1] if i in labels else None for i in ids]
        return frame


class SqlLabels(LabelReads):
    """Labels in the metadata database's ``feedback`` table (beside the SQL log's segments)."""

    engine: Engine

    def _write_labels(self, rows: list[dict[str, Any]], replaced: list[str], now: float) -> None:
        stored = [{k: v for k, v in row.items() if k != "replace"} for row in rows]
        with self.engine.begin() as connection:
            if replaced:  # before the insert: the new labels are not replaced
                connection.execute(
                    update(feedback)
                    .where(
                        feedback.c.prediction_id.in_(replaced),
                        feedback.c.kind == "label",
                        feedback.c.replaced_at.is_(None),
                    )
                    .values(replaced_at=now)
                )
            connection.execute(feedback.insert(), stored)

    def _labels_after(self, since: float, limit: int) -> list[tuple[str, str, float]]:
        stmt = (
            select(feedback.c.prediction_id, feedback.c.label, feedback.c.ts)
            .where(feedback.c.kind == "label", feedback.c.ts > since, ACTIVE)
            .order_by(feedback.c.ts, feedback.c.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [(str(p), str(label), float(ts)) for p, label, ts in connection.execute(stmt)]

    def _newest_labels(self, ids: Sequence[str]) -> dict[str, tuple[Any, float]]:
        stmt = (
            select(feedback.c.prediction_id, feedback.c.label, feedback.c.ts)
            .where(feedback.c.kind == "label", ACTIVE)
            .where(feedback.c.prediction_id.in_(bindparam("ids", expanding=True)))
            .order_by(feedback.c.ts, feedback.c.id)
        )
        labels: dict[str, tuple[Any, float]] = {}
        with self.engine.connect() as connection:
            for begin in range(0, len(ids), 500):
                chunk = list(ids[begin : begin + 500])
                for pid, label, ts in connection.execute(stmt, {"ids": chunk}):
                    labels[pid] = (orjson.loads(label), ts)  # later rows win: the newest label
        return labels

    def label_coverage(
        self, *, model: str, start: float, source: str = "online"
    ) -> tuple[int, int]:
        """``(labeled, predictions)``: how many of ``model``'s predictions since ``start`` have
        a label, counted by the database without reading the log's rows.

        Whole segments count (one holds at most ``logging.compact_rows`` rows, a few minutes of
        traffic): a segment that straddles ``start`` counts in full, on both sides.

        Examples
        --------
        >>> from modelpilot.store import PredictionLog, PredictionRecord, create_database
        >>> log = PredictionLog(create_database("sqlite://"), clock=lambda: 50.0)
        >>> rows = [PredictionRecord(f"p{i}", i, "m", 1, {"x": i}, {"y": i}) for i in range(4)]
        >>> _ = log.append(rows)
        >>> _ = log.add_feedback([FeedbackItem("p1", 1.0), FeedbackItem("p1", 2.0)])
        >>> log.label_coverage(model="m", start=0.0)
        (1, 4)
        """
        segment = prediction_segments.c
        where = (segment.model == model, segment.source == source, segment.ts_max >= start)
        total = select(func.coalesce(func.sum(segment.n_rows), 0)).where(*where)
        # From the labels (few, and given after their predictions, so since ``start`` too) to
        # their segments, by primary keys: the prediction ids are never scanned.
        labeled = (
            select(func.count(func.distinct(feedback.c.prediction_id)))
            .select_from(
                feedback.join(prediction_ids, prediction_ids.c.id == feedback.c.prediction_id).join(
                    prediction_segments, segment.seq == prediction_ids.c.segment
                )
            )
            .where(feedback.c.kind == "label", feedback.c.ts >= start, ACTIVE, *where)
        )
        with self.engine.connect() as connection:
            return (
                int(connection.execute(labeled).scalar_one()),
                int(connection.execute(total).scalar_one()),
            )
