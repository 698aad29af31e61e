"""Wasserstein (earth mover's) distance, normed by the reference standard deviation.

Normed as Evidently norms it: ``wasserstein_distance(ref, cur) / std(ref)``, so 0.1 means the
mass moved by a tenth of a reference standard deviation on average, whatever the feature's unit.

Both samples are sorted, so the distance is the area between their quantile functions, summed
over the merged grid of quantile steps in integer arithmetic: O(n + m), no merge sort and no
binary search (scipy sorts both samples, merges them with a sort and searches every point).
"""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np

from modelpilot.drift._base import BaseMethod, MethodResult
from modelpilot.drift._columns import CurrentColumn, ReferenceColumn
from modelpilot.drift._values import FloatArray

__all__ = ["WassersteinDistance", "wasserstein_sorted"]


def wasserstein_sorted(u: FloatArray, v: FloatArray) -> float:
    """The 1-Wasserstein distance of two sorted samples, as ``scipy.stats.wasserstein_distance``.

    Examples
    --------
    >>> import numpy as np
    >>> wasserstein_sorted(np.array([0.0, 1.0, 3.0]), np.array([5.0, 6.0, 8.0]))
    5.0
    >>> wasserstein_sorted(np.array([0.0, 1.0]), np.array([0.0, 0.5, 1.0]))
    0.16666666666666666
    """
    n, m = u.size, v.size
    if n == m:
        return float(np.abs(u - v).mean())
    # The quantile function of u steps at i/n, that of v at j/m. On the common scale L = lcm(n, m)
    # the steps are at multiples of p = L/n and q = L/m; merging the two arithmetic sequences needs
    # no sort: u's i-th step has ceil(i*p/q) of v's steps before it, v's j-th floor(j*q/p) + 1.
    scale = math.lcm(n, m)
    p, q = scale // n, scale // m
    i = np.arange(n, dtype=np.int64)
    j = np.arange(m, dtype=np.int64)
    starts = np.empty(n + m, dtype=np.int64)
    starts[i + (i * p + q - 1) // q] = i * p
    starts[j + (j * q) // p + 1] = j * q
    widths = np.diff(np.append(starts, scale))
    gaps = np.abs(u[starts // p] - v[starts // q])
    return float((widths * gaps).sum() / scale)


class WassersteinDistance(BaseMethod):
    """Wasserstein distance normed by the reference standard deviation; drift when >= threshold.

    Examples
    --------
    >>> import numpy as np
    >>> from modelpilot.drift import ReferenceColumn, WassersteinDistance
    >>> rng = np.random.default_rng(0)
    >>> ref = ReferenceColumn.from_values(rng.normal(size=5000))
    >>> round(WassersteinDistance().compare(ref, rng.normal(0.3, size=4000)).statistic, 3)
    0.325
    """

    name: ClassVar[str] = "wasserstein"
    output: ClassVar[Literal["p_value", "distance"]] = "distance"
    default_threshold: ClassVar[float] = 0.1

    def _compare(self, ref: ReferenceColumn, cur: CurrentColumn) -> MethodResult:
        distance = wasserstein_sorted(ref.values, cur.values)
        note = ""
        scale = ref.std
        if scale <= 0:
            # A constant reference has no spread to norm by; report the raw distance instead.
            scale, note = 1.0, "the reference is constant: the distance is not normed"
        statistic = distance / scale
        return MethodResult(statistic, None, statistic, note)
