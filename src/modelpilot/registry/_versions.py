"""What the registry hands out: a model version (immutable, numbered) and a reference to one
(``name``, ``name:3``, ``name@production``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from modelpilot.errors import ModelpilotError
from modelpilot.registry._artifacts import ArtifactRef
from modelpilot.spec import FeatureSpec

__all__ = ["ModelRef", "ModelVersion", "parse_ref"]

_REF = re.compile(r"^(?P<name>[^:@]+)(?::(?P<version>\d+)|@(?P<alias>[A-Za-z0-9_.-]+))?$")


@dataclass(frozen=True)
class ModelRef:
    """``NAME``, ``NAME:VERSION`` or ``NAME@ALIAS``."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


def parse_ref(text: str) -> ModelRef:
    """Parse a model reference.

    Examples
    --------
    >>> parse_ref("houses@production")
    ModelRef(name='houses', version=None, alias='production')
    >>> parse_ref("houses:3").version
    3
    """
    match = _REF.match(text.strip())
    if match is None:
        raise ModelpilotError(
            f"{text!r} is not a model reference; expected NAME, NAME:VERSION or NAME@ALIAS "
            "(for example houses@production)"
        )
    version = match.group("version")
    return ModelRef(match.group("name"), int(version) if version else None, match.group("alias"))


@dataclass(frozen=True)
class ModelVersion:
    """One registered, immutable version of a model."""

    name: str
    version: int
    status: str
    flavor: str
    artifact: ArtifactRef
    features: list[FeatureSpec]
    task: str | None
    target: str | None
    profile: dict[str, Any]
    metrics: dict[str, Any]
    checks: list[dict[str, Any]]
    lineage: dict[str, Any]
    tags: dict[str, str]
    created_at: float
    created_by: str
    aliases: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> bool:
        return self.status == "rejected"

    @property
    def archived(self) -> bool:
        """Hidden from listings and from a bare model name (``modelpilot models archive``)."""
        return self.status == "archived"

    @property
    def failed_checks(self) -> list[str]:
        return [
            f"{c['metric']} = {c['value']} misses {c['op']} {c['target']}"
            if c["value"] is not None
            # "mae = None misses <= 25000" hid why: say it was not evaluated (or not computable)
            else f"{c['metric']} {c.get('reason') or 'could not be computed on the holdout'}"
            for c in self.checks
            if not c["passed"]
        ]

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "flavor": self.flavor,
            "sha256": self.artifact.sha256,
            "aliases": self.aliases,
            "metrics": self.metrics,
            "checks": self.checks,
            "lineage": self.lineage,
            "tags": self.tags,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "features": [f.model_dump(exclude_defaults=True) for f in self.features],
            "task": self.task,
            "target": self.target,
        }
