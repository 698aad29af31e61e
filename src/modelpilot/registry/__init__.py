"""Modeling: the registry of versions, aliases, artifacts, offline metrics and lineage."""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Each name is imported on first use (PEP 562): listing models or moving an alias should not pay
# for scikit-learn's metrics.
_SOURCES = {
    "_artifacts": ("ArtifactRef", "ArtifactStore", "LocalArtifactStore", "sha256_path"),
    "_metrics": ("check_targets", "compute_metrics"),
    "_register": ("current_user", "evaluate", "register_model"),
    "_registry": ("ModelRef", "ModelRegistry", "ModelVersion", "parse_ref"),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name

    def __getattr__(name: str) -> Any:
        module = _MODULE_OF.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value  # later look-ups find it without coming here
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
