"""Anderson-Darling k-sample test (k = 2), midrank variant, as ``scipy.stats.anderson_ksamp``.

Weighs the tails more than Kolmogorov-Smirnov or Cramér-von Mises do. The statistic is Scholz
and Stephens' (1987) normalised A2akN, computed from the sorted samples; the p-value is
interpolated from their table exactly as scipy does, which bounds it to [0.001, 0.25]: the
result's ``note`` says when it was capped or floored (scipy warns instead).
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np

from modelpilot.drift._base import BaseMethod, MethodResult
from modelpilot.drift._columns import CurrentColumn, ReferenceColumn
from modelpilot.drift._values import FloatArray
from modelpilot.errors import DataError

__all__ = ["AndersonDarlingTest"]

# Interpolation coefficients of Scholz and Stephens (1987), Table 2, and their levels.
_B0 = np.array([0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085])
_B1 = np.array([-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615])
_B2 = np.array([-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154])
_LEVELS = np.array([0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001])


def _a2akn(samples: tuple[FloatArray, FloatArray], pooled: FloatArray) -> tuple[float, float]:
    """A2akN (eq. 7 of Scholz and Stephens) and the largest ECDF gap, from sorted samples."""
    total = pooled.size
    first = np.concatenate(([True], pooled[1:] != pooled[:-1]))
    zstar = pooled[first]
    z_left = np.flatnonzero(first)
    lj: float | FloatArray = 1.0 if total == zstar.size else np.diff(np.append(z_left, total))
    bj = z_left + np.asarray(lj) / 2.0
    a2akn = 0.0
    cdfs = []
    for s in samples:
        right = s.searchsorted(zstar, side="right")
        mij = right.astype(float) - (right - s.searchsorted(zstar, "left")) / 2.0
        inner = (
            lj
            / float(total)
            * (total * mij - bj * s.size) ** 2
            / (bj * (total - bj) - total * np.asarray(lj) / 4.0)
        )
        a2akn += inner.sum() / s.size
        cdfs.append(right / s.size)
    return a2akn * (total - 1.0) / total, float(np.abs(cdfs[0] - cdfs[1]).max())


class AndersonDarlingTest(BaseMethod):
    """Two-sample Anderson-Darling test (numeric features); drift when p < threshold.

    Examples
    --------
    >>> import numpy as np
    >>> from modelpilot.drift import AndersonDarlingTest, ReferenceColumn
    >>> rng = np.random.default_rng(0)
    >>> ref = ReferenceColumn.from_values(rng.normal(size=300))
    >>> result = AndersonDarlingTest().compare(ref, rng.normal(0.4, size=300))
    >>> round(result.statistic, 3), result.p_value, result.note
    (17.831, 0.001, 'p-value floored at 0.001: the true value is smaller')
    """

    name: ClassVar[str] = "anderson_darling"
    output: ClassVar[Literal["p_value", "distance"]] = "p_value"
    default_threshold: ClassVar[float] = 0.05

    def _compare(self, ref: ReferenceColumn, cur: CurrentColumn) -> MethodResult:
        if not ref.complete:
            raise DataError(
                f"anderson_darling needs every reference value of {ref.name!r}; the "
                "profile is too large to rebuild them, use ks or wasserstein instead"
            )
        u, v = ref.values, cur.values
        pooled = np.sort(np.concatenate((u, v)), kind="stable")  # two sorted runs: a merge
        total = pooled.size
        if total < 4 or pooled[0] == pooled[-1]:
            raise DataError(
                f"anderson_darling needs at least 4 values, not all equal, for {ref.name!r}; "
                f"got {u.size} reference and {v.size} current values; use another method"
            )
        a2kn, gap = _a2akn((u, v), pooled)
        n = np.array([u.size, v.size])
        k = 2
        h_sum = (1.0 / n).sum()
        hs_cs = (1.0 / np.arange(total - 1, 1, -1)).cumsum()
        h = hs_cs[-1] + 1
        g = (hs_cs / np.arange(2, total)).sum()
        a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * h_sum
        b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * h_sum - 8 * h + 4 * g - 6
        c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * h_sum + 4 * h
        d = (2 * h + 6) * k**2 - 4 * h * k
        sigmasq = (a * total**3 + b * total**2 + c * total + d) / (
            (total - 1.0) * (total - 2.0) * (total - 3.0)
        )
        m = k - 1
        a2 = float((a2kn - m) / math.sqrt(sigmasq))
        critical = _B0 + _B1 / math.sqrt(m) + _B2 / m
        note = ""
        if a2 < critical.min():
            p_value, note = 0.25, "p-value capped at 0.25: the true value is larger"
        elif a2 > critical.max():
            p_value, note = 0.001, "p-value floored at 0.001: the true value is smaller"
        else:
            p_value = math.exp(np.polyval(np.polyfit(critical, np.log(_LEVELS), 2), a2))
        return MethodResult(a2, p_value, gap, note)
