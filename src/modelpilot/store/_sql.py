"""SQL that must mean the same on every backend the store supports (SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Integer
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["floor_int"]


class floor_int(FunctionElement[int]):
    """The floor of a non-negative number, as an integer: the index of a time bucket.

    ``CAST(x AS INTEGER)`` is not portable: SQLite truncates (the floor, for x >= 0) where
    PostgreSQL rounds, which would put half of every bucket's rows into the next one.

    Examples
    --------
    >>> from sqlalchemy import column, select
    >>> from sqlalchemy.dialects import postgresql, sqlite
    >>> query = select(floor_int(column("bucket")))
    >>> str(query.compile(dialect=sqlite.dialect()))
    'SELECT CAST(bucket AS INTEGER) AS floor_int_1'
    >>> str(query.compile(dialect=postgresql.dialect()))
    'SELECT CAST(floor(bucket) AS INTEGER) AS floor_int_1'
    """

    type = Integer()
    inherit_cache = True
    name = "floor_int"


@compiles(floor_int)
def _truncated(element: floor_int, compiler: Any, **kw: Any) -> str:
    return f"CAST({compiler.process(element.clauses, **kw)} AS INTEGER)"


@compiles(floor_int, "postgresql")
def _floored(element: floor_int, compiler: Any, **kw: Any) -> str:
    return f"CAST(floor({compiler.process(element.clauses, **kw)}) AS INTEGER)"
