"""From raw values to what the methods work on: sorted floats, tie counts, label counts.

Counting labels hashes each value once (Arrow's ``value_counts`` for Arrow-backed strings,
``pandas.factorize`` otherwise); everything on numbers works on sorted arrays in O(n).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from modelpilot.errors import DataError

__all__ = [
    "FloatArray",
    "IntArray",
    "Kind",
    "bin_counts",
    "count_at_or_below",
    "count_below",
    "count_labels",
    "distinct_counts",
    "infer_kind",
    "sorted_numeric",
]

Kind = Literal["numeric", "categorical"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def count_at_or_below(values: FloatArray) -> IntArray:
    """``searchsorted(values, values, 'right')`` for sorted ``values``, in O(n)."""
    n = values.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.flatnonzero(values[1:] != values[:-1]) + 1  # first index of each later tie group
    group_end = np.append(ends, n)  # one past the last index of each tie group
    sizes = np.diff(np.concatenate(([0], group_end)))
    return np.repeat(group_end, sizes).astype(np.int64, copy=False)


def count_below(values: FloatArray) -> IntArray:
    """``searchsorted(values, values, 'left')`` for sorted ``values``, in O(n)."""
    n = values.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.concatenate(([0], np.flatnonzero(values[1:] != values[:-1]) + 1))
    sizes = np.diff(np.append(starts, n))
    return np.repeat(starts, sizes).astype(np.int64, copy=False)


def distinct_counts(values: FloatArray) -> tuple[FloatArray, IntArray]:
    """The distinct values of sorted ``values`` and their counts."""
    if values.size == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    starts = np.concatenate(([0], np.flatnonzero(values[1:] != values[:-1]) + 1))
    counts = np.diff(np.append(starts, values.size)).astype(np.int64)
    return values[starts], counts


def sorted_numeric(values: Any, name: str, where: str) -> tuple[FloatArray, int]:
    """Sorted non-missing float values and the number of missing ones."""
    try:
        if isinstance(values, pd.Series) and values.dtype != np.float64:
            array = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:  # a float64 column is read in place, without a copy
            array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        series = pd.Series(values)
        bad = series[pd.to_numeric(series, errors="coerce").isna() & series.notna()]
        raise DataError(
            f"feature {name!r} is numeric but the {where} data has non-numeric values such as "
            f"{bad.iloc[0]!r}; fix the data, or declare the feature categorical"
        ) from None
    if array.ndim != 1:
        raise DataError(f"feature {name!r}: expected one column of values, got shape {array.shape}")
    missing = np.isnan(array)
    # One copy either way: the sorted copy, or the compressed copy sorted in place.
    ordered = array[~missing] if missing.any() else array.copy()
    ordered.sort()
    return ordered, int(array.size - ordered.size)


def _label(value: Any) -> str:
    # Booleans are spelled as profiles spell them, so data and profile counts line up.
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


def count_labels(values: Any) -> tuple[list[str], IntArray, int]:
    """Labels, their counts and the number of missing values, hashing each value once."""
    series = (
        values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    )
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        uniques: Sequence[Any] = list(series.cat.categories)
    elif getattr(dtype, "storage", None) == "pyarrow" or isinstance(dtype, pd.ArrowDtype):
        # Arrow-backed strings (pandas' default): Arrow counts them without a codes array.
        array = pa.array(series)
        found = pc.value_counts(array)
        pairs = [
            (v, c)
            for v, c in zip(
                found.field("values").to_pylist(), found.field("counts").to_pylist(), strict=True
            )
            if v is not None
        ]
        return (*_merge([v for v, _ in pairs], [c for _, c in pairs]), int(array.null_count))
    else:
        codes, found_values = pd.factorize(series, use_na_sentinel=True)
        uniques = list(found_values)
    # Missing values have code -1: shift by one and drop the first bin rather than filtering.
    counts = np.bincount(codes + 1, minlength=len(uniques) + 1)
    return (*_merge(uniques, counts[1:].tolist()), int(counts[0]))


def _merge(uniques: Sequence[Any], counts: Sequence[int]) -> tuple[list[str], IntArray]:
    merged: dict[str, int] = {}
    for value, count in zip(uniques, counts, strict=True):
        if count:
            key = _label(value)
            merged[key] = merged.get(key, 0) + int(count)
    return list(merged), np.array(list(merged.values()), dtype=np.int64)


def bin_counts(sorted_values: FloatArray, edges: FloatArray) -> IntArray:
    """Counts of sorted values in the bins (-inf, e1), [e1, e2), ..., [ek, inf)."""
    cuts = np.searchsorted(sorted_values, edges, side="left")
    return np.diff(np.concatenate(([0], cuts, [sorted_values.size]))).astype(np.int64)


def infer_kind(values: Any) -> Kind:
    """'numeric' for a numeric (not boolean) dtype, else 'categorical'.

    Examples
    --------
    >>> import pandas as pd
    >>> [infer_kind(pd.Series(values)) for values in ([1.5, 2.0], ["a"], [True])]
    ['numeric', 'categorical', 'categorical']
    """
    dtype = values.dtype if hasattr(values, "dtype") else np.asarray(values).dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    return "numeric" if pd.api.types.is_numeric_dtype(dtype) else "categorical"
