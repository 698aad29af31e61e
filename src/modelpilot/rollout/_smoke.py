"""Smoke requests for blue-green and rolling switches, built from the reference profile.

A version behind a deployment's steps is smoke-tested through them (its ``LoadedVersion``
holds the pipeline the server runs): the requests follow the pipeline's schema, and a step
that raises fails the smoke test, naming the step.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from modelpilot.errors import ModelpilotError
from modelpilot.inference import LoadedVersion, run_model

__all__ = ["SmokeFailed", "smoke_records", "smoke_test"]


class SmokeFailed(ModelpilotError):
    http_status = 409
    kind = "smoke_failed"


def smoke_records(loaded: LoadedVersion, n: int, *, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` typical rows: numeric values drawn from the profile's quantiles, categories by
    their training frequency, so the smoke test looks like real traffic."""
    rng = np.random.default_rng(seed)
    profile = loaded.version.profile.get("features", {})
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    for feature in loaded.validator.features:
        stats = profile.get(feature.name, {})
        if feature.type == "numeric":
            quantiles = stats.get("quantiles") or []
            if quantiles:
                values = [quantiles[int(i)] for i in rng.integers(0, len(quantiles), n)]
            else:
                low, high = feature.range if feature.range else (0.0, 1.0)
                values = list(rng.uniform(low, high, n))
        elif feature.type == "boolean":
            values = list(rng.random(n) < 0.5)
        else:
            counts = stats.get("counts") or {c: 1 for c in (feature.categories or ["x"])}
            names = [k for k in counts if k != "__other__"] or ["x"]
            weights = np.array([counts[k] for k in names], dtype=float)
            values = list(rng.choice(names, size=n, p=weights / weights.sum()))
        for row, value in zip(rows, values, strict=True):
            row[feature.name] = value.item() if hasattr(value, "item") else value
    return rows


def smoke_test(loaded: LoadedVersion, n: int) -> None:
    """Raise :class:`SmokeFailed` unless every smoke row gets a finite, non-null prediction
    (through the deployment's steps, when it has some)."""
    records = smoke_records(loaded, n)
    checked = loaded.validator.validate_records(records)
    if checked.problems:
        raise SmokeFailed(
            f"{loaded.label}: the smoke requests do not fit its schema ({checked.problems[0]})"
        )
    frame, task = loaded.validator.to_frame(checked.columns), loaded.version.task
    try:
        if loaded.pipeline is None:
            output = run_model(loaded.runtime, frame, task=task)
        else:  # unmeasured, as the warm-up: smoke requests are not traffic
            output = loaded.pipeline.run(
                frame, loaded.runtime, loaded.version.features, task=task, observe=False
            )
    except Exception as exc:
        raise SmokeFailed(
            f"{loaded.label} failed its smoke requests ({type(exc).__name__}: "
            f"{exc}); the switch did not happen"
        ) from None
    predictions = output.predictions.tolist()
    bad = [p for p in predictions if p is None or (isinstance(p, float) and not math.isfinite(p))]
    if len(predictions) != n or bad:
        raise SmokeFailed(
            f"{loaded.label} answered {len(bad)} of {n} smoke requests with "
            "null/NaN; the switch did not happen"
        )
