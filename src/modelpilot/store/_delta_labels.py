"""Labels of the Delta log: their own append-only table, joined with the predictions on
``prediction_id`` when read.

Nothing is ever updated: a label sent with ``replace`` supersedes the labels its prediction got
in earlier calls when they are read (the SQL backend marks them ``replaced_at`` instead); the
newest label of a prediction is the one that counts on both.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from modelpilot.store._delta_rows import label_rows
from modelpilot.store._labels import LabelReads

__all__ = ["DeltaLabels"]


class DeltaLabels(LabelReads):
    """The label half of :class:`~modelpilot.store.DeltaPredictionLog`."""

    @abc.abstractmethod
    def _dataset(self, name: str) -> pads.Dataset | None: ...

    @abc.abstractmethod
    def write(self, name: str, rows: pa.Table, *, txn: tuple[str, int] | None = None) -> None: ...

    @abc.abstractmethod
    def _read(self, columns: list[str] | None = None, **where: Any) -> pa.Table: ...

    @abc.abstractmethod
    def _by_ids(self, ids: Sequence[str], columns: list[str] | None) -> pa.Table: ...

    def _write_labels(self, rows: list[dict[str, Any]], replaced: list[str], now: float) -> None:
        self.write("labels", label_rows(rows))

    def _labels(self, where: pc.Expression | None) -> list[tuple[str, str, float]]:
        """``(prediction id, label JSON, ts)`` of the labels (kind ``label``) that match
        ``where`` and that no later ``replace`` label superseded, in arrival order."""
        dataset = self._dataset("labels")
        if dataset is None:
            return []
        kind = pc.field("kind") == "label"
        table = dataset.to_table(
            columns=["prediction_id", "ts", "seq", "label", "replace"],
            filter=kind if where is None else kind & where,
        ).sort_by([("ts", "ascending"), ("seq", "ascending")])
        ids = table["prediction_id"].to_pylist()
        stamps = table["ts"].to_pylist()
        # A replace label supersedes the labels of earlier calls (earlier ts); one call's
        # labels all count, as on the SQL backend. The newest replace per id decides.
        replaced_before: dict[str, float] = {}
        for pid, ts, replace in zip(ids, stamps, table["replace"].to_pylist(), strict=True):
            if replace:
                replaced_before[pid] = max(replaced_before.get(pid, ts), ts)
        return [
            (pid, label, ts)
            for pid, label, ts in zip(ids, table["label"].to_pylist(), stamps, strict=True)
            if ts >= replaced_before.get(pid, ts)
        ]

    def _labels_after(self, since: float, limit: int) -> list[tuple[str, str, float]]:
        # Every replace label that can supersede a label after ``since`` came after it too.
        return self._labels(pc.field("ts") > since)[:limit]

    def _newest_labels(self, ids: Sequence[str]) -> dict[str, tuple[Any, float]]:
        if not ids:
            return {}
        found = self._labels(pc.field("prediction_id").isin(list(dict.fromkeys(ids))))
        # Later rows win: the newest label (it is never superseded).
        return {pid: (orjson.loads(label), ts) for pid, label, ts in found}

    def label_coverage(
        self, *, model: str, start: float, source: str = "online"
    ) -> tuple[int, int]:
        """``(labeled, predictions)``: how many of ``model``'s predictions since ``start`` have
        a label. Exact to the row (the SQL backend counts whole segments); the labels (few)
        are read, then only the days their ids can be in.

        Examples
        --------
        >>> import tempfile
        >>> from modelpilot.store import (DeltaPredictionLog, FeedbackItem,
        ...                               PredictionRecord)
        >>> log = DeltaPredictionLog(tempfile.mkdtemp(), clock=lambda: 50.0)
        >>> rows = [PredictionRecord(f"p{i}", i, "m", 1, {"x": i}, {"y": i}) for i in range(4)]
        >>> _ = log.append(rows)
        >>> _ = log.add_feedback([FeedbackItem("p1", 1.0), FeedbackItem("p1", 2.0)])
        >>> log.label_coverage(model="m", start=1.0)
        (1, 3)
        """
        total = self._read(columns=["id"], model=model, source=source, start=start).num_rows
        labeled_ids = sorted({pid for pid, _, _ in self._labels(pc.field("ts") >= start)})
        if not labeled_ids or not total:
            return 0, total
        rows = self._by_ids(labeled_ids, ["id", "ts", "model", "source"])
        mask = pc.and_(
            pc.and_(pc.equal(rows["model"], model), pc.equal(rows["source"], source)),
            pc.greater_equal(rows["ts"], start),
        )
        return len(set(rows.filter(mask)["id"].to_pylist())), total
