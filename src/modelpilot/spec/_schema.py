"""Scoping: the features (the input schema), key metrics with their targets, service
objectives, and the data checks."""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from modelpilot.spec._base import METRICS, CheckName, Comparison, FeatureType, StrictModel


class FeatureSpec(StrictModel):
    """One input column: its type, what values it may take, and how to treat it."""

    name: str = Field(min_length=1)
    type: FeatureType
    range: tuple[float, float] | None = None
    categories: list[str] | None = None
    nullable: bool = False
    pii: bool = False
    description: str = ""

    @model_validator(mode="after")
    def _check_consistent(self) -> FeatureSpec:
        if self.range is not None:
            if self.type != "numeric":
                raise ValueError(f"range is only allowed on numeric features, not {self.type}")
            low, high = self.range
            if not (math.isfinite(low) and math.isfinite(high)) or low > high:
                raise ValueError(
                    f"range must be [low, high] with low <= high, got {list(self.range)}"
                )
        if self.categories is not None and self.type != "categorical":
            raise ValueError(
                f"categories are only allowed on categorical features, not {self.type}"
            )
        return self


# The target must not start with an operator character, or 'mae <= ' would parse as 'mae < ='.
_SHORTHAND = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=|<|>)\s*([^\s<>=]\S*)\s*$")


class KeyMetric(StrictModel):
    """A key metric and the target a version must reach, e.g. ``mae <= 25000``."""

    name: str
    op: Comparison
    target: float

    @model_validator(mode="before")
    @classmethod
    def _parse_shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            match = _SHORTHAND.match(data)
            if match is None:
                raise ValueError(
                    f"expected 'metric <= target' (for example 'mae <= 25000'), got {data!r}"
                )
            name, op, target = match.groups()
            return {"name": name, "op": op, "target": target}
        return data

    @field_validator("name")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRICS:
            raise ValueError(f"unknown metric {value!r}; known metrics: {', '.join(METRICS)}")
        return value

    def passes(self, value: float) -> bool:
        """Whether ``value`` meets this target."""
        if value is None or not math.isfinite(value):
            return False
        return {
            "<=": value <= self.target,
            ">=": value >= self.target,
            "<": value < self.target,
            ">": value > self.target,
        }[self.op]

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.target:g}"


class ServiceObjectives(StrictModel):
    """Software service-level objectives of the online service."""

    latency_p99_ms: float = Field(default=100.0, gt=0)
    error_rate: float = Field(default=0.01, ge=0, le=1)
    throughput_rps: float = Field(default=100.0, gt=0)


class DataChecks(StrictModel):
    """Thresholds of the data checks; a failed check in ``blocking`` makes the command fail."""

    max_missing_rate: float = Field(default=0.05, ge=0, le=1)
    max_duplicate_rate: float = Field(default=0.05, ge=0, le=1)
    max_label_conflict_rate: float = Field(default=0.0, ge=0, le=1)
    regression_label_tolerance: float = Field(default=0.1, ge=0)
    min_minority_share: float = Field(default=0.05, ge=0, le=0.5)
    max_out_of_range_rate: float = Field(default=0.0, ge=0, le=1)
    max_unseen_category_rate: float = Field(default=0.0, ge=0, le=1)
    blocking: list[CheckName] = Field(
        default_factory=lambda: list[CheckName](["label_consistency", "schema", "missing_values"])
    )
