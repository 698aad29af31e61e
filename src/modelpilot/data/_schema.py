"""Schema inference: the feature schema a data file or DataFrame implies, computed by DuckDB.

Each column's type comes from its storage type (numbers are numeric, booleans boolean) and, for
strings, from how often values repeat: few distinct values relative to rows make a categorical
feature, many make free text. Inference needs two passes over the data at most, both aggregates
in DuckDB, so a file far larger than memory is fine.

The data is opened as the view ``src`` over a DataFrame, a Parquet file or a CSV file by
:class:`~modelpilot.data._source.DataSource`; this module also computes the per-column
statistics it shares with :mod:`modelpilot.data._checks`.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from modelpilot.data._source import Column, DataSource
from modelpilot.errors import DataError
from modelpilot.spec import FeatureSpec

__all__ = ["ColumnStats", "infer_schema"]

#: A string column with at most this many distinct values may be categorical ...
MAX_CATEGORIES = 50
#: ... when they are also fewer than this share of its non-missing values.
MAX_CATEGORY_SHARE = 0.05
#: In files too small for the share to mean anything, this many values that repeat are enough.
FEW_CATEGORIES = 5


@dataclass(frozen=True)
class ColumnStats:
    """What one pass over a column tells: values present, smallest and largest, distinct."""

    column: Column
    n_rows: int
    n_present: int
    low: Any = None
    high: Any = None
    n_distinct: int | None = None
    categories: list[str] | None = None

    @property
    def n_missing(self) -> int:
        return self.n_rows - self.n_present

    @property
    def is_constant(self) -> bool:
        """At most one distinct value (a column with every value missing is constant too)."""
        return self.n_present == 0 or self.low == self.high


def stats_aggregates(column: Column, *, count_distinct: bool = False) -> list[str]:
    """The aggregates of ``src`` that :func:`read_stats` turns into a :class:`ColumnStats`."""
    # No FILTER clauses and no exact COUNT(DISTINCT): a filtered aggregate costs several times
    # more, and an exact distinct count next to other aggregates held 250 MB for 1M rows.
    value = column.value
    if count_distinct or column.kind in {"string", "other"}:
        distinct = f"approx_count_distinct({value})"
    else:
        distinct = "NULL"
    return [f"COUNT({value})", f"MIN({value})", f"MAX({value})", distinct]


def read_stats(column: Column, n_rows: int, values: Sequence[Any]) -> ColumnStats:
    n_present, low, high, distinct = values
    return ColumnStats(
        column, n_rows, int(n_present), low, high, None if distinct is None else int(distinct)
    )


def needs_categories(stats: ColumnStats) -> bool:
    """Whether a string column might be categorical: worth listing its distinct values."""
    # approx_count_distinct is within a few percent; twice the limit leaves a wide margin.
    return (
        stats.column.kind in {"string", "other"}
        and stats.n_distinct is not None
        and stats.n_distinct <= 2 * MAX_CATEGORIES
    )


def categories_aggregate(column: Column) -> str:
    return f"list(DISTINCT {column.text})"


def with_categories(stats: ColumnStats, values: Sequence[Any] | None) -> ColumnStats:
    """``stats`` with the exact distinct values of a string column."""
    distinct = sorted(str(v) for v in values or [] if v is not None)
    return replace(stats, n_distinct=len(distinct), categories=distinct)


def is_categorical(n_distinct: int, n_present: int) -> bool:
    """Whether a string column with these counts is categorical (rather than free text).

    Examples
    --------
    >>> is_categorical(12, 10_000), is_categorical(400, 10_000), is_categorical(3, 40)
    (True, False, True)
    """
    if n_distinct == 0 or n_distinct > MAX_CATEGORIES:
        return False
    if n_distinct < MAX_CATEGORY_SHARE * n_present:
        return True
    return n_distinct <= FEW_CATEGORIES and 2 * n_distinct <= n_present


def feature_from_stats(stats: ColumnStats) -> FeatureSpec:
    """The feature a column's statistics imply.

    No ``range`` is inferred: the observed minimum and maximum are too tight for production,
    where a house a little larger than any in the training data is still a valid house.
    """
    name, kind, nullable = stats.column.name, stats.column.kind, stats.n_missing > 0
    if kind in {"numeric", "boolean"}:
        return FeatureSpec(name=name, type=kind, nullable=nullable)
    categories = stats.categories
    if categories is not None and is_categorical(len(categories), stats.n_present):
        return FeatureSpec(name=name, type="categorical", categories=categories, nullable=nullable)
    return FeatureSpec(name=name, type="text", nullable=nullable)


def scan_stats(
    source: DataSource,
    columns: Sequence[Column],
    *,
    count_distinct: Collection[str] = (),
    extra: Sequence[str] = (),
) -> tuple[int, dict[str, ColumnStats], list[Any]]:
    """One pass over ``src``: the row count, each column's stats, and ``extra`` aggregates.

    String columns, and those in ``count_distinct``, get an approximate distinct count.
    """
    aggregates = ["COUNT(*)"]
    for column in columns:
        aggregates += stats_aggregates(column, count_distinct=column.name in count_distinct)
    aggregates += extra
    row = source.query(f"SELECT {', '.join(aggregates)} FROM src")[0]
    n_rows = int(row[0])
    stats = {
        column.name: read_stats(column, n_rows, row[1 + 4 * i : 5 + 4 * i])
        for i, column in enumerate(columns)
    }
    return n_rows, stats, list(row[1 + 4 * len(columns) :])


def require_column(source: DataSource, name: str, *, role: str) -> None:
    if name not in source.names:
        raise DataError(
            f"the {role} column {name!r} is not in {source.label}; its columns are "
            f"{', '.join(source.names)}. Pass the name of one of them (for example --target)"
        )


def infer_schema(
    path_or_frame: pd.DataFrame | str | os.PathLike[str], *, target: str
) -> list[FeatureSpec]:
    """The feature schema of every column but ``target``, inferred from the data.

    Numbers are numeric, booleans boolean; a string column is categorical, with its observed
    categories, when it has at most 50 distinct values and they are fewer than 5% of its values,
    and free text otherwise. A column with missing values is nullable. No range is inferred.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({
    ...     "size": rng.normal(100, 10, 200), "city": rng.choice(["b", "a"], 200),
    ...     "note": [f"note {i}" for i in range(200)], "price": rng.normal(size=200),
    ... })
    >>> frame.loc[3, "size"] = np.nan
    >>> for feature in infer_schema(frame, target="price"):
    ...     print(feature.name, feature.type, feature.categories, feature.nullable)
    size numeric None True
    city categorical ['a', 'b'] False
    note text None False
    """
    with DataSource(path_or_frame) as source:
        require_column(source, target, role="target")
        return source.run(lambda s: _infer(s, [c for c in s.columns if c.name != target]))


def _infer(source: DataSource, columns: Sequence[Column]) -> list[FeatureSpec]:
    _, stats, _ = scan_stats(source, columns)
    stats, _ = complete_categories(source, stats)
    return [feature_from_stats(s) for s in stats.values()]


def complete_categories(
    source: DataSource, stats: dict[str, ColumnStats], *, extra: Sequence[str] = ()
) -> tuple[dict[str, ColumnStats], list[Any]]:
    """A second pass: the distinct values of possibly categorical columns, and ``extra``."""
    candidates = [s for s in stats.values() if needs_categories(s)]
    aggregates = [categories_aggregate(s.column) for s in candidates] + list(extra)
    if not aggregates:
        return stats, []
    row = source.query(f"SELECT {', '.join(aggregates)} FROM src")[0]
    done = dict(stats)
    for i, candidate in enumerate(candidates):
        done[candidate.column.name] = with_categories(candidate, row[i])
    return done, list(row[len(candidates) :])
