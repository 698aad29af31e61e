"""Routers for rollouts: shadow traffic and a sticky, weighted canary split."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelpilot.inference import LoadedVersion

__all__ = ["CanaryRouter", "ShadowRouter", "bucket_of"]

BUCKETS = 10_000


def bucket_of(key: str) -> int:
    """A stable bucket in [0, 10000) for a routing key.

    A key's bucket never changes, and the candidate gets the buckets below ``weight * 100``:
    so one user sees one version, and as the weight grows users only move primary -> candidate.

    Examples
    --------
    >>> bucket_of("user-42") == bucket_of("user-42"), 0 <= bucket_of("user-42") < 10_000
    (True, True)
    """
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass
class ShadowRouter:
    """The primary answers every request; the candidate scores a copy afterwards."""

    primary: LoadedVersion
    candidate: LoadedVersion

    def choose(self, key: str | None) -> LoadedVersion:
        return self.primary

    def mirrors(self, chosen: LoadedVersion) -> Sequence[LoadedVersion]:
        return (self.candidate,)

    @property
    def versions(self) -> Sequence[LoadedVersion]:
        return [self.primary, self.candidate]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "shadow",
            "traffic": {str(self.primary.version.version): 100.0},
            "shadow": self.candidate.version.version,
        }


@dataclass
class CanaryRouter:
    """``weight`` percent of traffic to the candidate, sticky by key.

    Requests without a key are split at random. A share ``mirror_fraction`` of the candidate's
    requests is also scored by the primary, so the analysis can measure their agreement.
    """

    primary: LoadedVersion
    candidate: LoadedVersion
    weight: float
    mirror_fraction: float = 1.0
    rng: random.Random = field(default_factory=random.Random)

    def choose(self, key: str | None) -> LoadedVersion:
        threshold = self.weight * BUCKETS / 100.0
        bucket = bucket_of(key) if key is not None else self.rng.randrange(BUCKETS)
        return self.candidate if bucket < threshold else self.primary

    def mirrors(self, chosen: LoadedVersion) -> Sequence[LoadedVersion]:
        if chosen is self.candidate and self.rng.random() < self.mirror_fraction:
            return (self.primary,)
        return ()

    @property
    def versions(self) -> Sequence[LoadedVersion]:
        return [self.primary, self.candidate]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "canary",
            "traffic": {
                str(self.primary.version.version): 100 - self.weight,
                str(self.candidate.version.version): self.weight,
            },
        }
