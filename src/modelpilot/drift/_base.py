"""The one protocol every drift method answers, and what a method returns.

Every method is a small class with a ``name``, the feature ``kinds`` it accepts, whether its
``statistic`` is a p-value test or a distance (``output``), a ``default_threshold``, and one
method: ``compare(ref, cur) -> MethodResult``. ``ref`` is a :class:`ReferenceColumn` prepared
once; ``cur`` is a :class:`CurrentColumn` or a plain array of current values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

from modelpilot.drift._columns import (
    CurrentColumn,
    ReferenceColumn,
    aligned_counts,
    prepare_current,
)
from modelpilot.drift._values import FloatArray, IntArray, bin_counts
from modelpilot.errors import DataError

__all__ = ["DriftMethod", "MethodResult"]


@dataclass(frozen=True)
class MethodResult:
    """What one method found on one feature.

    ``effect_size`` is the size of the change on a scale a person can judge: the statistic itself
    for the distances, the Kolmogorov-Smirnov statistic (largest gap between the two cumulative
    distributions) for the numeric tests, the total variation distance for chi-square.

    Examples
    --------
    >>> from modelpilot.drift import ReferenceColumn, TotalVariationDistance
    >>> TotalVariationDistance().compare(ReferenceColumn.from_values(["a", "b"]), ["a", "a"])
    MethodResult(statistic=0.5, p_value=None, effect_size=0.5, note='')
    """

    statistic: float
    p_value: float | None
    effect_size: float
    note: str = ""


@runtime_checkable
class DriftMethod(Protocol):
    """The protocol of every drift method (KSTest, WassersteinDistance, ...).

    Examples
    --------
    >>> from modelpilot.drift import METHODS
    >>> all(isinstance(cls(), DriftMethod) for cls in METHODS.values())
    True
    >>> sorted({cls.output for cls in METHODS.values()})
    ['distance', 'p_value']
    """

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]]
    output: ClassVar[Literal["p_value", "distance"]]
    default_threshold: ClassVar[float]

    def compare(self, ref: ReferenceColumn, cur: CurrentColumn | Any) -> MethodResult:
        """Compare the current values of one feature with its prepared reference."""
        ...


class BaseMethod:
    """Shared checks; subclasses set the class variables and implement ``_compare``."""

    name: ClassVar[str]
    kinds: ClassVar[frozenset[str]] = frozenset({"numeric"})
    output: ClassVar[Literal["p_value", "distance"]] = "p_value"
    default_threshold: ClassVar[float] = 0.05

    def compare(self, ref: ReferenceColumn, cur: CurrentColumn | Any) -> MethodResult:
        """Compare the current values of one feature with its prepared reference."""
        # A numeric feature with few distinct values may use a categorical method.
        if ref.kind not in self.kinds and not (ref.kind == "numeric" and "discrete" in self.kinds):
            allowed = " or ".join(sorted(k for k in self.kinds if k != "discrete"))
            raise DataError(
                f"method {self.name!r} works on {allowed} features, but {ref.name!r} is "
                f"{ref.kind}; pick another method for it"
            )
        current = prepare_current(ref, cur)
        if ref.n == 0 or current.n == 0:
            side = "reference" if ref.n == 0 else "current"
            raise DataError(
                f"feature {ref.name!r} has no values in the {side} data (all missing); "
                "leave it out or fix the data"
            )
        return self._compare(ref, current)

    def _compare(self, ref: ReferenceColumn, cur: CurrentColumn) -> MethodResult:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def ecdf_gaps(ref: ReferenceColumn, cur: CurrentColumn) -> tuple[FloatArray, FloatArray]:
    """``F_ref - F_cur`` at every reference value and at every current value (ties counted).

    The same integers divided the same way as ``scipy.stats.ks_2samp``, without its two sorts.
    """
    u, v = ref.values, cur.values
    n, m = u.size, v.size
    at_ref = ref.right_counts / n - np.searchsorted(v, u, side="right") / m
    at_cur = np.searchsorted(u, v, side="right") / n - cur.right_counts / m
    return at_ref, at_cur


def ks_statistic(ref: ReferenceColumn, cur: CurrentColumn) -> float:
    """The two-sided Kolmogorov-Smirnov statistic, exactly as ``ks_2samp`` computes it."""
    at_ref, at_cur = ecdf_gaps(ref, cur)
    largest = max(float(at_ref.max()), float(at_cur.max()))
    smallest = min(float(at_ref.min()), float(at_cur.min()))
    return max(float(np.clip(-smallest, 0, 1)), largest)


def shares(counts: IntArray) -> FloatArray:
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def binned_shares(
    ref: ReferenceColumn, cur: CurrentColumn, n_bins: int | None
) -> tuple[FloatArray, FloatArray]:
    """Reference and current shares: per equal-frequency bin (numeric features, when ``n_bins``
    is given) or per category (or per value of a numeric feature with few distinct values)."""
    if ref.kind == "numeric" and n_bins is not None:
        # A numeric feature with no more distinct values than bins: each value is its own bin.
        distinct = ref.distinct
        if distinct is not None and distinct[0].size <= n_bins:
            _, ref_counts, cur_counts = aligned_counts(ref, cur)
            return shares(ref_counts), shares(cur_counts)
        edges, ref_counts = ref.bins(n_bins)
        return shares(ref_counts), shares(bin_counts(cur.values, edges))
    _, ref_counts, cur_counts = aligned_counts(ref, cur)
    return shares(ref_counts), shares(cur_counts)


def total_variation(p: FloatArray, q: FloatArray) -> float:
    return float(0.5 * np.abs(p - q).sum())
