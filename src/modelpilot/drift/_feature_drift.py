"""One feature's drift: its statistic and verdict, and a compact summary of both sides.

The :class:`DistributionSummary` is a shared-edge histogram or the category shares of both
sides, so a report can be plotted, stored or sent as JSON without any raw data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

import numpy as np

from modelpilot.drift._columns import CurrentColumn, ReferenceColumn, aligned_counts
from modelpilot.drift._values import FloatArray

__all__ = ["DistributionSummary", "FeatureDrift", "summarize"]

#: Histogram bins of a numeric feature's summary.
N_PLOT_BINS = 24
#: Categories shown in a summary; the rest are lumped together.
MAX_PLOT_CATEGORIES = 20
#: A numeric feature with at most this many distinct values is summarised value by value.
MAX_PLOT_VALUES = 30


@dataclass(frozen=True)
class DistributionSummary:
    """Reference and current shares on common bins (numeric) or categories.

    ``edges`` has one more entry than the shares for a histogram (the outermost bins also hold
    the values beyond them: the edges span the 0.5% to 99.5% quantiles of both sides); it is
    empty for categories, whose names are in ``labels``.

    Examples
    --------
    >>> from modelpilot.drift import compare
    >>> import pandas as pd
    >>> report = compare(pd.DataFrame({"c": list("aab")}), pd.DataFrame({"c": list("abb")}))
    >>> summary = report.features[0].summary
    >>> summary.kind, summary.labels, summary.reference, summary.current
    ('categories', ['a', 'b'], [0.666667, 0.333333], [0.333333, 0.666667])
    """

    kind: Literal["histogram", "categories"]
    labels: list[str]
    reference: list[float]
    current: list[float]
    edges: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "labels": self.labels,
            "reference": self.reference,
            "current": self.current,
        }
        if self.edges:
            out["edges"] = self.edges
        return out


def _rounded(values: FloatArray) -> list[float]:
    return [round(float(v), 6) for v in values]


def _share(counts: Any) -> FloatArray:
    array = np.asarray(counts, dtype=np.float64)
    total = array.sum()
    return array / total if total else array


def summarize(ref: ReferenceColumn, cur: CurrentColumn) -> DistributionSummary:
    """The plotting summary of one feature."""
    if ref.kind == "categorical" or _few_values(ref, cur):
        labels, ref_counts, cur_counts = aligned_counts(ref, cur)
        ref_share, cur_share = _share(ref_counts), _share(cur_counts)
        if ref.kind == "categorical" and len(labels) > MAX_PLOT_CATEGORIES:
            order = np.argsort(-np.maximum(ref_share, cur_share), kind="stable")
            keep, rest = order[: MAX_PLOT_CATEGORIES - 1], order[MAX_PLOT_CATEGORIES - 1 :]
            labels = [labels[i] for i in keep] + [f"other ({rest.size})"]
            ref_share = np.append(ref_share[keep], ref_share[rest].sum())
            cur_share = np.append(cur_share[keep], cur_share[rest].sum())
        return DistributionSummary("categories", labels, _rounded(ref_share), _rounded(cur_share))
    u, v = ref.values, cur.values
    low = min(u[int(0.005 * (u.size - 1))], v[int(0.005 * (v.size - 1))])
    high = max(u[int(0.995 * (u.size - 1))], v[int(0.995 * (v.size - 1))])
    if not high > low:
        low, high = min(u[0], v[0]), max(u[-1], v[-1])
    if not high > low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, N_PLOT_BINS + 1)
    inner = edges[1:-1]
    ref_counts = np.diff(np.concatenate(([0], np.searchsorted(u, inner), [u.size])))
    cur_counts = np.diff(np.concatenate(([0], np.searchsorted(v, inner), [v.size])))
    labels = [f"{a:.4g}..{b:.4g}" for a, b in pairwise(edges)]
    return DistributionSummary(
        "histogram",
        labels,
        _rounded(_share(ref_counts)),
        _rounded(_share(cur_counts)),
        [float(e) for e in edges],
    )


def _few_values(ref: ReferenceColumn, cur: CurrentColumn) -> bool:
    distinct = ref.distinct
    if distinct is None or distinct[0].size > MAX_PLOT_VALUES:
        return False
    cur_values = cur.values
    changes = int(np.count_nonzero(cur_values[1:] != cur_values[:-1])) + 1 if cur_values.size else 0
    return changes <= MAX_PLOT_VALUES


@dataclass(frozen=True)
class FeatureDrift:
    """The verdict on one feature.

    ``p_value`` is None for distances; ``p_value_adjusted`` is the p-value after the report's
    multiple-testing correction, which is what ``drifted`` compares with ``threshold``.
    ``effect_size`` is the Kolmogorov-Smirnov statistic (numeric tests), the total variation
    distance (chi-square), or the statistic itself (distances); tests only call drift when it
    reaches the report's ``effect_size_floor``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from modelpilot.drift import compare
    >>> rng = np.random.default_rng(0)
    >>> ref, cur = (pd.DataFrame({"x": rng.normal(size=300)}) for _ in range(2))
    >>> x = compare(ref, cur).feature("x")
    >>> x.method, x.threshold, x.drifted, x.n_reference
    ('ks', 0.05, False, 300)
    """

    name: str
    kind: Literal["numeric", "categorical"]
    method: str
    statistic: float
    p_value: float | None
    threshold: float
    drifted: bool
    effect_size: float
    n_reference: int
    n_current: int
    summary: DistributionSummary
    p_value_adjusted: float | None = None
    n_missing_reference: int = 0
    n_missing_current: int = 0
    note: str = ""
    #: Out-of-core engine only: whether the statistic is the one the in-memory engine computes,
    #: and how far it can be from it (binned KS / Wasserstein), else None.
    exact: bool | None = None
    error_bound: float | None = None

    def to_dict(self) -> dict[str, Any]:
        streamed = (
            {"exact": self.exact, "error_bound": self.error_bound} if self.exact is not None else {}
        )
        return {
            "name": self.name,
            "kind": self.kind,
            "method": self.method,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "p_value_adjusted": self.p_value_adjusted,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "effect_size": self.effect_size,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "n_missing_reference": self.n_missing_reference,
            "n_missing_current": self.n_missing_current,
            "note": self.note,
            **streamed,
            "summary": self.summary.to_dict(),
        }
