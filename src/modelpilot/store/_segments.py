"""The prediction log's segments: a batch of predictions as one compressed Arrow IPC blob, and
back as a DataFrame (``_predictions.py`` says why the log is kept this way)."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from modelpilot.store._tables import prediction_segments
from modelpilot.types import Clock

__all__ = [
    "META",
    "SEGMENT_COLUMNS",
    "PredictionBatch",
    "PredictionRecord",
    "as_batches",
    "decode",
    "encode",
    "new_ids",
    "prefixed_frame",
    "segments_frame",
]

IN, OUT = "in:", "out:"
META = ["id", "ts", "model", "version", "source", "batch_id", "latency_ms"]
# What reading segments back selects: each segment's own fields, then its rows' payload.
SEGMENT_COLUMNS = (
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
        for prefix, part in ((IN, self.inputs), (OUT, self.outputs)):
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


def encode(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table)
    return sink.getvalue()


def decode(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(payload).read_all()


def as_batches(items: Sequence[PredictionBatch | PredictionRecord]) -> list[PredictionBatch]:
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


def segments_frame(
    rows: Sequence[Any], *, start: float | None, end: float | None, limit: int | None
) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in META})
    tables = []
    for model, version, source, batch_id, payload in rows:
        table = decode(payload)
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
    return prefixed_frame(data, start=start, end=end, limit=limit)


def prefixed_frame(
    data: pd.DataFrame, *, start: float | None, end: float | None, limit: int | None
) -> pd.DataFrame:
    """Rows of the log whose inputs and outputs are named ``in:NAME`` and ``out:NAME`` (as
    stored) in the shape every reader gets: in ``[start, end)``, oldest first (ties keep their
    stored order), at most ``limit``; the metadata columns, the inputs, then the outputs."""
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
    inputs = [c for c in data.columns if c.startswith(IN)]
    outputs = [c for c in data.columns if c.startswith(OUT)]
    renamed = {c: c[len(IN) :] for c in inputs}
    taken = set(META) | set(renamed.values())
    # An output never hides an input of the same name: it keeps an "output_" prefix then.
    renamed.update(
        {
            c: c[len(OUT) :] if c[len(OUT) :] not in taken else "output_" + c[len(OUT) :]
            for c in outputs
        }
    )
    ordered = META + inputs + outputs
    result: pd.DataFrame = data[ordered].rename(columns=renamed)
    return result
