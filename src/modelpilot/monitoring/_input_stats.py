"""Per-feature counts of a deployment's inputs, updated on the prediction path as plain
numbers (see ``_metrics.py`` for why not prometheus-client's labelled metrics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["InputStats"]


@dataclass
class InputStats:
    """Per-feature counts of one deployment's inputs (plain integers, updated per request)."""

    values: dict[str, int] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    out_of_range: dict[str, int] = field(default_factory=dict)
    unseen: dict[str, int] = field(default_factory=dict)
    text_chars: dict[str, int] = field(default_factory=dict)
    instances: int = 0
    requests: int = 0
    # Instances per feature list, folded into ``values`` when read: one addition per request
    # instead of one per feature.
    _by_features: dict[tuple[str, ...], int] = field(default_factory=dict)

    def add(
        self,
        features: Sequence[str],
        n: int,
        missing: Mapping[str, int],
        out_of_range: Mapping[str, int],
        unseen: Mapping[str, int],
    ) -> None:
        self.instances += n
        self.requests += 1
        key = features if isinstance(features, tuple) else tuple(features)
        self._by_features[key] = self._by_features.get(key, 0) + n
        for target, source in (
            (self.missing, missing),
            (self.out_of_range, out_of_range),
            (self.unseen, unseen),
        ):
            if source:
                for name, count in source.items():
                    target[name] = target.get(name, 0) + count

    def snapshot(self) -> dict[str, Any]:
        for features, n in self._by_features.items():
            for name in features:
                self.values[name] = self.values.get(name, 0) + n
        self._by_features.clear()
        return {
            "values": dict(self.values),
            "missing": dict(self.missing),
            "out_of_range": dict(self.out_of_range),
            "unseen": dict(self.unseen),
            "instances": self.instances,
            "requests": self.requests,
        }
