"""Reading CSV and Parquet files, whole or in bounded chunks, with errors a person can act on."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from modelpilot.errors import DataError, NotFoundError

__all__ = ["file_format", "iter_batches", "read_table", "sha256_file"]

_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_ARROW_TYPES = {
    "numeric": pa.float64(),
    "categorical": pa.string(),
    "text": pa.string(),
    "boolean": pa.bool_(),
}


def file_format(path: str | os.PathLike[str]) -> str:
    """'csv' or 'parquet', from the file name.

    Examples
    --------
    >>> file_format("data/train.parquet")
    'parquet'
    >>> file_format("data/train.xlsx")
    Traceback (most recent call last):
    ...
    modelpilot.errors.DataError: data/train.xlsx: unsupported file type '.xlsx'; expected ...
    """
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv or .parquet")
    return _FORMATS[suffix]


def _check_exists(path: str | os.PathLike[str]) -> Path:
    file = Path(path)
    if not file.is_file():
        raise NotFoundError("file", str(path), hint="check the path")
    return file


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(_check_exists(path), "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _csv_convert_options(
    path: Path, types: Mapping[str, str] | None, *, lenient: bool = False
) -> pacsv.ConvertOptions:
    # Ints are read as float64: a later chunk with a missing value or a decimal must not change
    # the column's type halfway through the file.
    column_types: dict[str, pa.DataType] = {}
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 20))
        schema = reader.schema
        reader.close()
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    for field in schema:
        if pa.types.is_integer(field.type):
            column_types[field.name] = pa.float64()
        elif pa.types.is_null(field.type):
            column_types[field.name] = pa.string()
    for name, kind in (types or {}).items():
        if name in schema.names and kind in _ARROW_TYPES:
            # Lenient: numbers are read as text here and cast per chunk (_cast_numbers).
            strict = not lenient or kind != "numeric"
            column_types[name] = _ARROW_TYPES[kind] if strict else pa.string()
    return pacsv.ConvertOptions(
        column_types=column_types,
        true_values=["true", "True", "TRUE"],
        false_values=["false", "False", "FALSE"],
        strings_can_be_null=True,
    )


def _cast_numbers(table: pa.Table, names: Sequence[str]) -> pa.Table:
    """``table`` with each column of ``names`` cast from text to float64 where every cell of
    the chunk converts; a column with a cell that does not stays text in this chunk only."""
    for name in names:
        if name not in table.column_names:
            continue
        index = table.column_names.index(name)
        try:
            column = pc.cast(table.column(index), pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue  # the validator names the cells that are not numbers
        table = table.set_column(index, name, column)
    return table


def iter_batches(
    path: str | os.PathLike[str],
    *,
    batch_rows: int = 100_000,
    columns: Sequence[str] | None = None,
    types: Mapping[str, str] | None = None,
    lenient: bool = False,
) -> Iterator[pd.DataFrame]:
    """Yield the file as DataFrames of at most about ``batch_rows`` rows; memory stays bounded.

    ``types`` maps column names to feature types (numeric, categorical, boolean, text) so a
    declared schema decides how CSV values are parsed. A CSV cell that does not parse as its
    declared type fails the read, unless ``lenient``: then a numeric column is converted by
    Arrow chunk by chunk, and in a chunk where some cell is not a number it stays text, for the
    validator to name the bad cells (batch scoring: one bad cell rejects its row, not the file,
    and the other chunks keep Arrow's speed).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rows.csv"
    >>> _ = path.write_text(chr(10).join(["size,city", "80,a", "95.5,b", "big,c"]))
    >>> [chunk] = iter_batches(path, types={"size": "numeric"}, lenient=True)
    >>> chunk["size"].tolist()  # one cell is not a number: this chunk's column stays text
    ['80', '95.5', 'big']
    >>> _ = path.write_text(chr(10).join(["size,city", "80,a", "95.5,b"]))
    >>> [chunk] = iter_batches(path, types={"size": "numeric"}, lenient=True)
    >>> chunk["size"].tolist()
    [80.0, 95.5]
    """
    file = _check_exists(path)
    fmt = file_format(file)
    try:
        if fmt == "parquet":
            parquet = pq.ParquetFile(file)
            for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
                yield batch.to_pandas()
            return
        convert = _csv_convert_options(file, types, lenient=lenient)
        numbers = [n for n, kind in (types or {}).items() if kind == "numeric"] if lenient else []
        if columns is not None:
            convert.include_columns = list(columns)
        reader = pacsv.open_csv(
            file, read_options=pacsv.ReadOptions(block_size=8 << 20), convert_options=convert
        )
        pending: list[pa.RecordBatch] = []
        size = 0
        for batch in reader:
            pending.append(batch)
            size += batch.num_rows
            if size >= batch_rows:
                yield _cast_numbers(pa.Table.from_batches(pending), numbers).to_pandas()
                pending, size = [], 0
        if pending:
            yield _cast_numbers(pa.Table.from_batches(pending), numbers).to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise DataError(f"{file}: cannot be read as {fmt} ({_first_line(exc)})") from None


def read_table(
    path: str | os.PathLike[str],
    *,
    columns: Sequence[str] | None = None,
    types: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Read a whole file into one DataFrame (for holdout sets and other small files)."""
    frames = list(iter_batches(path, batch_rows=1 << 30, columns=columns, types=types))
    if not frames:
        file = Path(path)
        if file_format(file) == "parquet":
            empty: pd.DataFrame = pq.read_table(file).to_pandas()
            return empty
        raise DataError(f"{path}: the file has no rows")
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
