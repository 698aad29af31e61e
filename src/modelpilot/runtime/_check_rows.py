"""The rows a tree kernel is checked on when its model loads: one reaching each leaf (with
values on the thresholds themselves, where ``x <= t`` and ``x < t`` part), missing values,
random rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelpilot_edge.kernels import TreeEnsembleArrays

__all__ = ["check_rows"]

_MAX_LEAF_ROWS = 4096
_RANDOM_ROWS = 256


def check_rows(arrays: TreeEnsembleArrays, rng: np.random.Generator) -> np.ndarray:
    """Rows that reach the leaves of ``arrays`` (thresholds included), with missing values.

    Examples
    --------
    >>> stump = TreeEnsembleArrays.from_nodes(
    ...     n_features=1, feature=[0, 0, 0], threshold=[0.5, np.inf, np.inf], left=[1, 1, 2],
    ...     nan_right=[True, False, False], leaf_value=[[0.0], [1.0], [2.0]], roots=[0],
    ...     depth=1, base=[0.0],
    ... )
    >>> sorted(set(stump.leaves(check_rows(stump, np.random.default_rng(0))).ravel().tolist()))
    [1, 2]
    """
    width = arrays.n_features
    internal = arrays.left != np.arange(len(arrays.left))
    numeric = internal & (arrays.category_set < 0)
    scale = np.ones(width)
    for f in range(width):
        used = arrays.threshold[numeric & (arrays.feature == f)]
        used = used[np.abs(used) < 1e30]  # not infinite, nor CatBoost's float32-max border
        if used.size:
            scale[f] = max(float(np.abs(used).max()), 1e-3)
    leaf_rows = _leaf_rows(arrays, rng, scale)
    random_rows = rng.normal(0.0, 1.0, size=(_RANDOM_ROWS, width)) * scale
    for column in np.flatnonzero(arrays.categorical_features):
        random_rows[:, column] = rng.integers(
            0, 32 * arrays.category_bitsets.shape[1], _RANDOM_ROWS
        )
    rows = np.concatenate([leaf_rows, random_rows])
    if arrays.allow_nan:
        missing = rows[: min(len(rows), 1024)].copy()
        missing[rng.random(missing.shape) < 0.3] = np.nan
        rows = np.concatenate([rows, missing])
    if arrays.input_float32:
        rows = rows.astype(np.float32).astype(np.float64)
    return np.ascontiguousarray(rows)


def _leaf_rows(arrays: TreeEnsembleArrays, rng: np.random.Generator, scale: np.ndarray) -> Any:
    """One row per leaf (a random subset of leaves past ``_MAX_LEAF_ROWS``)."""
    paths: list[list[tuple[int, bool]]] = []  # per leaf: (node, went right) from the root
    for root in arrays.roots:
        stack: list[tuple[int, list[tuple[int, bool]]]] = [(int(root), [])]
        while stack:
            node, path = stack.pop()
            left = int(arrays.left[node])
            if left == node:
                paths.append(path)
                continue
            stack.append((left, [*path, (node, False)]))
            stack.append((left + 1, [*path, (node, True)]))
    if len(paths) > _MAX_LEAF_ROWS:
        chosen = rng.choice(len(paths), size=_MAX_LEAF_ROWS, replace=False)
        paths = [paths[i] for i in sorted(chosen)]
    rows = rng.normal(0.0, 1.0, size=(len(paths), arrays.n_features)) * scale
    for i, path in enumerate(paths):
        _satisfy(arrays, rows[i], path)
    return rows


def _satisfy(arrays: TreeEnsembleArrays, row: np.ndarray, path: list[tuple[int, bool]]) -> None:
    low: dict[int, float] = {}
    high: dict[int, float] = {}
    for node, right in path:
        f = int(arrays.feature[node])
        if arrays.category_set[node] >= 0:
            row[f] = _category_on_side(arrays, node, right, row[f])
            continue
        t = float(arrays.threshold[node])
        if right:
            low[f] = max(low.get(f, -np.inf), t)
        else:
            high[f] = min(high.get(f, np.inf), t)
    for f in set(low) | set(high):
        lo, hi = low.get(f, -np.inf), high.get(f, np.inf)
        value = _at_or_below(hi, arrays.input_float32) if np.isfinite(hi) else np.inf
        if not value > lo:
            value = _above(lo, arrays.input_float32) if np.isfinite(lo) else hi - 1.0
        if np.isfinite(value) and lo < value <= hi:
            row[f] = value


def _category_on_side(arrays: TreeEnsembleArrays, node: int, right: bool, current: float) -> float:
    words = arrays.category_bitsets[arrays.category_set[node]]
    bits = np.unpackbits(words.view(np.uint8), bitorder="little").astype(bool)
    side = np.flatnonzero(~bits if right else bits)
    if side.size == 0:
        return current
    if np.isfinite(current) and 0 <= current < bits.size and bits[int(current)] != right:
        return current  # already on this side (an earlier split on the same feature agreed)
    return float(side[0])


def _at_or_below(t: float, float32: bool) -> float:
    if not float32:
        return t
    value = np.float32(t)
    if float(value) > t:
        value = np.nextafter(value, np.float32(-np.inf))
    return float(value)


def _above(t: float, float32: bool) -> float:
    if not float32:
        return float(np.nextafter(t, np.inf))
    value = np.float32(t)
    if float(value) <= t:
        value = np.nextafter(value, np.float32(np.inf))
    return float(value)
