"""Modeling: the registry of versions, aliases, artifacts, offline metrics and lineage."""

from modelpilot.registry._artifacts import (
    ArtifactRef,
    ArtifactStore,
    LocalArtifactStore,
    sha256_path,
)
from modelpilot.registry._metrics import check_targets, compute_metrics
from modelpilot.registry._register import current_user, evaluate, register_model
from modelpilot.registry._registry import ModelRef, ModelRegistry, ModelVersion, parse_ref

__all__ = [
    "ArtifactRef",
    "ArtifactStore",
    "LocalArtifactStore",
    "ModelRef",
    "ModelRegistry",
    "ModelVersion",
    "check_targets",
    "compute_metrics",
    "current_user",
    "evaluate",
    "parse_ref",
    "register_model",
    "sha256_path",
]
