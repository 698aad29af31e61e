"""The multivariate check: can a classifier tell reference rows from current rows?

Per-feature tests miss changes in how features move together (the same marginals, a different
joint distribution). A gradient-boosted classifier trained to separate reference from current
rows sees those too: its cross-validated ROC AUC is 0.5 when the two are indistinguishable and
approaches 1 as they separate. It needs the raw reference rows, not a profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import DataError, ModelpilotError

__all__ = ["DomainClassifier", "DomainClassifierResult"]

#: The native categorical support of HistGradientBoosting takes at most this many categories.
_MAX_NATIVE_CATEGORIES = 254


@dataclass(frozen=True)
class DomainClassifierResult:
    """Cross-validated ROC AUC of the reference-versus-current classifier.

    Examples
    --------
    >>> result = DomainClassifierResult(0.51, 0.01, 0.55, False, 100, 100, 5)
    >>> result.to_dict()["roc_auc"], result.drifted
    (0.51, False)
    """

    roc_auc: float
    roc_auc_std: float
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int
    n_splits: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DomainClassifier:
    """Train a classifier to separate reference from current rows; drift when AUC > threshold.

    Each side is sampled down to ``max_rows`` rows (seeded), numeric features are used as they
    are (missing values included), categorical ones as categories. The model is scikit-learn's
    ``HistGradientBoostingClassifier``, scored by ``n_splits``-fold stratified cross-validation
    on ``n_threads`` OpenMP threads.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> a, b = rng.normal(size=(2, 600))
    >>> ref = pd.DataFrame({"x": a, "y": a + rng.normal(0, 0.1, 600)})
    >>> cur = pd.DataFrame({"x": b, "y": -b + rng.normal(0, 0.1, 600)})  # same marginals
    >>> result = DomainClassifier(seed=0).compare(ref, cur, kinds={"x": "numeric", "y": "numeric"})
    >>> result.roc_auc > 0.9, result.drifted
    (True, True)
    """

    def __init__(
        self,
        *,
        threshold: float = 0.55,
        max_rows: int = 20_000,
        n_splits: int = 5,
        n_threads: int = 1,
        seed: int = 0,
    ) -> None:
        if not 0.5 <= threshold < 1:
            raise ModelpilotError(
                f"the domain classifier threshold is a ROC AUC in [0.5, 1); got {threshold!r}"
            )
        if n_splits < 2 or max_rows < n_splits:
            raise ModelpilotError(
                f"the domain classifier needs n_splits >= 2 and max_rows >= "
                f"n_splits; got n_splits={n_splits}, max_rows={max_rows}"
            )
        self.threshold = threshold
        self.max_rows = max_rows
        self.n_splits = n_splits
        self.n_threads = n_threads
        self.seed = seed

    def _sample(self, frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        if len(frame) <= self.max_rows:
            return frame
        return frame.iloc[np.sort(rng.choice(len(frame), self.max_rows, replace=False))]

    def compare(
        self, reference: pd.DataFrame, current: pd.DataFrame, *, kinds: Mapping[str, str]
    ) -> DomainClassifierResult:
        """Fit and cross-validate on the ``kinds`` features (name -> numeric/categorical)."""
        if min(len(reference), len(current)) < self.n_splits:
            raise DataError(
                f"the domain classifier needs at least {self.n_splits} rows on each "
                f"side; got {len(reference)} reference and {len(current)} current"
            )
        rng = np.random.default_rng(self.seed)
        ref = self._sample(reference, rng)
        cur = self._sample(current, rng)
        columns, categorical = [], []
        for name, kind in kinds.items():
            both = pd.concat([ref[name], cur[name]], ignore_index=True)
            if kind == "numeric":
                columns.append(pd.to_numeric(both, errors="coerce").to_numpy(dtype=np.float64))
                categorical.append(False)
                continue
            codes, uniques = pd.factorize(both.astype(str).where(both.notna()))
            values = np.where(codes < 0, np.nan, codes).astype(np.float64)
            columns.append(values)
            categorical.append(len(uniques) <= _MAX_NATIVE_CATEGORIES)
        # scikit-learn is imported here: most drift checks never need it, and it is heavy.
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.model_selection import StratifiedKFold, cross_val_score
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        features = np.column_stack(columns)
        labels = np.r_[np.zeros(len(ref), dtype=int), np.ones(len(cur), dtype=int)]
        model = HistGradientBoostingClassifier(
            max_iter=100, categorical_features=np.array(categorical), random_state=self.seed
        )
        folds = StratifiedKFold(n_splits=self.n_splits, shuffle=True, random_state=self.seed)
        # One OpenMP thread by default: on a busy machine the gradient-boosting threads wait on
        # each other so long that a 2-second fit takes a minute (measured on a loaded 2-CPU box).
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            scores = cross_val_score(model, features, labels, cv=folds, scoring="roc_auc")
        auc = float(np.mean(scores))
        return DomainClassifierResult(
            roc_auc=auc,
            roc_auc_std=float(np.std(scores)),
            threshold=self.threshold,
            drifted=auc > self.threshold,
            n_reference=len(ref),
            n_current=len(cur),
            n_splits=self.n_splits,
        )

    def __repr__(self) -> str:
        return (
            f"DomainClassifier(threshold={self.threshold}, max_rows={self.max_rows}, "
            f"n_splits={self.n_splits}, n_threads={self.n_threads}, seed={self.seed})"
        )
