"""Drift: is the data the model sees still like the data it was trained on?

Data drift (this module's engine): :func:`compare` runs one method per feature against a
reference (raw data, a reference profile, or a :class:`DriftReference` prepared once) and
returns a :class:`DriftReport`; :func:`compare_stream` does the same on data larger than memory,
read as a stream of Arrow record batches (``docs/scale-out.md``). Every method answers one protocol,
``method.compare(ref: ReferenceColumn, cur) -> MethodResult``. See ``docs/drift.md``.
"""

from typing import TYPE_CHECKING

from modelpilot._lazy import lazy_exports

if TYPE_CHECKING:
    from modelpilot.drift._anderson_darling import AndersonDarlingTest
    from modelpilot.drift._base import DriftMethod, MethodResult
    from modelpilot.drift._chi_square import ChiSquareTest
    from modelpilot.drift._columns import CurrentColumn, ReferenceColumn
    from modelpilot.drift._compare import DEFAULT_EFFECT_SIZE_FLOOR, compare
    from modelpilot.drift._concept import (
        ConceptDriftEvent,
        ConceptDriftMonitor,
        ConceptDriftStatus,
        DetectorStatus,
        KeyMetricStatus,
    )
    from modelpilot.drift._correction import adjust_p_values
    from modelpilot.drift._cramer_von_mises import CramerVonMisesTest
    from modelpilot.drift._detectors import (
        DETECTORS,
        ADWINDetector,
        DDMDetector,
        DriftDetector,
        PageHinkleyDetector,
        make_detector,
    )
    from modelpilot.drift._domain import DomainClassifier, DomainClassifierResult
    from modelpilot.drift._importance import drifted_importance, importance_weights
    from modelpilot.drift._jensen_shannon import JensenShannonDistance
    from modelpilot.drift._ks import KSTest
    from modelpilot.drift._methods import METHODS, default_method, get_method
    from modelpilot.drift._psi import PopulationStabilityIndex
    from modelpilot.drift._reference import DriftReference
    from modelpilot.drift._report import DistributionSummary, DriftReport, FeatureDrift
    from modelpilot.drift._sources import BatchSource, DatasetSource, GeneratedSource, open_source
    from modelpilot.drift._streaming import STREAM_THRESHOLDS, compare_stream
    from modelpilot.drift._total_variation import TotalVariationDistance
    from modelpilot.drift._wasserstein import WassersteinDistance

# Data drift: compare and its methods; concept drift: modelpilot.drift._concept and _detectors.

__all__ = [
    "DEFAULT_EFFECT_SIZE_FLOOR",
    "DETECTORS",
    "METHODS",
    "STREAM_THRESHOLDS",
    "ADWINDetector",
    "AndersonDarlingTest",
    "BatchSource",
    "ChiSquareTest",
    "ConceptDriftEvent",
    "ConceptDriftMonitor",
    "ConceptDriftStatus",
    "CramerVonMisesTest",
    "CurrentColumn",
    "DDMDetector",
    "DatasetSource",
    "DetectorStatus",
    "DistributionSummary",
    "DomainClassifier",
    "DomainClassifierResult",
    "DriftDetector",
    "DriftMethod",
    "DriftReference",
    "DriftReport",
    "FeatureDrift",
    "GeneratedSource",
    "JensenShannonDistance",
    "KSTest",
    "KeyMetricStatus",
    "MethodResult",
    "PageHinkleyDetector",
    "PopulationStabilityIndex",
    "ReferenceColumn",
    "TotalVariationDistance",
    "WassersteinDistance",
    "adjust_p_values",
    "compare",
    "compare_stream",
    "default_method",
    "drifted_importance",
    "get_method",
    "importance_weights",
    "make_detector",
    "open_source",
]

# Each name is imported on first use (PEP 562): comparing data should not pay for the concept-drift
# detectors (river).
_SOURCES = {
    "_anderson_darling": ("AndersonDarlingTest",),
    "_base": ("DriftMethod", "MethodResult"),
    "_chi_square": ("ChiSquareTest",),
    "_columns": ("CurrentColumn", "ReferenceColumn"),
    "_compare": ("DEFAULT_EFFECT_SIZE_FLOOR", "compare"),
    "_concept": (
        "ConceptDriftEvent",
        "ConceptDriftMonitor",
        "ConceptDriftStatus",
        "DetectorStatus",
        "KeyMetricStatus",
    ),
    "_correction": ("adjust_p_values",),
    "_cramer_von_mises": ("CramerVonMisesTest",),
    "_detectors": (
        "DETECTORS",
        "ADWINDetector",
        "DDMDetector",
        "DatasetSource",
        "DriftDetector",
        "PageHinkleyDetector",
        "make_detector",
    ),
    "_domain": ("DomainClassifier", "DomainClassifierResult"),
    "_importance": ("drifted_importance", "importance_weights"),
    "_jensen_shannon": ("JensenShannonDistance",),
    "_ks": ("KSTest",),
    "_methods": ("METHODS", "default_method", "get_method"),
    "_psi": ("PopulationStabilityIndex",),
    "_reference": ("DriftReference",),
    "_sources": ("BatchSource", "DatasetSource", "GeneratedSource", "open_source"),
    "_streaming": ("STREAM_THRESHOLDS", "compare_stream"),
    "_report": ("DistributionSummary", "DriftReport", "FeatureDrift"),
    "_total_variation": ("TotalVariationDistance",),
    "_wasserstein": ("WassersteinDistance",),
}

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name
    __getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
