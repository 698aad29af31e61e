"""The Delta log's table layout: a batch of predictions as Delta rows, and rows back as frames.

``predictions`` (partitioned by ``day`` and ``model``) has one row per prediction:

==================  =========  ===============================================================
column              type       meaning
==================  =========  ===============================================================
``id``              string     the prediction id (the one feedback names)
``ts``              double     when it was made, seconds since the epoch (UTC)
``day``             string     ``YYYY-MM-DD`` of ``ts`` (UTC): a partition column
``model``           string     the model's name: a partition column
``version``         long       the model version
``source``          string     ``online``, ``batch`` or ``shadow``
``batch_id``        string     the scoring run (batch rows), else null
``latency_ms``      double     the request's latency, where there was one
``logged_columns``  string     a JSON list of the ``in_``/``out_`` columns this row's batch had
``in_NAME``         any        an input feature, as the model got it
``out_NAME``        any        an output: ``out_prediction``, ``out_proba_CLASS``,
                               ``out_confidence``, ``out_error`` ...
==================  =========  ===============================================================

One table holds every model, so its columns are the union of theirs (a column of another model
is null); ``logged_columns`` (dictionary-encoded by Parquet: nearly free) says which columns a
row really has, so a window reads back with the columns its rows were logged with, as on the
SQL backend. A feature keeps one type across the table: a new batch is cast to the table's
types where that loses nothing (an int to a double column), and refused otherwise.
``docs/scale-out.md`` shows the layout to DuckDB and Polars users.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from modelpilot.errors import DataError
from modelpilot.store._segments import IN, META, OUT, PredictionBatch, prefixed_frame

__all__ = [
    "LABEL_SCHEMA",
    "META_SCHEMA",
    "days_between",
    "delta_rows",
    "id_days",
    "rows_frame",
    "storage_options",
]

DAY = 86_400.0
_IN, _OUT = "in_", "out_"
LOGGED = "logged_columns"

#: The columns every predictions table has (inputs and outputs are added as they come).
META_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("ts", pa.float64()),
        ("day", pa.string()),
        ("model", pa.string()),
        ("version", pa.int64()),
        ("source", pa.string()),
        ("batch_id", pa.string()),
        ("latency_ms", pa.float64()),
        (LOGGED, pa.string()),
    ]
)

#: The labels table: appended to, never updated (a ``replace`` label supersedes the earlier
#: labels of its prediction when read), joined with the predictions on ``prediction_id``.
LABEL_SCHEMA = pa.schema(
    [
        ("prediction_id", pa.string()),
        ("ts", pa.float64()),
        ("day", pa.string()),
        ("seq", pa.int64()),
        ("kind", pa.string()),
        ("label", pa.string()),
        ("source", pa.string()),
        ("replace", pa.bool_()),
    ]
)


def day_of(ts: float) -> str:
    """The UTC day of a timestamp, as the ``day`` partition spells it.

    Examples
    --------
    >>> day_of(0.0), day_of(1_700_000_000.0)
    ('1970-01-01', '2023-11-14')
    """
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def days_between(start: float | None, end: float | None) -> tuple[str | None, str | None]:
    """The first and last ``day`` partitions a window ``[start, end)`` can touch."""
    return (
        None if start is None else day_of(start),
        None if end is None else day_of(end),
    )


def id_days(ids: Iterable[str]) -> list[str] | None:
    """The days whose partitions can hold ``ids``, when they are all modelpilot's ids (they
    start with their minting time in milliseconds, and a prediction is stamped when its id is
    minted); None when any is not, and every partition must be read.

    A day either side is read too: a clock that differs by a little between minting and
    stamping (edge devices, a retried batch) must not hide a prediction at midnight.

    Examples
    --------
    >>> id_days(["018bcfe56800" + "0" * 20])
    ['2023-11-13', '2023-11-14', '2023-11-15']
    >>> id_days(["p1"]) is None
    True
    """
    days: set[str] = set()
    for pid in ids:
        if len(pid) != 32:
            return None
        try:
            ms = int(pid[:12], 16)
        except ValueError:
            return None
        seconds = ms / 1000.0
        days.update(day_of(seconds + shift) for shift in (-DAY, 0.0, DAY))
    return sorted(days)


def _storable(array: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A column Delta can store: dictionaries decoded, nulls typed, strings as ``string``."""
    kind = array.type
    if pa.types.is_dictionary(kind):
        array = array.cast(kind.value_type)
        kind = array.type
    if pa.types.is_null(kind):
        return array.cast(pa.string())  # a column with no value yet: Delta has no null type
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return array.cast(pa.string())
    return array


def delta_rows(batch: PredictionBatch, existing: pa.Schema | None) -> pa.Table:
    """``batch`` in the predictions table's layout (see the module's docstring), its columns
    cast to the types ``existing`` (the table's schema, if the table exists) gives them."""
    table = batch.to_arrow()
    n = table.num_rows
    ts = np.asarray(table["ts"].to_numpy(), dtype=np.float64)
    days: list[str] = (
        ts.astype("datetime64[s]").astype("datetime64[D]").astype(str).tolist() if n else []
    )
    columns: dict[str, Any] = {
        "id": table["id"].cast(pa.string()),
        "ts": table["ts"],
        "day": pa.array(days, pa.string()),
        "model": pa.array([batch.model] * n, pa.string()),
        "version": pa.array([batch.version] * n, pa.int64()),
        "source": pa.array([batch.source] * n, pa.string()),
        "batch_id": pa.array([batch.batch_id] * n, pa.string()),
        "latency_ms": table["latency_ms"],
    }
    logged = []
    for name in table.column_names:
        prefix = _IN if name.startswith(IN) else _OUT if name.startswith(OUT) else None
        if prefix is None:
            continue
        stored = prefix + name.split(":", 1)[1]
        logged.append(stored)
        columns[stored] = _storable(table[name])
    columns[LOGGED] = pa.array([orjson.dumps(logged).decode()] * n, pa.string())
    rows = pa.table(columns)
    return rows if existing is None else fit_rows(rows, existing, batch.model)


def fit_rows(rows: pa.Table, schema: pa.Schema, model: str) -> pa.Table:
    """Cast ``rows``' columns to the table's types where that loses nothing."""
    names = set(schema.names)
    out = []
    for field in rows.schema:
        column = rows[field.name]
        if field.name in names:
            wanted = schema.field(field.name).type
            if pa.types.is_large_string(wanted) or pa.types.is_string_view(wanted):
                wanted = pa.string()  # how delta-rs may report a string column
            if column.type != wanted:
                try:
                    column = column.cast(wanted, safe=True)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    raise DataError(
                        f"the prediction log's Delta table has column {field.name!r} as "
                        f"{wanted}, but model {model!r} logs it as {column.type}; a feature "
                        "keeps one type across the log: rename the feature, or log this model "
                        "to another logging.delta.uri"
                    ) from None
        out.append(column)
    return pa.table(out, names=rows.column_names)


def rows_frame(
    table: pa.Table, *, start: float | None, end: float | None, limit: int | None
) -> pd.DataFrame:
    """Delta rows back in the shape every reader of the log gets (``segments_frame``'s):
    only the input and output columns the rows were logged with."""
    if table.num_rows == 0:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in META})
    stored: dict[str, None] = {}  # in order of first appearance, as segments concatenate
    for value in pc.unique(table[LOGGED]).to_pylist():
        stored.update(dict.fromkeys(orjson.loads(value) if value else []))
    renamed = {
        name: (IN + name[len(_IN) :]) if name.startswith(_IN) else (OUT + name[len(_OUT) :])
        for name in stored
        if name in table.column_names
    }
    keep = [*META, *renamed]
    data = table.select(keep).rename_columns([*META, *renamed.values()]).to_pandas()
    return prefixed_frame(data, start=start, end=end, limit=limit)


def day_chunks(
    dataset: pads.Dataset,
    filters: Sequence[pc.Expression | None],
    *,
    start: float | None,
    end: float | None,
    chunk_rows: int,
) -> Iterator[tuple[pd.DataFrame, int]]:
    """The rows of ``dataset`` matching each filter (one a day, oldest first) as frames of
    about ``chunk_rows`` rows, each with the rows read to make it: a scan that never holds
    more than one chunk."""
    pending: list[pa.RecordBatch] = []
    held = 0
    for where in filters:
        for batch in dataset.to_batches(filter=where, batch_size=chunk_rows):
            if batch.num_rows:
                pending.append(batch)
                held += batch.num_rows
            if held >= chunk_rows:
                table = pa.Table.from_batches(pending)
                yield rows_frame(table, start=start, end=end, limit=None), held
                pending, held = [], 0
    if pending:
        yield rows_frame(pa.Table.from_batches(pending), start=start, end=end, limit=None), held


def label_rows(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Accepted feedback rows (``check_feedback``'s) in the labels table's layout."""
    return pa.table(
        {
            "prediction_id": [r["prediction_id"] for r in rows],
            "ts": [float(r["ts"]) for r in rows],
            "day": [day_of(float(r["ts"])) for r in rows],
            "seq": list(range(len(rows))),
            "kind": [r["kind"] for r in rows],
            "label": [r["label"] for r in rows],
            "source": [r["source"] for r in rows],
            "replace": [bool(r["replace"]) for r in rows],
        },
        schema=LABEL_SCHEMA,
    )


def storage_options(
    uri: str, *, endpoint_url: str | None, environ: Mapping[str, str]
) -> dict[str, str]:
    """What delta-rs needs to reach ``uri``: for ``s3://``, the ``AWS_*`` variables of
    ``environ`` (credentials, region) and an S3-compatible store's endpoint.

    Examples
    --------
    >>> options = storage_options("s3://logs/m", endpoint_url="http://127.0.0.1:9000",
    ...                           environ={"AWS_ACCESS_KEY_ID": "k", "HOME": "/root"})
    >>> sorted(options)
    ['AWS_ACCESS_KEY_ID', 'AWS_ALLOW_HTTP', 'AWS_ENDPOINT_URL']
    >>> storage_options("/srv/log", endpoint_url=None, environ={})
    {}
    """
    if not uri.startswith(("s3://", "s3a://")):
        return {}
    options = {k: v for k, v in environ.items() if k.startswith("AWS_")}
    if endpoint_url:
        options["AWS_ENDPOINT_URL"] = endpoint_url
        if endpoint_url.startswith("http://"):
            options["AWS_ALLOW_HTTP"] = "true"
    return options
