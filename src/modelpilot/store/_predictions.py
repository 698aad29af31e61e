"""The prediction log: every prediction modelpilot makes, and the labels that arrive later.

Layout (see ``docs/architecture.md``): each appended batch becomes one *segment* row holding its
rows as a compressed Arrow IPC blob (ids, times, latencies, input columns, output columns), and
each prediction gets one small ``prediction_ids`` row pointing at its segment. Why:

- one transaction per batch, so "answered means logged" (durable serving) is a single commit,
  identical on SQLite and PostgreSQL, with no files beside the database to keep consistent;
- appends cost one tiny index row per prediction, not a wide JSON row plus time indexes
  (measured here: about 2.5x the throughput of JSON rows, ``benchmarks/log_throughput.py``);
- a time window reads back columnar: a few blobs decoded by Arrow instead of a JSON parse per
  row, which is what drift checks on large windows need;
- feedback is checked against prediction ids with a primary-key look-up.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
from sqlalchemy import Engine, bindparam, func, insert, select, update
from sqlalchemy.exc import DBAPIError

from modelpilot.store._tables import feedback, prediction_ids, prediction_segments
from modelpilot.types import Clock

__all__ = [
    "FeedbackItem",
    "FeedbackResult",
    "PredictionBatch",
    "PredictionLog",
    "PredictionRecord",
    "new_ids",
]

FEEDBACK_KINDS = ("label", "redo", "correction")
#: Labels no later label replaced: the ones every reader counts.
_ACTIVE = feedback.c.replaced_at.is_(None)
_IN, _OUT = "in:", "out:"
_META = ["id", "ts", "model", "version", "source", "batch_id", "latency_ms"]
# What reading segments back selects: each segment's own fields, then its rows' payload.
_SEGMENT_COLUMNS = (
    prediction_segments.c.model,
    prediction_segments.c.version,
    prediction_segments.c.source,
    prediction_segments.c.batch_id,
    prediction_segments.c.payload,
)


def new_ids(n: int, *, clock: Clock = time.time) -> list[str]:
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
    """One logged prediction (convenient for single records; batches are faster)."""

    id: str
    ts: float
    model: str
    version: int
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    source: str = "online"
    batch_id: str | None = None
    latency_ms: float | None = None


@dataclass
class PredictionBatch:
    """Many predictions of one model version from one source, stored as one segment.

    ``inputs`` and ``outputs`` are DataFrames, lists of flat records (one per id), or
    mappings of column name to column (NumPy arrays or lists, one value per id): the form the
    online server writes, which skips building a DataFrame per micro-batch.
    """

    model: str
    version: int
    ids: Sequence[str]
    ts: Sequence[float] | np.ndarray
    inputs: pd.DataFrame | Sequence[Mapping[str, Any]] | Mapping[str, Any]
    outputs: pd.DataFrame | Sequence[Mapping[str, Any]] | Mapping[str, Any]
    source: str = "online"
    batch_id: str | None = None
    latency_ms: Sequence[float | None] | np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def to_arrow(self) -> pa.Table:
        n = len(self.ids)
        columns: dict[str, Any] = {
            "id": pa.array(list(self.ids), pa.string()),
            "ts": pa.array(np.asarray(self.ts, dtype=np.float64)),
            "latency_ms": pa.array(
                np.full(n, np.nan)
                if self.latency_ms is None
                else np.asarray(self.latency_ms, dtype=np.float64)
            ),
        }
        for prefix, part in ((_IN, self.inputs), (_OUT, self.outputs)):
            if isinstance(part, Mapping):
                for name, values in part.items():
                    array = _column(values)
                    if len(array) != n:
                        raise ValueError(f"{len(array)} values in {prefix}{name} for {n} ids")
                    columns[prefix + name] = array
                continue
            frame = part if isinstance(part, pd.DataFrame) else _flat_frame(part)
            if len(frame) != n:
                raise ValueError(f"{len(frame)} {prefix[:-1]}put rows for {n} ids")
            table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
            for name, column in zip(table.column_names, table.columns, strict=True):
                columns[prefix + name] = column
        return pa.table(columns)


def _column(values: Any) -> pa.Array:
    # The same Arrow types as pandas' conversion gives the other forms, so segments of both
    # kinds concatenate without casts: strings as large_string, floats as double.
    array = pa.array(values)
    if pa.types.is_string(array.type):
        return array.cast(pa.large_string())
    return array


def _flat_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    # Output records may nest class probabilities ({"probabilities": {"a": .9}}): flatten them
    # to proba_<class> columns, the same names batch scoring writes.
    flat = []
    for record in records:
        row = {}
        for key, value in record.items():
            if isinstance(value, Mapping):
                prefix = "proba_" if key == "probabilities" else f"{key}_"
                for sub, item in value.items():
                    row[f"{prefix}{sub}"] = item
            else:
                row[key] = value
        flat.append(row)
    return pd.DataFrame.from_records(flat) if flat else pd.DataFrame(index=range(0))


def _encode(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _decode(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(payload).read_all()


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
    clock: Clock = field(default=time.time)

    def __post_init__(self) -> None:
        style = self.engine.dialect.paramstyle
        mark = "?" if style == "qmark" else "%s"
        self._ids_sql = f"INSERT INTO prediction_ids (id, segment) VALUES ({mark}, {mark})"
        self._copy = (
            self.engine.dialect.name == "postgresql" and self.engine.dialect.driver == "psycopg"
        )

    def append(self, items: PredictionBatch | Sequence[PredictionBatch | PredictionRecord]) -> int:
        """Write batches (or records, grouped into batches) in one transaction; returns rows."""
        batches = _as_batches([items] if isinstance(items, PredictionBatch) else items)
        if not batches:
            return 0
        written = 0
        with self.engine.begin() as connection:
            for batch in batches:
                n = len(batch)
                if n == 0:
                    continue
                ts = np.asarray(batch.ts, dtype=np.float64)
                inserted = connection.execute(
                    insert(prediction_segments).values(
                        model=batch.model,
                        version=batch.version,
                        source=batch.source,
                        batch_id=batch.batch_id,
                        ts_min=float(ts.min()),
                        ts_max=float(ts.max()),
                        n_rows=n,
                        payload=_encode(batch.to_arrow()),
                    )
                )
                seq = int(inserted.inserted_primary_key[0])  # type: ignore[index]
                if batch.source != "shadow":
                    # Shadow rows share their primary's id: only the primary's is indexed.
                    self._insert_ids(connection, batch.ids, seq)
                written += n
        return written

    def _insert_ids(self, connection: Any, ids: Sequence[str], seq: int) -> None:
        if self._copy:
            # PostgreSQL: COPY is several times faster than executemany for many small rows.
            statement = "COPY prediction_ids (id, segment) FROM STDIN"
            cursor = connection.connection.driver_connection.cursor()
            try:
                with cursor.copy(statement) as copy:
                    for pid in ids:
                        copy.write_row((pid, seq))
            except self.engine.dialect.loaded_dbapi.Error as exc:
                # The raw cursor bypasses SQLAlchemy: wrap its error as SQLAlchemy would, so a
                # duplicate id is an IntegrityError on every backend.
                raise DBAPIError.instance(
                    statement, None, exc, self.engine.dialect.loaded_dbapi.Error
                ) from None
            finally:
                cursor.close()
            return
        # Straight to the driver's executemany: no per-row SQLAlchemy processing.
        connection.exec_driver_sql(self._ids_sql, [(pid, seq) for pid in ids])

    def count(self, *, model: str | None = None, source: str | None = None) -> int:
        query = select(func.coalesce(func.sum(prediction_segments.c.n_rows), 0))
        if model is not None:
            query = query.where(prediction_segments.c.model == model)
        if source is not None:
            query = query.where(prediction_segments.c.source == source)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

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
        """Predictions with ``start <= ts < end`` as one DataFrame, oldest first.

        Columns: ``id, ts, model, version, source, batch_id, latency_ms``, then the input
        features by name, then the outputs (``prediction``, ``proba_<class>``, ``confidence``).
        ``ts`` is seconds since the epoch (UTC); ``limit`` keeps the oldest rows.

        Examples
        --------
        >>> from modelpilot.store import create_database
        >>> log = PredictionLog(create_database("sqlite://"))
        >>> _ = log.append([PredictionRecord(f"p{i}", 100.0 + i, "houses", 1, {"size": 50 + i},
        ...                                  {"prediction": 1000.0 * i}) for i in range(5)])
        >>> log.window(model="houses", start=102.0)[["id", "size", "prediction"]]
           id  size  prediction
        0  p2    52      2000.0
        1  p3    53      3000.0
        2  p4    54      4000.0
        """
        query = select(*_SEGMENT_COLUMNS).order_by(prediction_segments.c.seq)
        if model is not None:
            query = query.where(prediction_segments.c.model == model)
        if version is not None:
            query = query.where(prediction_segments.c.version == version)
        if start is not None:
            query = query.where(prediction_segments.c.ts_max >= start)
        if end is not None:
            query = query.where(prediction_segments.c.ts_min < end)
        if source is not None:
            query = query.where(prediction_segments.c.source == source)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return _segments_frame(rows, start=start, end=end, limit=limit)

    def get(self, ids: Sequence[str]) -> pd.DataFrame:
        """The logged rows of ``ids`` (unknown ids are absent from the result)."""
        segments = self._segments_of(ids)
        if not segments:
            return _segments_frame([], start=None, end=None, limit=None)
        query = select(*_SEGMENT_COLUMNS).where(
            prediction_segments.c.seq.in_(sorted(set(segments.values())))
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        frame = _segments_frame(rows, start=None, end=None, limit=None)
        return frame[frame["id"].isin(set(ids))].reset_index(drop=True)

    def _segments_of(self, ids: Sequence[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        stmt = select(prediction_ids.c.id, prediction_ids.c.segment).where(
            prediction_ids.c.id.in_(bindparam("ids", expanding=True))
        )
        with self.engine.connect() as connection:
            for begin in range(0, len(ids), 500):
                chunk = list(ids[begin : begin + 500])
                found.update({pid: seg for pid, seg in connection.execute(stmt, {"ids": chunk})})
        return found

    def exists(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are logged predictions."""
        return set(self._segments_of(ids))

    def versions_of(self, ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        """The model and version that made each logged prediction of ``ids``."""
        segments = self._segments_of(ids)
        stmt = select(
            prediction_segments.c.seq, prediction_segments.c.model, prediction_segments.c.version
        ).where(prediction_segments.c.seq.in_(bindparam("seqs", expanding=True)))
        wanted = sorted(set(segments.values()))
        made: dict[int, tuple[str, int]] = {}
        with self.engine.connect() as connection:
            for begin in range(0, len(wanted), 500):
                chunk = wanted[begin : begin + 500]
                made.update(
                    {seq: (m, v) for seq, m, v in connection.execute(stmt, {"seqs": chunk})}
                )
        return {pid: made[seq] for pid, seq in segments.items() if seq in made}

    def add_feedback(self, items: Sequence[FeedbackItem]) -> list[FeedbackResult]:
        """Record labels by prediction id. Each item is accepted or gets its own error."""
        known = self.exists([item.prediction_id for item in items])
        now = self.clock()
        rows, results = [], []
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
                    }
                )
                results.append(FeedbackResult(item.prediction_id, True))
        replaced = sorted(
            {
                item.prediction_id
                for item, result in zip(items, results, strict=True)
                if result.accepted and item.replace and item.kind == "label"
            }
        )
        if rows:
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
                connection.execute(feedback.insert(), rows)
        return results

    def labels_since(
        self, since: float, *, model: str | None = None, limit: int = 100_000
    ) -> pd.DataFrame:
        """Labels that arrived after ``since`` (whatever the age of their predictions), joined
        with their predictions, in arrival order: what a concept-drift monitor consumes."""
        stmt = (
            select(feedback.c.prediction_id, feedback.c.label, feedback.c.ts)
            .where(feedback.c.kind == "label", feedback.c.ts > since, _ACTIVE)
            .order_by(feedback.c.ts, feedback.c.id)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(stmt).all()
        if not rows:
            return pd.DataFrame(columns=[*_META, "label", "label_ts"])
        predictions = self.get([r[0] for r in rows]).set_index("id", drop=False)
        if model is not None:
            predictions = predictions[predictions["model"] == model]
        keep = [r for r in rows if r[0] in predictions.index]
        frame = predictions.loc[[r[0] for r in keep]].reset_index(drop=True)
        frame["label"] = [orjson.loads(r[1]) for r in keep]
        frame["label_ts"] = [r[2] for r in keep]
        return frame

    def label_coverage(
        self, *, model: str, start: float, source: str = "online"
    ) -> tuple[int, int]:
        """``(labeled, predictions)``: how many of ``model``'s predictions since ``start`` have
        a label, counted by the database without reading the log's rows.

        Whole segments count (one holds at most ``logging.compact_rows`` rows, a few minutes of
        traffic): a segment that straddles ``start`` counts in full, on both sides.

        Examples
        --------
        >>> from modelpilot.store import create_database
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
            .where(feedback.c.kind == "label", feedback.c.ts >= start, _ACTIVE, *where)
        )
        with self.engine.connect() as connection:
            return (
                int(connection.execute(labeled).scalar_one()),
                int(connection.execute(total).scalar_one()),
            )

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
        >>> from modelpilot.store import create_database
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
        stmt = (
            select(feedback.c.prediction_id, feedback.c.label, feedback.c.ts)
            .where(feedback.c.kind == "label", _ACTIVE)
            .where(feedback.c.prediction_id.in_(bindparam("ids", expanding=True)))
            .order_by(feedback.c.ts, feedback.c.id)
        )
        labels: dict[str, tuple[Any, float]] = {}
        ids = frame["id"].tolist()
        with self.engine.connect() as connection:
            for begin in range(0, len(ids), 500):
                for pid, label, ts in connection.execute(stmt, {"ids": ids[begin : begin + 500]}):
                    labels[pid] = (orjson.loads(label), ts)  # later rows win: the newest label
        frame = frame.copy()
        frame["label"] = pd.Series(
            [labels[i][0] if i in labels else None for i in ids], index=frame.index, dtype=object
        )
        frame["label_ts"] = [labels[i][1] if i in labels else None for i in ids]
        return frame

    def latest(
        self,
        n: int,
        *,
        model: str | None = None,
        version: int | None = None,
        source: str | None = None,
    ) -> pd.DataFrame:
        """The newest ``n`` predictions, oldest first, reading segments from the newest back
        until there are enough (a look at the end of a large log reads only its end).

        Examples
        --------
        >>> from modelpilot.store import create_database
        >>> log = PredictionLog(create_database("sqlite://"))
        >>> for i in range(4):
        ...     _ = log.append([PredictionRecord(f"p{i}", float(i), "m", 1, {"x": i}, {"y": i})])
        >>> log.latest(2)["id"].tolist()
        ['p2', 'p3']
        """
        query = select(*_SEGMENT_COLUMNS, prediction_segments.c.n_rows).order_by(
            prediction_segments.c.ts_max.desc(), prediction_segments.c.seq.desc()
        )
        if model is not None:
            query = query.where(prediction_segments.c.model == model)
        if version is not None:
            query = query.where(prediction_segments.c.version == version)
        if source is not None:
            query = query.where(prediction_segments.c.source == source)
        rows: list[Any] = []
        total = 0
        with self.engine.connect() as connection:
            for row in connection.execute(query):
                rows.append(row[:5])
                total += int(row[5])
                if total >= n:
                    break
        frame = _segments_frame(rows[::-1], start=None, end=None, limit=None)
        return frame.tail(n).reset_index(drop=True)


def _as_batches(items: Sequence[PredictionBatch | PredictionRecord]) -> list[PredictionBatch]:
    batches: list[PredictionBatch] = []
    groups: dict[tuple[str, int, str, str | None], list[PredictionRecord]] = {}
    for item in items:
        if isinstance(item, PredictionBatch):
            batches.append(item)
        else:
            groups.setdefault((item.model, item.version, item.source, item.batch_id), []).append(
                item
            )
    for (model, version, source, batch_id), records in groups.items():
        batches.append(
            PredictionBatch(
                model=model,
                version=version,
                source=source,
                batch_id=batch_id,
                ids=[r.id for r in records],
                ts=[r.ts for r in records],
                inputs=[r.inputs for r in records],
                outputs=[r.outputs for r in records],
                latency_ms=[np.nan if r.latency_ms is None else r.latency_ms for r in records],
            )
        )
    return batches


def _segments_frame(
    rows: Sequence[Any], *, start: float | None, end: float | None, limit: int | None
) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in _META})
    tables = []
    for model, version, source, batch_id, payload in rows:
        table = _decode(payload)
        n = table.num_rows
        for position, (name, value) in enumerate(
            (("model", model), ("version", version), ("source", source), ("batch_id", batch_id)),
            start=2,
        ):
            table = table.add_column(position, name, pa.array([value] * n))
        tables.append(table)
    # One Arrow concatenation and one conversion: converting each segment to pandas on its own
    # cost ~15x more on windows of many small segments.
    try:
        data = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # columns whose types cannot be unified
        data = pd.concat([t.to_pandas() for t in tables], ignore_index=True, sort=False)
    mask = np.ones(len(data), dtype=bool)
    if start is not None:
        mask &= data["ts"].to_numpy() >= start
    if end is not None:
        mask &= data["ts"].to_numpy() < end
    if not mask.all():
        data = data[mask]
    data = data.sort_values("ts", kind="stable").reset_index(drop=True)
    if limit is not None:
        data = data.head(limit)
    inputs = [c for c in data.columns if c.startswith(_IN)]
    outputs = [c for c in data.columns if c.startswith(_OUT)]
    renamed = {c: c[len(_IN) :] for c in inputs}
    taken = set(_META) | set(renamed.values())
    # An output never hides an input of the same name: it keeps an "output_" prefix then.
    renamed.update(
        {
            c: c[len(_OUT) :] if c[len(_OUT) :] not in taken else "output_" + c[len(_OUT) :]
            for c in outputs
        }
    )
    ordered = _META + inputs + outputs
    result: pd.DataFrame = data[ordered].rename(columns=renamed)
    return result
