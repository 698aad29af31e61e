"""Jensen-Shannon distance (natural logarithm) between binned or categorical distributions.

The distance is ``scipy.spatial.distance.jensenshannon`` of the two share vectors: per category
for categorical features, per equal-frequency bin cut at the reference quantiles (10 by default)
for numeric ones. It lies between 0 and sqrt(ln 2) = 0.83; Evidently's threshold is 0.1.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from scipy.spatial import distance

from modelpilot.drift._base import BaseMethod, MethodResult, binned_shares
from modelpilot.drift._columns import CurrentColumn, ReferenceColumn

__all__ = ["JensenShannonDistance"]


class JensenShannonDistance(BaseMethod):
    """Jensen-Shannon distance of bins (numeric) or categories; drift when >= threshold.

    Examples
    --------
    >>> from modelpilot.drift import JensenShannonDistance, ReferenceColumn
    >>> ref = ReferenceColumn.from_values(["a"] * 500 + ["b"] * 500)
    >>> round(JensenShannonDistance().compare(ref, ["a"] * 800 + ["b"] * 200).statistic, 4)
    0.2251
    """

    name: ClassVar[str] = "jensen_shannon"
    kinds: ClassVar[frozenset[str]] = frozenset({"numeric", "categorical"})
    output: ClassVar[Literal["p_value", "distance"]] = "distance"
    default_threshold: ClassVar[float] = 0.1

    def __init__(self, *, n_bins: int = 10) -> None:
        self.n_bins = n_bins

    def _compare(self, ref: ReferenceColumn, cur: CurrentColumn) -> MethodResult:
        statistic = float(distance.jensenshannon(*binned_shares(ref, cur, self.n_bins)))
        return MethodResult(statistic, None, statistic)

    def __repr__(self) -> str:
        return f"JensenShannonDistance(n_bins={self.n_bins})"
