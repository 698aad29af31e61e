"""Rows on their way into the prediction log: one shape for every producer.

The online server, batch scoring and a shadow's copies all hand the log :class:`LogRows`: the
rows of one model version from one source, kept as the scorer left them (the inputs as
columns, possibly one float matrix; predictions as a list; probabilities as one array).
Building the stored columns (``prediction``, ``proba_<class>``, ``confidence`` and any other
output column) waits until the log writer commits, where :func:`join_rows` joins the parts of
many micro-batches into one :class:`PredictionBatch` at once. At one connection a micro-batch is
one row, and building a columnar batch per part to concatenate them later cost ~15 us a row on
the event loop (``benchmarks/serving.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.store._segments import PredictionBatch

__all__ = ["LogRows", "MatrixColumns", "join_rows", "output_columns", "row_records"]


class MatrixColumns(Mapping[str, Any]):
    """The columns of a 2-D array, by name: the inputs of a micro-batch as the model got them.

    Reading a column slices the array; the writer concatenates the arrays of many
    micro-batches first, so each column is sliced once per commit, not once per batch.

    Examples
    --------
    >>> columns = MatrixColumns(np.array([[1.0, 2.0], [3.0, 4.0]]), ["a", "b"])
    >>> list(columns), columns["b"].tolist()
    (['a', 'b'], [2.0, 4.0])
    """

    __slots__ = ("matrix", "names")

    def __init__(self, matrix: Any, names: Sequence[str]) -> None:
        self.matrix = matrix
        self.names = tuple(names)

    def __getitem__(self, name: str) -> Any:
        return self.matrix[:, self.names.index(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


def output_columns(
    predictions: Any, proba: np.ndarray | None, classes: Sequence[Any] | None
) -> dict[str, Any]:
    """The output columns of a batch, as scored files and the prediction log store them:
    ``prediction``, then ``proba_<class>`` and ``confidence`` where there are probabilities.

    Examples
    --------
    >>> columns = output_columns(["b"], np.array([[0.25, 0.75]]), ["a", "b"])
    >>> {name: np.asarray(values).tolist() for name, values in columns.items()}
    {'prediction': ['b'], 'proba_a': [0.25], 'proba_b': [0.75], 'confidence': [0.75]}
    """
    out: dict[str, Any] = {"prediction": predictions}
    if proba is not None and classes is not None:
        for index, name in enumerate(classes):
            out[f"proba_{name}"] = proba[:, index]
        out["confidence"] = proba.max(axis=1)
    return out


@dataclass(slots=True)
class LogRows:
    """Rows of one model version from one source, for the prediction log.

    ``inputs`` maps each input feature to a column (a :class:`MatrixColumns` for a numeric
    micro-batch); ``proba`` is an ``n x len(classes)`` array (or rows of floats) where the model
    gave probabilities; ``extra`` holds any other output column, one value per row (``error``
    for failed predictions, ``deferred`` for answers a person decides); ``latencies`` is
    ``(milliseconds, rows)`` per request, in row order.

    Examples
    --------
    >>> rows = LogRows("m", 1, ["p1", "p2"], 5.0, {"x": [1.0, 2.0]}, ["a", "b"],
    ...                latencies=[(3.0, 2)])
    >>> batch = join_rows([rows])
    >>> list(batch.ids), batch.latency_ms.tolist(), dict(batch.outputs)
    (['p1', 'p2'], [3.0, 3.0], {'prediction': ['a', 'b']})
    """

    model: str
    version: int
    ids: Sequence[str]
    ts: float
    inputs: Mapping[str, Any]
    predictions: Sequence[Any]
    proba: Any = None
    classes: tuple[str, ...] | None = None
    extra: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    latencies: Sequence[tuple[float, int]] = ()
    source: str = "online"
    batch_id: str | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def key(self) -> tuple[Any, ...]:
        """Rows with equal keys join into one stored segment."""
        return (
            self.model,
            self.version,
            self.source,
            self.batch_id,
            tuple(self.inputs),
            self.classes if self.proba is not None else None,
            tuple(self.extra),
        )


def join_rows(parts: Sequence[LogRows]) -> PredictionBatch:
    """One columnar batch of parts with the same :attr:`LogRows.key`, in their order."""
    first = parts[0]
    classes = first.classes if first.proba is not None else None
    proba = (
        np.concatenate([np.asarray(part.proba, dtype=np.float64) for part in parts])
        if classes is not None
        else None
    )
    predictions = [p for part in parts for p in part.predictions]
    outputs = output_columns(predictions, proba, classes)
    for name in first.extra:
        outputs[name] = [value for part in parts for value in part.extra[name]]
    latencies = [pair for part in parts for pair in part.latencies]
    n = sum(len(part) for part in parts)
    latency_ms = (
        np.repeat([ms for ms, _ in latencies], [count for _, count in latencies])
        if latencies
        else np.full(n, np.nan)
    )
    return PredictionBatch(
        model=first.model,
        version=first.version,
        ids=[pid for part in parts for pid in part.ids],
        ts=np.repeat([part.ts for part in parts], [len(part) for part in parts]),
        inputs=_join_inputs([part.inputs for part in parts]),
        outputs=outputs,
        source=first.source,
        batch_id=first.batch_id,
        latency_ms=latency_ms,
    )


def _join_inputs(columns: list[Mapping[str, Any]]) -> Mapping[str, Any]:
    if len(columns) == 1:
        only = columns[0]
        return {name: only[name] for name in only} if isinstance(only, pd.DataFrame) else only
    if all(isinstance(c, MatrixColumns) for c in columns):
        matrices = [c.matrix for c in columns if isinstance(c, MatrixColumns)]
        return MatrixColumns(np.concatenate(matrices), list(columns[0]))
    out: dict[str, Any] = {}
    for name in columns[0]:
        values = [c[name] for c in columns]
        if all(isinstance(v, np.ndarray) for v in values):
            out[name] = np.concatenate(values)
        else:
            out[name] = [x for v in values for x in v]
    return out


def row_records(rows: LogRows) -> list[dict[str, Any]]:
    """The rows one by one, as plain JSON-ready records (for the dead-letter file).

    Examples
    --------
    >>> rows = LogRows("m", 1, ["p1"], 5.0, {"x": [1.5]}, [None], extra={"error": ["KeyError"]})
    >>> row_records(rows)[0]["outputs"]
    {'prediction': None, 'error': 'KeyError'}
    """
    batch = join_rows([rows])
    inputs: Mapping[str, Any] = batch.inputs  # type: ignore[assignment]
    outputs: Mapping[str, Any] = batch.outputs  # type: ignore[assignment]
    latency = np.asarray(batch.latency_ms, dtype=np.float64)
    return [
        {
            "id": pid,
            "ts": rows.ts,
            "model": rows.model,
            "version": rows.version,
            "source": rows.source,
            "inputs": {name: _item(column[i]) for name, column in inputs.items()},
            "outputs": {name: _item(column[i]) for name, column in outputs.items()},
            "latency_ms": None if np.isnan(latency[i]) else float(latency[i]),
        }
        for i, pid in enumerate(batch.ids)
    ]


def _item(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
