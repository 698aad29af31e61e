"""The two passes of the out-of-core drift engine over one side's record batches.

Pass 1 (:func:`first_pass`) learns, per column and in bounded memory: the count of values and
of missing ones, the exact minimum and maximum, the mean and variance (Chan's pairwise merge of
per-batch moments), the distinct values while there are at most 100, a uniform sample of rows
(bottom-k on one random key per row, shared by all columns so the sample stays row-aligned),
exact category counts, and, while the side has at most ``exact_max_rows`` rows, all the values,
so that a side that fits in memory gets the exact statistic. Pass 2 (:func:`second_pass`)
counts every value into the fine bins fixed after pass 1.

Why by hand: the merging of per-batch sketches is the streaming itself; NumPy and Arrow do the
per-batch work (``np.unique``, ``pc.value_counts``, ``np.searchsorted``, ``np.bincount``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelpilot.drift._binned import slot_counts
from modelpilot.drift._columns import MAX_DISCRETE_VALUES
from modelpilot.drift._values import FloatArray, IntArray, Kind, _label
from modelpilot.errors import DataError

__all__ = ["CategorySummary", "NumericSummary", "first_pass", "second_pass"]

OnBatch = Callable[[int], None]


@dataclass
class NumericSummary:
    """What pass 1 learnt about one numeric column of one side."""

    n: int = 0
    n_missing: int = 0
    low: float = math.inf
    high: float = -math.inf
    mean: float = 0.0
    m2: float = 0.0
    #: Distinct values and counts while there are at most 100, else None.
    distinct: dict[float, int] | None = field(default_factory=dict)
    sample: FloatArray = field(default_factory=lambda: np.zeros(0))
    #: All values, sorted, when the side fit under ``exact_max_rows``; else None.
    values: FloatArray | None = None
    _parts: list[FloatArray] | None = field(default_factory=list)

    @property
    def std(self) -> float:
        """Population standard deviation (ddof=0), as the in-memory engine uses."""
        return math.sqrt(self.m2 / self.n) if self.n else 0.0

    def distinct_arrays(self) -> tuple[FloatArray, IntArray] | None:
        if self.distinct is None:
            return None
        keys = np.array(sorted(self.distinct), dtype=np.float64)
        return keys, np.array([self.distinct[k] for k in keys.tolist()], dtype=np.int64)

    def update(self, values: FloatArray, keep: bool) -> None:
        present = values[~np.isnan(values)]
        self.n_missing += values.size - present.size
        if present.size == 0:
            return
        self.low = min(self.low, float(present.min()))
        self.high = max(self.high, float(present.max()))
        # Chan et al.'s merge of (n, mean, M2): stable where sum and sum of squares are not.
        n_b, mean_b = present.size, float(present.mean())
        m2_b = float(np.square(present - mean_b).sum())
        total = self.n + n_b
        delta = mean_b - self.mean
        self.mean += delta * n_b / total
        self.m2 += m2_b + delta * delta * self.n * n_b / total
        self.n = total
        if self.distinct is not None and np.unique(present[:1000]).size > MAX_DISCRETE_VALUES:
            self.distinct = None  # a continuous column: found on its first thousand values
        if self.distinct is not None:
            keys, counts = np.unique(present, return_counts=True)
            for key, count in zip(keys.tolist(), counts.tolist(), strict=True):
                self.distinct[key] = self.distinct.get(key, 0) + count
            if len(self.distinct) > MAX_DISCRETE_VALUES:
                self.distinct = None
        if self._parts is not None:
            if keep:
                self._parts.append(present)
            else:
                self._parts = None

    def finish(self) -> None:
        if self._parts is not None:
            self.values = np.sort(np.concatenate(self._parts)) if self._parts else np.zeros(0)
        self._parts = None


@dataclass
class CategorySummary:
    """Exact counts of one categorical column of one side."""

    n_missing: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def update(self, array: pa.Array, name: str, max_categories: int) -> None:
        self.n_missing += array.null_count
        found = pc.value_counts(array)
        for value, count in zip(
            found.field("values").to_pylist(), found.field("counts").to_pylist(), strict=True
        ):
            if value is not None:
                key = _label(value)
                self.counts[key] = self.counts.get(key, 0) + int(count)
        if len(self.counts) > max_categories:
            raise DataError(
                f"feature {name!r} has more than {max_categories:,} distinct categories; "
                "counting them exactly would not fit the memory bound. Leave it out (--feature), "
                "declare it numeric, or raise max_categories"
            )


class _RowSample:
    """A uniform sample of rows: the ``size`` rows with the smallest random keys so far."""

    def __init__(self, size: int, names: list[str], seed: int) -> None:
        self.size = size
        self.rng = np.random.default_rng(seed)
        self.keys = np.zeros(0)
        self.columns: dict[str, FloatArray] = {name: np.zeros(0) for name in names}

    def update(self, columns: Mapping[str, FloatArray], n_rows: int) -> None:
        if not self.columns or self.size == 0:
            return
        keys = self.rng.random(n_rows)
        if self.keys.size >= self.size:
            # Past warm-up only rows under the current size-th smallest key can enter.
            chosen = np.flatnonzero(keys < self.keys.max())
            keys = keys[chosen]
        else:
            chosen = np.arange(n_rows)
        merged = np.concatenate([self.keys, keys])
        keep = (
            np.argpartition(merged, self.size - 1)[: self.size]
            if merged.size > self.size
            else np.arange(merged.size)
        )
        self.keys = merged[keep]
        for name, values in columns.items():
            self.columns[name] = np.concatenate([self.columns[name], values[chosen]])[keep]


def _as_float(array: pa.Array | pa.ChunkedArray) -> FloatArray:
    return np.asarray(pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def first_pass(
    batches: Iterable[pa.RecordBatch],
    kinds: Mapping[str, Kind],
    *,
    n_rows: int | None,
    sample_size: int,
    exact_max_rows: int,
    max_categories: int,
    seed: int,
    side: str = "current data",
    on_batch: OnBatch | None = None,
) -> tuple[dict[str, NumericSummary | CategorySummary], int]:
    """Summaries of every column of one side and its row count (see the module docstring)."""
    numeric = [name for name, kind in kinds.items() if kind == "numeric"]
    summaries: dict[str, NumericSummary | CategorySummary] = {
        name: NumericSummary() if kind == "numeric" else CategorySummary()
        for name, kind in kinds.items()
    }
    sample = _RowSample(sample_size, numeric, seed)
    keep = n_rows is None or n_rows <= exact_max_rows
    seen = 0
    for batch in batches:
        seen += batch.num_rows
        keep = keep and seen <= exact_max_rows
        floats = {}
        for name, summary in summaries.items():
            column = batch.column(name)
            if isinstance(summary, NumericSummary):
                try:
                    floats[name] = _as_float(column)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    raise DataError(
                        f"feature {name!r} is numeric but the {side} holds it as "
                        f"{column.type}; fix the data, or declare the feature categorical"
                    ) from None
                summary.update(floats[name], keep)
            else:
                summary.update(column, name, max_categories)
        sample.update(floats, batch.num_rows)
        if on_batch is not None:
            on_batch(batch.num_rows)
    for name, summary in summaries.items():
        if isinstance(summary, NumericSummary):
            summary.finish()
            values = sample.columns.get(name, np.zeros(0))
            summary.sample = values[~np.isnan(values)]
    return summaries, seen


def second_pass(
    batches: Iterable[pa.RecordBatch],
    edges: Mapping[str, FloatArray],
    *,
    on_batch: OnBatch | None = None,
) -> dict[str, IntArray]:
    """Exact slot counts (``_binned.slot_counts``) of every column named in ``edges``."""
    totals = {name: np.zeros(2 * e.size + 1, dtype=np.int64) for name, e in edges.items()}
    for batch in batches:
        for name, column_edges in edges.items():
            values = _as_float(batch.column(name))
            totals[name] += slot_counts(values[~np.isnan(values)], column_edges)
        if on_batch is not None:
            on_batch(batch.num_rows)
    return totals
