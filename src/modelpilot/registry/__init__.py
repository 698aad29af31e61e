"""Modeling: the registry of versions, aliases, artifacts, offline metrics and lineage."""

from typing import TYPE_CHECKING

from modelpilot._lazy import lazy_exports

if TYPE_CHECKING:
    from modelpilot.registry._artifacts import (
        ArtifactRef,
        ArtifactStore,
        LocalArtifactStore,
        sha256_path,
    )
    from modelpilot.registry._assessment import align_labels, assess_holdout, importance_shares
    from modelpilot.registry._calibration import (
        Calibration,
        PerformanceEstimator,
        fit_calibration,
    )
    from modelpilot.registry._estimate import ESTIMABLE, expected_metrics
    from modelpilot.registry._lifecycle import archive_version, reevaluate, version_users
    from modelpilot.registry._metrics import check_targets, compute_metrics
    from modelpilot.registry._register import (
        check_feature_names,
        current_user,
        evaluate,
        register_model,
    )
    from modelpilot.registry._registry import ModelRef, ModelRegistry, ModelVersion, parse_ref

__all__ = [
    "ESTIMABLE",
    "ArtifactRef",
    "ArtifactStore",
    "Calibration",
    "LocalArtifactStore",
    "ModelRef",
    "ModelRegistry",
    "ModelVersion",
    "PerformanceEstimator",
    "align_labels",
    "archive_version",
    "assess_holdout",
    "check_feature_names",
    "check_targets",
    "compute_metrics",
    "current_user",
    "evaluate",
    "expected_metrics",
    "fit_calibration",
    "importance_shares",
    "parse_ref",
    "reevaluate",
    "register_model",
    "sha256_path",
    "version_users",
]

# Each name is imported on first use (PEP 562): listing models or moving an alias should not pay
# for scikit-learn's metrics.
_SOURCES = {
    "_artifacts": ("ArtifactRef", "ArtifactStore", "LocalArtifactStore", "sha256_path"),
    "_assessment": ("align_labels", "assess_holdout", "importance_shares"),
    "_calibration": ("Calibration", "PerformanceEstimator", "fit_calibration"),
    "_estimate": ("ESTIMABLE", "expected_metrics"),
    "_lifecycle": ("archive_version", "reevaluate", "version_users"),
    "_metrics": ("check_targets", "compute_metrics"),
    "_register": ("check_feature_names", "current_user", "evaluate", "register_model"),
    "_registry": ("ModelRef", "ModelRegistry", "ModelVersion", "parse_ref"),
}

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name
    __getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
