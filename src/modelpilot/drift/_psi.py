"""Population stability index: ``sum((cur - ref) * ln(cur / ref))`` over bins or categories.

Numeric features use ten equal-frequency bins cut at the reference deciles (the classic credit-
scoring PSI), with open outer bins; categorical features use their categories. A share of zero
becomes 0.0001 before the logarithm, as Evidently does, so an empty bin gives a large but finite
index. The usual reading: below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a major one.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from modelpilot.drift._base import BaseMethod, MethodResult, binned_shares
from modelpilot.drift._columns import CurrentColumn, ReferenceColumn
from modelpilot.drift._values import FloatArray

__all__ = ["PopulationStabilityIndex", "psi"]

#: What a zero share becomes before the logarithm.
EPSILON = 1e-4


def psi(reference_shares: FloatArray, current_shares: FloatArray) -> float:
    """The population stability index of two share vectors.

    Examples
    --------
    >>> import numpy as np
    >>> round(psi(np.array([0.5, 0.5]), np.array([0.6, 0.4])), 6)
    0.040547
    """
    ref = np.where(reference_shares == 0, EPSILON, reference_shares)
    cur = np.where(current_shares == 0, EPSILON, current_shares)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


class PopulationStabilityIndex(BaseMethod):
    """PSI over reference-decile bins (numeric) or categories; drift when >= threshold.

    Examples
    --------
    >>> import numpy as np
    >>> from modelpilot.drift import PopulationStabilityIndex, ReferenceColumn
    >>> rng = np.random.default_rng(0)
    >>> ref = ReferenceColumn.from_values(rng.normal(size=5000))
    >>> round(PopulationStabilityIndex().compare(ref, rng.normal(0.5, size=5000)).statistic, 3)
    0.266
    """

    name: ClassVar[str] = "psi"
    kinds: ClassVar[frozenset[str]] = frozenset({"numeric", "categorical"})
    output: ClassVar[Literal["p_value", "distance"]] = "distance"
    default_threshold: ClassVar[float] = 0.1

    def __init__(self, *, n_bins: int = 10) -> None:
        self.n_bins = n_bins

    def _compare(self, ref: ReferenceColumn, cur: CurrentColumn) -> MethodResult:
        statistic = psi(*binned_shares(ref, cur, self.n_bins))
        return MethodResult(statistic, None, statistic)

    def __repr__(self) -> str:
        return f"PopulationStabilityIndex(n_bins={self.n_bins})"
