"""The data as DuckDB sees it: the view ``src`` over a DataFrame, a Parquet file or a CSV file
(:class:`DataSource`), its columns (:class:`Column`), and SQL quoting. Schema inference
(``_schema.py``) and the data checks (``_checks.py``) both read the data through it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import duckdb
import pandas as pd

from modelpilot.data._io import file_format
from modelpilot.data._profile import duckdb_source
from modelpilot.errors import DataError, NotFoundError

__all__ = ["Column", "DataSource", "literal", "quote"]

_NUMERIC_TYPES = re.compile(
    r"^(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)|FLOAT|DOUBLE|REAL|DECIMAL(\(.*\))?)$"
)
ColumnKind = Literal["numeric", "boolean", "string", "other"]
T = TypeVar("T")


def quote(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Column:
    """A column of ``src``: its name, DuckDB type, and SQL for its values."""

    name: str
    sql_type: str

    @property
    def kind(self) -> ColumnKind:
        if _NUMERIC_TYPES.match(self.sql_type):
            return "numeric"
        if self.sql_type == "BOOLEAN":
            return "boolean"
        if self.sql_type == "VARCHAR":
            return "string"
        return "other"

    @property
    def value(self) -> str:
        """The column as SQL: a float NaN is missing (NULL), like in pandas; types without a
        feature type of their own become strings."""
        if self.sql_type in {"FLOAT", "DOUBLE", "REAL"}:
            return f"NULLIF({quote(self.name)}, 'NaN'::DOUBLE)"
        if self.kind == "other":
            return f"CAST({quote(self.name)} AS VARCHAR)"
        return quote(self.name)

    @property
    def number(self) -> str:
        """The column's values as DOUBLE; NULL where a value is not a number."""
        if self.kind == "numeric":
            return f"CAST({self.value} AS DOUBLE)"
        if self.kind == "boolean":
            return "NULL::DOUBLE"
        return f"TRY_CAST({self.value} AS DOUBLE)"

    @property
    def text(self) -> str:
        """The column's values as strings."""
        return self.value if self.kind == "string" else f"CAST({self.value} AS VARCHAR)"


class _SampledTypesFailed(Exception):
    """A CSV value did not fit the type DuckDB guessed from a sample of the file."""


class DataSource:
    """``data`` registered with a fresh DuckDB connection as the view ``src``.

    DataFrames and Parquet files go through :func:`duckdb_source`. CSV files do not: it reads
    them with ``sample_size=-1``, and DuckDB then sniffs the whole file again on every query
    (about 5 s for 1M rows). Here a CSV file is sniffed once, from a sample of rows, and read
    with that dialect and those types spelled out. In the rare case a later value or quoted
    field does not fit them, :meth:`run` repeats the computation with the whole file sniffed.
    ``text_columns`` are read from a CSV as strings (a declared categorical ``zip`` must keep
    its leading zeros).
    """

    def __init__(
        self,
        data: pd.DataFrame | str | os.PathLike[str],
        *,
        text_columns: Collection[str] = (),
    ) -> None:
        if isinstance(data, pd.DataFrame):
            self.label = "the DataFrame"
            self._csv: Path | None = None
        else:
            path = Path(data)
            if not path.is_file():
                raise NotFoundError("file", str(data), hint="check the path")
            self.label = str(data)
            self._csv = path if file_format(path) == "csv" else None
            if path.stat().st_size == 0:
                raise DataError(f"{data} is empty (not even a header line); is it the right file?")
        self._data = data
        self._text_columns = set(text_columns)
        self._full_sniff = False
        self.con = duckdb.connect()
        self.con.execute("SET enable_progress_bar = false")
        # Parquet's min/max statistics leave NaN out, and DuckDB by default trusts them: it would
        # optimise ``NULLIF(x, 'NaN')`` away for a file pyarrow wrote (duckdb/duckdb#25521).
        self.con.execute("SET parquet_can_have_nan = true")
        # DuckDB guesses a CSV file holds a few dozen rows, and would build the hash table of a
        # semi join on the file's side: memory grew with the file (1.2 GB for 3M rows).
        self.con.execute("SET disabled_optimizers = 'build_side_probe_side'")
        self.columns: list[Column] = []
        try:
            self._register()
        except BaseException:
            self.con.close()
            raise

    def __enter__(self) -> DataSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.con.close()

    def _register(self) -> None:
        if self._csv is None:
            duckdb_source(self.con, self._data)
        else:
            self._register_csv(self._csv)
        described = self.query("DESCRIBE src")
        self.columns = [Column(str(row[0]), str(row[1])) for row in described]

    def _register_csv(self, path: Path) -> None:
        sample = ", sample_size=-1" if self._full_sniff else ""
        try:
            sniffed = self.con.execute(
                "SELECT Delimiter, Quote, Escape, NewLineDelimiter, Comment, SkipRows, Columns, "
                f"DateFormat, TimestampFormat FROM sniff_csv({literal(str(path))}, header=true"
                f"{sample})"
            ).fetchall()[0]
        except duckdb.Error as exc:
            raise DataError(f"{path}: cannot be read as CSV ({_first_line(exc)})") from None
        delim, quote_char, escape, new_line, comment, skip, columns, dates, times = sniffed
        types = {
            str(c["name"]): "VARCHAR" if c["name"] in self._text_columns else str(c["type"])
            for c in columns
        }
        options = {
            "delim": delim,
            "quote": quote_char,
            "escape": escape,
            "new_line": new_line,
            "comment": comment,
            "dateformat": dates,
            "timestampformat": times,
        }
        spelled = "".join(
            f", {key}={literal('' if value == '(empty)' else str(value))}"
            for key, value in options.items()
            if value is not None
        )
        spec = ", ".join(f"{literal(n)}: {literal(t)}" for n, t in types.items())
        self.con.execute(
            f"CREATE OR REPLACE TEMP VIEW src AS SELECT * FROM read_csv({literal(str(path))}, "
            f"auto_detect=false, header=true, skip={int(skip)}{spelled}, columns={{{spec}}})"
        )

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run ``sql``; a failure to read the data becomes a :class:`DataError`."""
        try:
            return self.con.execute(sql).fetchall()
        except duckdb.Error as exc:
            # A value, or a quoted field, that the sample of a CSV file did not prepare for.
            sampled = self._csv is not None and not self._full_sniff
            if sampled and isinstance(
                exc, duckdb.ConversionException | duckdb.InvalidInputException
            ):
                raise _SampledTypesFailed from exc
            raise DataError(f"{self.label}: cannot be read ({_first_line(exc)})") from None

    def run(self, compute: Callable[[DataSource], T]) -> T:
        """``compute(self)``, once more with whole-file CSV types if the sampled ones failed."""
        try:
            return compute(self)
        except _SampledTypesFailed:
            self._full_sniff = True
            self._register()
            return compute(self)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
