"""The drift report: one :class:`FeatureDrift` per feature and the dataset verdict.

Each feature carries a compact :class:`DistributionSummary` (a shared-edge histogram or the
category shares of both sides) so a report can be plotted, stored or sent as JSON without any
raw data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from modelpilot.drift._columns import CurrentColumn, ReferenceColumn, aligned_counts
from modelpilot.drift._values import FloatArray
from modelpilot.errors import NotFoundError

if TYPE_CHECKING:
    from modelpilot.drift._domain import DomainClassifierResult

__all__ = ["DistributionSummary", "DriftReport", "FeatureDrift", "summarize"]

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

    def to_dict(self) -> dict[str, Any]:
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
            "summary": self.summary.to_dict(),
        }


@dataclass(frozen=True)
class DriftReport:
    """Per-feature drift and the dataset verdict.

    The dataset drifted when the share of drifted features reaches ``dataset_threshold``
    (Evidently's rule, 0.5 by default). The domain classifier, when run, is reported beside the
    verdict and does not change it.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from modelpilot.drift import compare
    >>> rng = np.random.default_rng(1)
    >>> ref = pd.DataFrame({"x": rng.normal(size=800), "c": rng.choice(["a", "b"], 800)})
    >>> cur = pd.DataFrame({"x": rng.normal(1.0, size=700), "c": rng.choice(["a", "b"], 700)})
    >>> report = compare(ref, cur)
    >>> [(f.name, f.method, f.drifted) for f in report.features]
    [('x', 'ks', True), ('c', 'chi_square', False)]
    >>> report.share_drifted, report.dataset_drifted
    (0.5, True)
    >>> list(report.to_frame().columns[:4])
    ['feature', 'kind', 'method', 'statistic']
    """

    features: list[FeatureDrift]
    dataset_threshold: float = 0.5
    correction: str = "bh"
    effect_size_floor: float = 0.0
    reference_source: Literal["data", "profile"] = "data"
    domain_classifier: DomainClassifierResult | None = None

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def n_drifted(self) -> int:
        return sum(f.drifted for f in self.features)

    @property
    def share_drifted(self) -> float:
        return self.n_drifted / self.n_features if self.features else 0.0

    @property
    def dataset_drifted(self) -> bool:
        return bool(self.features) and bool(self.share_drifted >= self.dataset_threshold)

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    def feature(self, name: str) -> FeatureDrift:
        """The result of one feature by name."""
        for result in self.features:
            if result.name == name:
                return result
        raise NotFoundError(
            "feature", name, hint="the report has " + ", ".join(f.name for f in self.features)
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per feature (without the plotting summaries)."""
        columns: Sequence[str] = (
            "kind",
            "method",
            "statistic",
            "p_value",
            "p_value_adjusted",
            "threshold",
            "drifted",
            "effect_size",
            "n_reference",
            "n_current",
            "note",
        )
        rows = [{"feature": f.name, **{c: getattr(f, c) for c in columns}} for f in self.features]
        return pd.DataFrame(rows, columns=["feature", *columns])

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (no raw data: only the binned summaries)."""
        return {
            "dataset_drifted": self.dataset_drifted,
            "share_drifted": self.share_drifted,
            "n_features": self.n_features,
            "n_drifted": self.n_drifted,
            "drifted_features": self.drifted_features,
            "dataset_threshold": self.dataset_threshold,
            "correction": self.correction,
            "effect_size_floor": self.effect_size_floor,
            "reference_source": self.reference_source,
            "domain_classifier": (
                self.domain_classifier.to_dict() if self.domain_classifier is not None else None
            ),
            "features": [f.to_dict() for f in self.features],
        }

    def to_html(self, *, title: str = "Data drift report") -> str:
        """A self-contained HTML page: the verdict, a table, and one inline SVG plot per feature."""
        from modelpilot.drift._html import render_html

        return render_html(self, title=title)
