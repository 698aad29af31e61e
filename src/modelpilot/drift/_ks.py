"""Kolmogorov-Smirnov two-sample test: the largest gap between the two empirical CDFs.

The statistic is computed from the sorted reference (prepared once) and the sorted current values
with two ``searchsorted`` calls, the same integers ``scipy.stats.ks_2samp`` divides, so the result
equals scipy's to the last digit. The p-value is scipy's too: the exact distribution while both
samples have at most 10,000 values (as ``method='auto'``), Smirnov's asymptotic one above.
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np
from scipy import stats

from modelpilot.drift._base import BaseMethod, MethodResult, ks_statistic
from modelpilot.drift._columns import CurrentColumn, ReferenceColumn

__all__ = ["KSTest", "ks_p_value"]

#: ``ks_2samp(method="auto")`` is exact up to this many values per sample.
MAX_EXACT_N = 10_000

try:  # the exact distribution is private in scipy; fall back to the asymptotic one without it
    from scipy.stats._stats_py import _attempt_exact_2kssamp
except ImportError:  # pragma: no cover - depends on the scipy version
    _attempt_exact_2kssamp = None


def ks_p_value(statistic: float, n_reference: int, n_current: int) -> tuple[float, str]:
    """Two-sided p-value of a KS statistic, as ``ks_2samp(method="auto")`` computes it.

    Examples
    --------
    >>> round(ks_p_value(0.1, 1000, 1000)[0], 6)
    9e-05
    """
    note = ""
    if max(n_reference, n_current) <= MAX_EXACT_N and _attempt_exact_2kssamp is not None:
        g = math.gcd(n_reference, n_current)
        success, _, p = _attempt_exact_2kssamp(n_reference, n_current, g, statistic, "two-sided")
        if success:
            return float(np.clip(p, 0, 1)), note
        note = "exact p-value not computable for these sample sizes; asymptotic one used"
    m, n = sorted([float(n_reference), float(n_current)], reverse=True)
    effective = m * n / (m + n)
    return float(np.clip(stats.kstwo.sf(statistic, np.round(effective)), 0, 1)), note


class KSTest(BaseMethod):
    """Two-sample Kolmogorov-Smirnov test (numeric features); drift when p < threshold.

    Examples
    --------
    >>> import numpy as np
    >>> from modelpilot.drift import KSTest, ReferenceColumn
    >>> rng = np.random.default_rng(0)
    >>> ref = ReferenceColumn.from_values(rng.normal(size=500))
    >>> result = KSTest().compare(ref, rng.normal(0.5, size=400))
    >>> round(result.statistic, 4), result.p_value < 0.05
    (0.2325, True)
    """

    name: ClassVar[str] = "ks"
    output: ClassVar[Literal["p_value", "distance"]] = "p_value"
    default_threshold: ClassVar[float] = 0.05

    def _compare(self, ref: ReferenceColumn, cur: CurrentColumn) -> MethodResult:
        statistic = ks_statistic(ref, cur)
        p_value, note = ks_p_value(statistic, ref.n, cur.n)
        return MethodResult(statistic, p_value, statistic, note)
