"""On-device drift: the population stability index of recent inputs against the reference
profile the bundle carries (the training data's, from ``modelpilot register --data``).

The server measures drift with a method per feature type (``modelpilot.drift``); a device runs
the cheapest one that needs nothing but the profile: PSI over the reference deciles (numeric
features; one bin per value where the profile counted at most 10 distinct values) or over the
categories (categorical and boolean features). Zero shares become 0.0001 before the logarithm,
as the server's PSI does; 0.1 is the usual "moderate shift" mark and the default threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._validation import Feature

__all__ = ["EPSILON", "drift_report", "psi"]

EPSILON = 1e-4
_N_BINS = 10


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """The population stability index of two share vectors.

    Examples
    --------
    >>> round(psi(np.array([0.5, 0.5]), np.array([0.6, 0.4])), 6)
    0.040547
    """
    ref = np.where(reference == 0, EPSILON, reference)
    cur = np.where(current == 0, EPSILON, current)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else counts.astype(np.float64)


def _numeric(entry: Mapping[str, Any], values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = entry.get("values")
    if pairs and len(pairs) <= _N_BINS:  # few distinct values: one bin per value
        known = np.array([float(v) for v, _ in pairs])
        ref_counts = np.array([int(c) for _, c in pairs], dtype=np.float64)
        index = np.searchsorted(known, values)
        inside = (index < known.size) & (known[np.minimum(index, known.size - 1)] == values)
        cur_counts = np.bincount(index[inside], minlength=known.size).astype(np.float64)
        other = float((~inside).sum())  # values the reference never had: a bin of their own
        return _shares(np.append(ref_counts, 0.0)), _shares(np.append(cur_counts, other))
    quantiles = np.asarray(entry.get("quantiles") or [], dtype=np.float64)
    grid = np.linspace(0.0, 1.0, quantiles.size)
    edges = np.unique(np.interp(np.arange(1, _N_BINS) / _N_BINS, grid, quantiles))
    # The reference share of each bin: the quantile function's steps between its edges.
    cdf = np.interp(edges, quantiles, grid, left=0.0, right=1.0)
    ref = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    cur = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
    return ref, _shares(cur.astype(np.float64))


def _categorical(entry: Mapping[str, Any], values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    counts: dict[str, int] = dict(entry.get("counts") or {})
    names = list(counts)
    index = {name: i for i, name in enumerate(names)}
    other = index.get("__other__")
    current = np.zeros(len(names) + 1)
    for value in values:
        key = ("true" if value else "false") if isinstance(value, bool) else str(value)
        position = index.get(key, other if other is not None else len(names))
        current[position] += 1
    reference = np.array([*counts.values(), 0], dtype=np.float64)
    return _shares(reference), _shares(current)


def drift_report(
    profile: Mapping[str, Any],
    features: Sequence[Feature],
    records: Sequence[Mapping[str, Any]],
    *,
    threshold: float = 0.1,
    min_rows: int = 50,
) -> dict[str, Any]:
    """PSI per feature of ``records`` (logged inputs) against ``profile``.

    Features marked pii (logged hashed), text features and features the profile lacks are
    left out; so is everything when there are fewer than ``min_rows`` records.
    """
    columns = profile.get("features") or {}
    report: dict[str, Any] = {"rows": len(records), "threshold": threshold, "features": {}}
    if not columns:
        report["note"] = "the bundle has no reference profile (register with --data)"
        return report
    if len(records) < min_rows:
        report["note"] = f"{len(records)} of the {min_rows} rows a drift check needs"
        return report
    for feature in features:
        entry = columns.get(feature.name)
        if entry is None or feature.pii or feature.type == "text":
            continue
        raw = [r.get(feature.name) for r in records]
        present = [v for v in raw if v is not None]
        if not present:
            continue
        if feature.type == "numeric":
            ref, cur = _numeric(entry, np.asarray(present, dtype=np.float64))
        else:
            ref, cur = _categorical(entry, present)
        statistic = psi(ref, cur)
        report["features"][feature.name] = {
            "psi": statistic,
            "drifted": statistic >= threshold,
            "rows": len(present),
        }
    drifted = [name for name, item in report["features"].items() if item["drifted"]]
    report["drifted"] = drifted
    return report
