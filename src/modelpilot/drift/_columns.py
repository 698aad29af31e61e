"""Columns prepared once: the reference (from raw data or a profile) and the current data.

A :class:`ReferenceColumn` keeps what every method needs from the reference, computed once and
reused for every comparison: the sorted values of a numeric feature (or, from a profile, the
values rebuilt from its 1001 quantiles or its exact value counts), their mean and standard
deviation, the equal-frequency bin edges and bin counts of the binned methods; or the value
counts of a categorical feature. A :class:`CurrentColumn` is the current data prepared the same
way (sorted once, or counted once), so the methods that run on one feature share the work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any, Literal

import numpy as np

from modelpilot.drift._values import (
    FloatArray,
    IntArray,
    Kind,
    bin_counts,
    count_at_or_below,
    count_below,
    count_labels,
    distinct_counts,
    infer_kind,
    sorted_numeric,
)
from modelpilot.errors import DataError

__all__ = ["CurrentColumn", "ReferenceColumn", "aligned_counts", "prepare_current"]


#: Profiles keep exact value counts for numeric features with at most this many values;
#: categorical methods accept a numeric feature with at most this many distinct values.
MAX_DISCRETE_VALUES = 100
#: The label profiles give to the categories beyond their top 1000.
OTHER = "__other__"
#: The rebuilt values of a profiled feature are at most this many (the p-values still use the
#: profile's true count); rank tests (Cramér-von Mises, Anderson-Darling) need all of them.
MAX_REBUILT_VALUES = 2_000_000


class ReferenceColumn:
    """One reference feature, prepared once and reused by every method and comparison.

    Build it with :meth:`from_values` (raw data) or :meth:`from_profile` (an entry of
    ``modelpilot.data.build_profile``). A numeric reference rebuilt from a profile has the
    profile's exact values when it kept value counts (at most 100 distinct values), and
    otherwise the linear interpolation of its 1001 quantiles, the same interpolation DuckDB's
    ``quantile_cont`` and numpy's default ``quantile`` use.

    Examples
    --------
    >>> import numpy as np
    >>> ref = ReferenceColumn.from_values(np.array([3.0, 1.0, np.nan, 2.0]), name="x")
    >>> ref.kind, ref.n, ref.n_missing, ref.values.tolist()
    ('numeric', 3, 1, [1.0, 2.0, 3.0])
    >>> ReferenceColumn.from_values(["a", "b", "a"], name="c").counts.tolist()
    [2, 1]
    """

    def __init__(
        self,
        *,
        name: str,
        kind: Kind,
        n: int,
        n_missing: int = 0,
        values: FloatArray | None = None,
        quantiles: FloatArray | None = None,
        value_counts: tuple[FloatArray, IntArray] | None = None,
        std: float | None = None,
        categories: Sequence[str] = (),
        counts: IntArray | None = None,
        source: Literal["data", "profile"] = "data",
    ) -> None:
        self.name = name
        self.kind: Kind = kind
        self.n = int(n)
        self.n_missing = int(n_missing)
        self.source = source
        self._values = values
        self._quantiles = quantiles
        self._value_counts = value_counts
        self._std = std
        self.categories: list[str] = list(categories)
        self.counts: IntArray = counts if counts is not None else np.zeros(0, dtype=np.int64)
        self._bins: dict[int, tuple[FloatArray, IntArray]] = {}

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def from_values(
        cls, values: Any, *, name: str = "x", kind: Kind | None = None
    ) -> ReferenceColumn:
        """Prepare raw reference values: sort a numeric column once, count a categorical one."""
        if kind is None:
            kind = infer_kind(values)
        if kind == "numeric":
            ordered, missing = sorted_numeric(values, name, "reference")
            return cls(name=name, kind="numeric", n=ordered.size, n_missing=missing, values=ordered)
        labels, counts, missing = count_labels(values)
        return cls(
            name=name,
            kind="categorical",
            n=int(counts.sum()),
            n_missing=missing,
            categories=labels,
            counts=counts,
        )

    @classmethod
    def from_profile(cls, entry: Mapping[str, Any], *, name: str = "x") -> ReferenceColumn:
        """Prepare one feature of a reference profile (``build_profile(...)["features"][name]``)."""
        kind = entry.get("type")
        total, missing = int(entry.get("count", 0)), int(entry.get("missing", 0))
        if kind == "numeric":
            n = total - missing
            std = entry.get("std")
            # The profile keeps the sample standard deviation; the methods use the population one.
            pop_std = float(std) * math.sqrt((n - 1) / n) if std is not None and n > 1 else 0.0
            pairs = entry.get("values")
            value_counts = None
            if pairs:
                value_counts = (
                    np.array([float(v) for v, _ in pairs]),
                    np.array([int(c) for _, c in pairs], dtype=np.int64),
                )
            quantiles = np.asarray(entry.get("quantiles") or [], dtype=np.float64)
            if n > 0 and value_counts is None and quantiles.size < 2:
                raise DataError(
                    f"the profile of feature {name!r} has no quantiles; rebuild the "
                    "profile with modelpilot.data.build_profile"
                )
            return cls(
                name=name,
                kind="numeric",
                n=n,
                n_missing=missing,
                quantiles=quantiles,
                value_counts=value_counts,
                std=pop_std,
                source="profile",
            )
        if kind in ("categorical", "boolean"):
            counts_map: Mapping[str, int] = entry.get("counts") or {}
            return cls(
                name=name,
                kind="categorical",
                n=int(sum(counts_map.values())),
                n_missing=missing,
                categories=[str(k) for k in counts_map],
                counts=np.array([int(c) for c in counts_map.values()], dtype=np.int64),
                source="profile",
            )
        raise DataError(
            f"feature {name!r} has type {kind!r} in the profile; drift is measured on "
            "numeric, categorical and boolean features only"
        )

    # ---- numeric views --------------------------------------------------------------------
    @cached_property
    def values(self) -> FloatArray:
        """The sorted values (rebuilt from the profile when there is no raw data)."""
        self._require("numeric")
        if self._values is not None:
            return self._values
        if self._value_counts is not None:
            return np.repeat(*self._value_counts)
        size = min(self.n, MAX_REBUILT_VALUES)
        if size == 0:
            return np.zeros(0)
        grid = np.linspace(0.0, 1.0, self._quantiles.size if self._quantiles is not None else 0)
        positions = np.linspace(0.0, 1.0, size) if size > 1 else np.array([0.5])
        return np.asarray(np.interp(positions, grid, np.asarray(self._quantiles)), np.float64)

    @property
    def complete(self) -> bool:
        """Whether :attr:`values` holds every reference value (false only for huge profiles)."""
        return self.values.size == self.n

    @cached_property
    def right_counts(self) -> IntArray:
        """How many reference values are <= each value (ties counted), for ECDF lookups."""
        return count_at_or_below(self.values)

    @cached_property
    def left_counts(self) -> IntArray:
        """How many reference values are < each value, for midranks."""
        return count_below(self.values)

    @cached_property
    def std(self) -> float:
        """Population standard deviation (ddof=0), as Evidently's normed Wasserstein uses."""
        self._require("numeric")
        if self._std is not None:
            return self._std
        # np.std, not a BLAS dot product: OpenBLAS threads make that 20x slower on a busy box.
        return float(np.std(self.values)) if self.values.size else 0.0

    @cached_property
    def distinct(self) -> tuple[FloatArray, IntArray] | None:
        """Distinct values and counts when there are at most 100 of them, else None."""
        self._require("numeric")
        if self._value_counts is not None:
            return self._value_counts
        if self.source == "profile":
            return None
        values = self.values
        if values.size and np.count_nonzero(values[1:] != values[:-1]) >= MAX_DISCRETE_VALUES:
            return None
        return distinct_counts(values)

    def bins(self, n_bins: int) -> tuple[FloatArray, IntArray]:
        """Interior edges of ``n_bins`` equal-frequency bins and the reference count in each.

        Edges are the reference quantiles at 1/n_bins, 2/n_bins, ...; the outer bins are open,
        so current values beyond the reference range land in them. Tied edges are merged.
        """
        if n_bins not in self._bins:
            probs = np.arange(1, n_bins) / n_bins
            if self._values is None and self._value_counts is None and self._quantiles is not None:
                # Exact from the profile: the 1001-point grid contains every k/n_bins for n_bins
                # dividing 1000 (10, 20, 25, ...); other counts interpolate.
                grid = np.linspace(0.0, 1.0, self._quantiles.size)
                edges = np.interp(probs, grid, self._quantiles)
            else:
                edges = np.quantile(self.values, probs) if self.values.size else probs
            edges = np.unique(edges)
            self._bins[n_bins] = (edges, bin_counts(self.values, edges))
        return self._bins[n_bins]

    # ---- categorical view -------------------------------------------------------------------
    def _require(self, kind: Kind) -> None:
        if self.kind != kind:
            raise DataError(f"feature {self.name!r} is {self.kind}; this needs a {kind} feature")

    def __repr__(self) -> str:
        return (
            f"ReferenceColumn(name={self.name!r}, kind={self.kind!r}, n={self.n}, "
            f"source={self.source!r})"
        )


class CurrentColumn:
    """The current values of one feature, prepared once (sorted, or counted).

    Examples
    --------
    >>> import numpy as np
    >>> cur = CurrentColumn.from_values(np.array([2.0, np.nan, 1.0]), kind="numeric")
    >>> cur.n, cur.n_missing, cur.values.tolist()
    (2, 1, [1.0, 2.0])
    """

    def __init__(
        self,
        *,
        kind: Kind,
        n: int,
        n_missing: int = 0,
        values: FloatArray | None = None,
        categories: Sequence[str] = (),
        counts: IntArray | None = None,
    ) -> None:
        self.kind: Kind = kind
        self.n = int(n)
        self.n_missing = int(n_missing)
        self._values = values
        self.categories = list(categories)
        self.counts: IntArray = counts if counts is not None else np.zeros(0, dtype=np.int64)

    @classmethod
    def from_values(cls, values: Any, *, kind: Kind, name: str = "x") -> CurrentColumn:
        if kind == "numeric":
            ordered, missing = sorted_numeric(values, name, "current")
            return cls(kind="numeric", n=ordered.size, n_missing=missing, values=ordered)
        labels, counts, missing = count_labels(values)
        return cls(
            kind="categorical",
            n=int(counts.sum()),
            n_missing=missing,
            categories=labels,
            counts=counts,
        )

    @classmethod
    def from_sorted(cls, values: FloatArray, *, n_missing: int = 0) -> CurrentColumn:
        """Wrap values that are already sorted and free of NaN (the engine's bulk path)."""
        return cls(kind="numeric", n=values.size, n_missing=n_missing, values=values)

    @property
    def values(self) -> FloatArray:
        if self._values is None:
            raise DataError("this current column is categorical; it has counts, not values")
        return self._values

    @cached_property
    def right_counts(self) -> IntArray:
        return count_at_or_below(self.values)

    @cached_property
    def left_counts(self) -> IntArray:
        return count_below(self.values)


def prepare_current(ref: ReferenceColumn, cur: CurrentColumn | Any) -> CurrentColumn:
    """``cur`` as a :class:`CurrentColumn` of the reference's kind (raw arrays are prepared)."""
    if isinstance(cur, CurrentColumn):
        if cur.kind != ref.kind:
            raise DataError(
                f"feature {ref.name!r} is {ref.kind} in the reference but "
                f"{cur.kind} in the current data"
            )
        return cur
    return CurrentColumn.from_values(cur, kind=ref.kind, name=ref.name)


def aligned_counts(
    ref: ReferenceColumn, cur: CurrentColumn
) -> tuple[list[str], IntArray, IntArray]:
    """Reference and current counts over the union of their categories.

    A numeric feature with at most 100 distinct values is counted per value. When the profile
    lumped its rare categories into ``__other__``, current categories it does not list join that
    bucket rather than counting as new.
    """
    if ref.kind == "numeric":
        distinct = ref.distinct
        if distinct is None:
            raise DataError(
                f"feature {ref.name!r} is numeric with more than {MAX_DISCRETE_VALUES} distinct "
                "values, so a categorical method cannot count it; use ks, wasserstein, psi or "
                "jensen_shannon"
            )
        ref_values, ref_counts = distinct
        cur_values, cur_counts = distinct_counts(cur.values)
        union = np.union1d(ref_values, cur_values)
        ref_full = np.zeros(union.size, dtype=np.int64)
        cur_full = np.zeros(union.size, dtype=np.int64)
        ref_full[np.searchsorted(union, ref_values)] = ref_counts
        cur_full[np.searchsorted(union, cur_values)] = cur_counts
        return [f"{v:g}" for v in union.tolist()], ref_full, cur_full
    index = {label: i for i, label in enumerate(ref.categories)}
    labels = list(ref.categories)
    cur_full_list = [0] * len(labels)
    lump = index.get(OTHER)
    for label, count in zip(cur.categories, cur.counts.tolist(), strict=True):
        position = index.get(label)
        if position is None and lump is not None:
            position = lump
        if position is None:
            position = index[label] = len(labels)
            labels.append(label)
            cur_full_list.append(0)
        cur_full_list[position] += count
    ref_full = np.zeros(len(labels), dtype=np.int64)
    ref_full[: ref.counts.size] = ref.counts
    return labels, ref_full, np.array(cur_full_list, dtype=np.int64)
