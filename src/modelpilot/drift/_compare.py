"""``compare``: the data-drift engine that runs one method per feature and gives the verdict."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from modelpilot.drift._base import DriftMethod, MethodResult
from modelpilot.drift._columns import CurrentColumn, ReferenceColumn
from modelpilot.drift._correction import CORRECTIONS, adjust_p_values
from modelpilot.drift._domain import DomainClassifier
from modelpilot.drift._methods import default_method, get_method
from modelpilot.drift._reference import DriftReference, FeatureList, parallel_map
from modelpilot.drift._report import DistributionSummary, DriftReport, FeatureDrift, summarize
from modelpilot.errors import DataError, ModelpilotError

__all__ = ["DEFAULT_EFFECT_SIZE_FLOOR", "compare"]

#: Tests call drift only when the effect (KS statistic or total variation) reaches this.
DEFAULT_EFFECT_SIZE_FLOOR = 0.03


@dataclass(frozen=True)
class _Outcome:
    name: str
    ref: ReferenceColumn
    method: DriftMethod
    result: MethodResult
    threshold: float
    n_current: int
    n_missing_current: int
    summary: DistributionSummary


def _check_options(correction: str, effect_size_floor: float, dataset_threshold: float) -> None:
    if correction not in CORRECTIONS:
        raise ModelpilotError(
            f"correction must be one of {', '.join(CORRECTIONS)}; got {correction!r}"
        )
    if not (isinstance(effect_size_floor, int | float) and 0 <= effect_size_floor < 1):
        raise ModelpilotError(
            "effect_size_floor must be a number in [0, 1) (0 turns it off); "
            f"got {effect_size_floor!r}"
        )
    if not (isinstance(dataset_threshold, int | float) and 0 < dataset_threshold <= 1):
        raise ModelpilotError(
            "dataset_threshold is the share of drifted features that makes the dataset drifted; "
            f"it must be in (0, 1], got {dataset_threshold!r}"
        )


def _prepare_reference(
    reference: pd.DataFrame | Mapping[str, Any] | DriftReference,
    features: FeatureList | None,
    n_jobs: int | None,
) -> DriftReference:
    if isinstance(reference, DriftReference):
        if features is None:
            return reference
        names = [f if isinstance(f, str) else f.name for f in features]
        unknown = [n for n in names if n not in reference.columns]
        if unknown:
            raise DataError(
                f"feature {unknown[0]!r} is not in the prepared reference; it has "
                f"{', '.join(reference.columns)}"
            )
        return DriftReference(
            {n: reference.columns[n] for n in names}, source=reference.source, frame=reference.frame
        )
    if isinstance(reference, pd.DataFrame):
        return DriftReference.from_frame(reference, features=features, n_jobs=n_jobs)
    if isinstance(reference, Mapping):
        return DriftReference.from_profile(reference, features=features)
    raise DataError(
        f"the reference must be a pandas DataFrame, a profile dict or a "
        f"DriftReference; got {type(reference).__name__}"
    )


def _check_overrides(
    names: list[str], methods: Mapping[str, Any] | None, thresholds: Mapping[str, float] | None
) -> dict[str, DriftMethod]:
    chosen: dict[str, DriftMethod] = {}
    for what, overrides in (("methods", methods), ("thresholds", thresholds)):
        for name in overrides or {}:
            if name not in names:
                raise DataError(
                    f"{what} names feature {name!r}, which is not compared; the "
                    f"features are {', '.join(names)}"
                )
    for name, spec in (methods or {}).items():
        chosen[name] = get_method(spec)
    for name, value in (thresholds or {}).items():
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ModelpilotError(
                f"the threshold of {name!r} must be a positive number; got {value!r}"
            )
    return chosen


def compare(
    reference: pd.DataFrame | Mapping[str, Any] | DriftReference,
    current: pd.DataFrame,
    *,
    features: FeatureList | None = None,
    methods: Mapping[str, str | DriftMethod] | None = None,
    thresholds: Mapping[str, float] | None = None,
    correction: str = "bh",
    effect_size_floor: float = DEFAULT_EFFECT_SIZE_FLOOR,
    dataset_threshold: float = 0.5,
    domain_classifier: bool | DomainClassifier = False,
    seed: int = 0,
    n_jobs: int | None = None,
) -> DriftReport:
    """Compare current data with a reference, feature by feature, and decide on the dataset.

    Parameters
    ----------
    reference
        Raw reference data, a reference profile (``modelpilot.data.build_profile``), or a
        :class:`DriftReference` prepared once for many comparisons.
    current
        The current data.
    features
        Names or :class:`~modelpilot.spec.FeatureSpec` (whose type decides numeric or
        categorical); default: every feature of the reference. Types are otherwise inferred:
        a numeric dtype is numeric, anything else categorical.
    methods
        Per-feature method, by name (``"ks"``, ``"psi"``, ...) or instance; the others get the
        default for their type and reference size (see ``docs/drift.md``).
    thresholds
        Per-feature threshold; default: the method's (0.05 for p-values, 0.1 for distances).
    correction
        Multiple-testing correction of the p-values across features: ``"bh"``
        (Benjamini-Hochberg), ``"bonferroni"`` or ``"none"``.
    effect_size_floor
        A test calls drift only when its effect size (KS statistic or total variation) is at
        least this, so that huge samples do not flag negligible shifts. 0 turns it off.
    dataset_threshold
        The dataset drifted when this share of features drifted.
    domain_classifier
        Also train a classifier to tell reference from current rows (cross-validated ROC AUC);
        needs raw reference data. ``True`` or a configured :class:`DomainClassifier`.
    seed
        Seed of the domain classifier's sampling, folds and model.
    n_jobs
        Threads for preparing and comparing columns; default: up to 4 when the data holds
        at least 2 million values, else 1.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> ref = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.choice(list("abc"), 5000)})
    >>> cur = pd.DataFrame({"x": rng.normal(0.5, size=4000), "c": rng.choice(list("abc"), 4000)})
    >>> report = compare(ref, cur)
    >>> [(f.name, f.method, round(f.statistic, 3), f.drifted) for f in report.features]
    [('x', 'wasserstein', 0.521, True), ('c', 'jensen_shannon', 0.009, False)]
    >>> report.dataset_drifted
    True
    """
    _check_options(correction, effect_size_floor, dataset_threshold)
    if not isinstance(current, pd.DataFrame):
        raise DataError(
            f"the current data must be a pandas DataFrame; got {type(current).__name__}"
        )
    prepared = _prepare_reference(reference, features, n_jobs)
    names = list(prepared.columns)
    for name in names:
        if name not in current.columns:
            raise DataError(
                f"feature {name!r} is missing from the current data; it has "
                f"{', '.join(map(str, current.columns)) or 'no columns'}"
            )
    chosen = _check_overrides(names, methods, thresholds)
    if domain_classifier and prepared.frame is None:
        raise DataError(
            "the domain classifier needs the raw reference data, and a profile "
            "keeps only each feature's own distribution; pass the reference "
            "DataFrame, or leave domain_classifier off"
        )

    def run(name: str) -> _Outcome:
        ref = prepared.columns[name]
        cur = CurrentColumn.from_values(current[name], kind=ref.kind, name=name)
        method = chosen.get(name) or default_method(ref)
        result = method.compare(ref, cur)
        threshold = float((thresholds or {}).get(name, method.default_threshold))
        return _Outcome(
            name, ref, method, result, threshold, cur.n, cur.n_missing, summarize(ref, cur)
        )

    outcomes = parallel_map(run, names, n_jobs, n_values=len(current) * len(names))
    tested = [o for o in outcomes if o.method.output == "p_value"]
    adjusted = dict(
        zip(
            [o.name for o in tested],
            adjust_p_values(
                [float(o.result.p_value or 0.0) for o in tested], correction=correction
            ),
            strict=True,
        )
    )
    results = []
    for o in outcomes:
        p_adj = adjusted.get(o.name)
        if p_adj is not None:
            drifted = p_adj < o.threshold and o.result.effect_size >= effect_size_floor
        else:
            drifted = o.result.statistic >= o.threshold
        results.append(
            FeatureDrift(
                name=o.name,
                kind=o.ref.kind,
                method=o.method.name,
                statistic=o.result.statistic,
                p_value=o.result.p_value,
                threshold=o.threshold,
                drifted=bool(drifted),
                effect_size=o.result.effect_size,
                n_reference=o.ref.n,
                n_current=o.n_current,
                summary=o.summary,
                p_value_adjusted=p_adj,
                n_missing_reference=o.ref.n_missing,
                n_missing_current=o.n_missing_current,
                note=o.result.note,
            )
        )
    domain = None
    if domain_classifier and prepared.frame is not None:  # a profile was refused above
        classifier = (
            domain_classifier
            if isinstance(domain_classifier, DomainClassifier)
            else DomainClassifier(seed=seed)
        )
        domain = classifier.compare(prepared.frame, current, kinds=prepared.kinds)
    return DriftReport(
        results,
        dataset_threshold=float(dataset_threshold),
        correction=correction,
        effect_size_floor=float(effect_size_floor),
        reference_source=prepared.source,
        domain_classifier=domain,
    )
