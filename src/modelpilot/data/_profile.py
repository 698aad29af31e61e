"""The reference profile: enough of the training data's distribution to test drift without it.

Per numeric feature: count, missing, mean, std, min, max and 1001 exact quantiles (the empirical
quantile function at every 0.1%, so an ECDF rebuilt from it is within 0.001 of the raw one), plus
exact value counts when the feature has at most 100 distinct values (integer-like features such
as bedrooms). Per categorical or boolean feature: value counts (top 1000, the rest as one
``__other__`` count). Per text feature: the quantiles of its length. The profile is computed by
DuckDB in one pass per column over a file or a DataFrame, so memory stays bounded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from modelpilot.data._io import file_format
from modelpilot.errors import DataError, NotFoundError
from modelpilot.spec import FeatureSpec

__all__ = ["N_QUANTILES", "build_profile", "duckdb_source"]

N_QUANTILES = 1001
MAX_EXACT_VALUES = 100
MAX_CATEGORIES = 1000
OTHER = "__other__"


def duckdb_source(
    con: duckdb.DuckDBPyConnection, data: pd.DataFrame | str | os.PathLike[str]
) -> str:
    """Register ``data`` with ``con`` as the view ``src`` and return its name."""
    if isinstance(data, pd.DataFrame):
        con.register("src_frame", data)
        con.execute("CREATE OR REPLACE TEMP VIEW src AS SELECT * FROM src_frame")
        return "src"
    path = Path(data)
    if not path.is_file():
        raise NotFoundError("file", str(path), hint="check the path")
    literal = str(path).replace("'", "''")
    if file_format(path) == "parquet":
        reader = f"read_parquet('{literal}')"
    else:
        reader = f"read_csv('{literal}', header=true, sample_size=-1)"
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW src AS SELECT * FROM {reader}")
        con.execute("SELECT * FROM src LIMIT 0")
    except duckdb.Error as exc:
        raise DataError(f"{path}: cannot be read ({str(exc).splitlines()[0]})") from None
    return "src"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _numeric_profile(con: duckdb.DuckDBPyConnection, column: str) -> dict[str, Any]:
    col = f"TRY_CAST({_q(column)} AS DOUBLE)"
    probs = ", ".join(f"{i / (N_QUANTILES - 1):.4f}" for i in range(N_QUANTILES))
    row = con.execute(
        f"SELECT COUNT(*), COUNT({col}), AVG({col}), STDDEV_SAMP({col}), MIN({col}), MAX({col}), "
        f"QUANTILE_CONT({col}, [{probs}]), COUNT(DISTINCT {col}) FROM src"
    ).fetchone()
    assert row is not None  # an aggregate always returns one row
    n, present, mean, std, low, high, quantiles, distinct = row
    profile: dict[str, Any] = {
        "type": "numeric",
        "count": int(n),
        "missing": int(n - present),
        "mean": mean,
        "std": std,
        "min": low,
        "max": high,
        "quantiles": [float(q) for q in quantiles] if quantiles is not None else [],
    }
    if present and distinct <= MAX_EXACT_VALUES:
        pairs = con.execute(
            f"SELECT {col} AS v, COUNT(*) FROM src WHERE {col} IS NOT NULL GROUP BY v ORDER BY v"
        ).fetchall()
        profile["values"] = [[float(v), int(c)] for v, c in pairs]
    return profile


def _counts_profile(con: duckdb.DuckDBPyConnection, column: str, kind: str) -> dict[str, Any]:
    col = f"CAST({_q(column)} AS VARCHAR)"
    total, present = con.execute(f"SELECT COUNT(*), COUNT({_q(column)}) FROM src").fetchone() or (
        0,
        0,
    )
    pairs = con.execute(
        f"SELECT {col} AS v, COUNT(*) AS c FROM src WHERE {_q(column)} IS NOT NULL "
        f"GROUP BY v ORDER BY c DESC, v LIMIT {MAX_CATEGORIES + 1}"
    ).fetchall()
    counts = {str(v): int(c) for v, c in pairs[:MAX_CATEGORIES]}
    if kind == "boolean":
        counts = {_bool_key(k): c for k, c in counts.items()}
    other = int(present) - sum(counts.values())
    if other:
        counts[OTHER] = other
    return {"type": kind, "count": int(total), "missing": int(total - present), "counts": counts}


def _bool_key(value: str) -> str:
    return "true" if value.lower() in {"true", "1", "1.0", "yes"} else "false"


def _text_profile(con: duckdb.DuckDBPyConnection, column: str) -> dict[str, Any]:
    col = f"LENGTH(CAST({_q(column)} AS VARCHAR))"
    probs = ", ".join(f"{i / 100:.2f}" for i in range(101))
    n, present, mean, quantiles = con.execute(
        f"SELECT COUNT(*), COUNT({_q(column)}), AVG({col}), "
        f"QUANTILE_CONT({col}, [{probs}]) FROM src"
    ).fetchone() or (0, 0, None, None)
    return {
        "type": "text",
        "count": int(n),
        "missing": int(n - present),
        "mean_length": mean,
        "length_quantiles": [float(q) for q in quantiles or []],
    }


def build_profile(
    data: pd.DataFrame | str | os.PathLike[str],
    features: Sequence[FeatureSpec],
    *,
    target: FeatureSpec | None = None,
) -> dict[str, Any]:
    """Profile ``data`` (a DataFrame or a CSV/Parquet path) for the declared features.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from modelpilot.spec import FeatureSpec
    >>> frame = pd.DataFrame({"x": np.arange(1000.0), "c": ["a", "b"] * 500})
    >>> profile = build_profile(frame, [FeatureSpec(name="x", type="numeric"),
    ...                                 FeatureSpec(name="c", type="categorical")])
    >>> columns = profile["features"]
    >>> profile["n_rows"], columns["x"]["quantiles"][500], columns["c"]["counts"]
    (1000, 499.5, {'a': 500, 'b': 500})
    """
    con = duckdb.connect()
    try:
        duckdb_source(con, data)
        available = {row[0] for row in con.execute("DESCRIBE src").fetchall()}
        n_rows = int((con.execute("SELECT COUNT(*) FROM src").fetchone() or (0,))[0])
        out: dict[str, Any] = {"format": 1, "n_rows": n_rows, "features": {}}
        columns = list(features) + ([target] if target is not None else [])
        for feature in columns:
            if feature.name not in available:
                raise DataError(
                    f"column {feature.name!r} is declared in the schema but missing from the data; "
                    f"the data has {', '.join(sorted(available))}"
                )
            if feature.type == "numeric":
                profile = _numeric_profile(con, feature.name)
            elif feature.type == "text":
                profile = _text_profile(con, feature.name)
            else:
                profile = _counts_profile(con, feature.name, feature.type)
            if target is not None and feature is target:
                out["target"] = {"name": feature.name, **profile}
            else:
                out["features"][feature.name] = profile
        return out
    finally:
        con.close()
