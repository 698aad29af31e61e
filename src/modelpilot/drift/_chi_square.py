"""Chi-square test of homogeneity on the 2 x k table of reference and current category counts.

This is ``scipy.stats.chi2_contingency`` on that table (with Yates' correction when there are
two categories, as scipy applies by default), computed from counts prepared once. It treats
the reference as the sample it is; Evidently's ``chisquare`` instead takes the reference shares
as exact (a goodness-of-fit test), which overstates the evidence when the reference is small.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from scipy import stats

from modelpilot.drift._base import BaseMethod, MethodResult, shares, total_variation
from modelpilot.drift._columns import CurrentColumn, ReferenceColumn, aligned_counts
from modelpilot.drift._values import IntArray

__all__ = ["ChiSquareTest", "chi_square_homogeneity"]


def chi_square_homogeneity(reference: IntArray, current: IntArray) -> tuple[float, float]:
    """Statistic and p-value of ``chi2_contingency([reference, current])``.

    Examples
    --------
    >>> import numpy as np
    >>> stat, p = chi_square_homogeneity(np.array([30, 70]), np.array([50, 50]))
    >>> round(stat, 4), round(p, 5)
    (7.5208, 0.0061)
    """
    keep = (reference + current) > 0
    observed = np.vstack([reference[keep], current[keep]]).astype(np.float64)
    dof = observed.shape[1] - 1
    if dof <= 0:
        return 0.0, 1.0
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    if dof == 1:
        # Yates' continuity correction, as chi2_contingency(correction=True) applies it.
        gap = expected - observed
        observed = observed + np.sign(gap) * np.minimum(0.5, np.abs(gap))
    statistic = float(((observed - expected) ** 2 / expected).sum())
    return statistic, float(stats.chi2.sf(statistic, dof))


class ChiSquareTest(BaseMethod):
    """Chi-square test of homogeneity (categorical features); drift when p < threshold.

    Numeric features with at most 100 distinct values are compared value by value.

    Examples
    --------
    >>> from modelpilot.drift import ChiSquareTest, ReferenceColumn
    >>> ref = ReferenceColumn.from_values(["a"] * 300 + ["b"] * 700)
    >>> result = ChiSquareTest().compare(ref, ["a"] * 400 + ["b"] * 600)
    >>> round(result.statistic, 2), result.p_value < 0.05, round(result.effect_size, 2)
    (21.54, True, 0.1)
    """

    name: ClassVar[str] = "chi_square"
    kinds: ClassVar[frozenset[str]] = frozenset({"categorical", "discrete"})
    output: ClassVar[Literal["p_value", "distance"]] = "p_value"
    default_threshold: ClassVar[float] = 0.05

    def _compare(self, ref: ReferenceColumn, cur: CurrentColumn) -> MethodResult:
        _, ref_counts, cur_counts = aligned_counts(ref, cur)
        statistic, p_value = chi_square_homogeneity(ref_counts, cur_counts)
        effect = total_variation(shares(ref_counts), shares(cur_counts))
        return MethodResult(statistic, p_value, effect)
