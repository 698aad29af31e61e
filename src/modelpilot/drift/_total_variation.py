"""Total variation distance: half the sum of absolute share differences across categories.

It is the largest difference in probability the two distributions give to any set of categories
(0 = identical, 1 = disjoint), the categorical counterpart of the Kolmogorov-Smirnov statistic.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from modelpilot.drift._base import BaseMethod, MethodResult, binned_shares, total_variation
from modelpilot.drift._columns import CurrentColumn, ReferenceColumn

__all__ = ["TotalVariationDistance"]


class TotalVariationDistance(BaseMethod):
    """Total variation distance of category shares; drift when >= threshold.

    Numeric features with at most 100 distinct values are compared value by value.

    Examples
    --------
    >>> from modelpilot.drift import ReferenceColumn, TotalVariationDistance
    >>> ref = ReferenceColumn.from_values(["a"] * 50 + ["b"] * 50)
    >>> TotalVariationDistance().compare(ref, ["a"] * 70 + ["b"] * 20 + ["c"] * 10).statistic
    0.3
    """

    name: ClassVar[str] = "total_variation"
    kinds: ClassVar[frozenset[str]] = frozenset({"categorical", "discrete"})
    output: ClassVar[Literal["p_value", "distance"]] = "distance"
    default_threshold: ClassVar[float] = 0.1

    def _compare(self, ref: ReferenceColumn, cur: CurrentColumn) -> MethodResult:
        statistic = total_variation(*binned_shares(ref, cur, None))
        return MethodResult(statistic, None, statistic)
