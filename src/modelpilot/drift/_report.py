"""The drift report: one :class:`FeatureDrift` per feature and the dataset verdict.

Each feature carries a compact :class:`DistributionSummary` (a shared-edge histogram or the
category shares of both sides) so a report can be plotted, stored or sent as JSON without any
raw data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from modelpilot.drift._feature_drift import DistributionSummary, FeatureDrift, summarize
from modelpilot.drift._html import render_html
from modelpilot.errors import NotFoundError

if TYPE_CHECKING:
    from modelpilot.drift._domain import DomainClassifierResult

__all__ = ["DistributionSummary", "DriftReport", "FeatureDrift", "summarize"]


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
    #: ``"memory"`` (:func:`compare`) or ``"stream"`` (:func:`compare_stream`).
    engine: Literal["memory", "stream"] = "memory"

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
            "engine": self.engine,
            "domain_classifier": (
                self.domain_classifier.to_dict() if self.domain_classifier is not None else None
            ),
            "features": [f.to_dict() for f in self.features],
        }

    def to_html(self, *, title: str = "Data drift report") -> str:
        """A self-contained HTML page: the verdict, a table, and one inline SVG plot per feature."""
        return render_html(self, title=title)
