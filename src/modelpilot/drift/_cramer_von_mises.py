"""Cramér-von Mises two-sample test: the integrated squared gap between the two ECDFs.

Without ties the statistic is Anderson's (1962) rank form exactly as
``scipy.stats.cramervonmises_2samp`` computes it (the ranks come from the sorted samples with
``searchsorted`` instead of a pooled sort and ``rankdata``), and so is the p-value: exact for
samples of at most 20 values, otherwise the limiting distribution of Csörgő and Faraway.

With tied values modelpilot departs from scipy on purpose. scipy puts midranks into a formula
derived for distinct values; with ties and unequal sample sizes that inflates the statistic so
much that two samples of the same discrete distribution get p-values near 1e-9 (every time, in
``tests/drift``). modelpilot then computes the statistic from its definition,
``n*m/N^2 * sum((F_ref - F_cur)^2)`` over the pooled values, which equals the rank form without
ties, and takes the p-value from the same limiting distribution (conservative with ties).
More sensitive than Kolmogorov-Smirnov to changes spread over the whole distribution.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np
from scipy import special, stats

from modelpilot.drift._base import BaseMethod, MethodResult
from modelpilot.drift._columns import CurrentColumn, ReferenceColumn
from modelpilot.errors import DataError

__all__ = ["CramerVonMisesTest", "cvm_limit_cdf"]

#: ``cramervonmises_2samp(method="auto")`` is exact up to this many values per sample.
MAX_EXACT_N = 20


def cvm_limit_cdf(x: float) -> float:
    """CDF of the limiting Cramér-von Mises distribution (Csörgő and Faraway 1996, eq. 1.2).

    The series scipy sums, term by term until a term is below 1e-7.

    Examples
    --------
    >>> round(cvm_limit_cdf(0.461), 3)
    0.95
    """
    total, k = 0.0, 0
    while True:
        u = math.exp(special.gammaln(k + 0.5) - special.gammaln(k + 1)) / (
            math.pi**1.5 * math.sqrt(x)
        )
        y = 4 * k + 1
        q = y**2 / (16 * x)
        term = float(u) * math.sqrt(y) * math.exp(-q) * float(special.kv(0.25, q))
        total += term
        if abs(term) < 1e-7:
            return total
        k += 1


class CramerVonMisesTest(BaseMethod):
    """Two-sample Cramér-von Mises test (numeric features); drift when p < threshold.

    Examples
    --------
    >>> import numpy as np
    >>> from modelpilot.drift import CramerVonMisesTest, ReferenceColumn
    >>> rng = np.random.default_rng(0)
    >>> ref = ReferenceColumn.from_values(rng.normal(size=300))
    >>> result = CramerVonMisesTest().compare(ref, rng.normal(0.4, size=300))
    >>> round(result.statistic, 3), result.p_value < 0.05
    (2.792, True)
    """

    name: ClassVar[str] = "cramer_von_mises"
    output: ClassVar[Literal["p_value", "distance"]] = "p_value"
    default_threshold: ClassVar[float] = 0.05

    def _compare(self, ref: ReferenceColumn, cur: CurrentColumn) -> MethodResult:
        if not ref.complete:
            raise DataError(
                f"cramer_von_mises needs every reference value of {ref.name!r}; the "
                "profile is too large to rebuild them, use ks or wasserstein instead"
            )
        u, v = ref.values, cur.values
        nx, ny = u.size, v.size
        if nx < 2 or ny < 2:
            raise DataError(
                f"cramer_von_mises needs at least 2 values on each side for "
                f"{ref.name!r}; got {nx} reference and {ny} current values"
            )
        v_left_at_u = np.searchsorted(v, u, side="left")
        v_right_at_u = np.searchsorted(v, u, side="right")
        u_left_at_v = np.searchsorted(u, v, side="left")
        u_right_at_v = np.searchsorted(u, v, side="right")
        ru_left, ru_right = ref.left_counts, ref.right_counts
        rv_left, rv_right = cur.left_counts, cur.right_counts
        # F_ref - F_cur at every pooled value (right-continuous ECDFs).
        gaps = np.concatenate(
            (ru_right / nx - v_right_at_u / ny, u_right_at_v / nx - rv_right / ny)
        )
        k, total = nx * ny, nx + ny
        tied = (
            int(np.count_nonzero(ru_right - ru_left > 1))
            + int(np.count_nonzero(rv_right - rv_left > 1))
            + int(np.count_nonzero(v_right_at_u > v_left_at_u))
        )
        note = ""
        if tied:
            # Anderson's rank formula (scipy's) is only valid without ties: with ties and unequal
            # sample sizes it inflates the statistic until identical distributions look drifted.
            # The definition itself, n*m/N^2 * sum over pooled values of (F_ref - F_cur)^2,
            # holds with ties (and equals the rank formula without them).
            t = float(k / total**2 * np.sum(gaps**2))
            note = (
                "tied values: statistic from the ECDF definition (scipy's rank formula "
                "is not valid with ties); the p-value is conservative"
            )
        else:
            # Midranks in the pooled sample, as scipy: values below + (values equal + 1) / 2.
            rx = 0.5 * ((ru_right + v_right_at_u) + (ru_left + v_left_at_u) + 1)
            ry = 0.5 * ((rv_right + u_right_at_v) + (rv_left + u_left_at_v) + 1)
            u_stat = nx * np.sum((rx - np.arange(1, nx + 1, dtype=np.float64)) ** 2) + ny * np.sum(
                (ry - np.arange(1, ny + 1, dtype=np.float64)) ** 2
            )
            t = float(u_stat / (k * total) - (4 * k - 1) / (6 * total))
        if max(nx, ny) <= MAX_EXACT_N and not tied:
            p_value = float(stats.cramervonmises_2samp(u, v, method="exact").pvalue)
        else:
            et = (1 + 1 / total) / 6
            vt = (
                (total + 1)
                * (4 * k * total - 3 * (nx**2 + ny**2) - 2 * k)
                / (45 * total**2 * 4 * k)
            )
            tn = 1 / 6 + (t - et) / math.sqrt(45 * vt)
            p_value = 1.0 if tn < 0.003 else max(0.0, 1.0 - cvm_limit_cdf(tn))
        return MethodResult(t, p_value, float(np.abs(gaps).max()), note)
