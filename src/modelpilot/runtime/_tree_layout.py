"""From one library's trees to :class:`TreeEnsembleArrays`: the layout every extractor shares.

Extractors describe each tree in its library's own node order (children as indices, -1 on
leaves); :func:`assemble` renumbers the nodes breadth first so that an internal node's children
are adjacent, makes every leaf point to itself and merges all category bitsets into one table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelpilot_edge.kernels import TreeEnsembleArrays

__all__ = ["Tree", "Unsupported", "assemble"]


class Unsupported(Exception):
    """A model (or a part of it) the kernel cannot express; the message says why."""


@dataclass
class Tree:
    """One tree in its library's node order. ``left``/``right`` are -1 on leaves; a sample
    goes right when ``x > threshold``; ``category[i]`` is -1 or the row of ``bitsets`` holding
    the categories that go left at node ``i``; ``value`` has one row per node."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    nan_right: np.ndarray
    value: np.ndarray
    category: np.ndarray | None = None
    bitsets: np.ndarray | None = None


def assemble(trees: list[Tree], *, n_features: int, **scalars: Any) -> TreeEnsembleArrays:
    """One :class:`TreeEnsembleArrays` for ``trees`` (in summation order)."""
    if not trees:
        raise Unsupported("the model has no trees")
    n_values = trees[0].value.shape[1]
    width = max((t.bitsets.shape[1] for t in trees if t.bitsets is not None), default=1)
    parts: dict[str, list[np.ndarray]] = {
        name: []
        for name in ("feature", "threshold", "left", "nan_right", "category_set", "leaf_value")
    }
    bitsets: list[np.ndarray] = []
    roots: list[int] = []
    depth = 0
    start = 0
    for tree in trees:
        order, new_index, tree_depth = _breadth_first(tree.left, tree.right)
        depth = max(depth, tree_depth)
        is_leaf = tree.left[order] < 0
        children = np.where(is_leaf, np.arange(len(order)), new_index[tree.left[order]])
        parts["left"].append(children + start)
        parts["feature"].append(np.where(is_leaf, 0, tree.feature[order]))
        parts["threshold"].append(np.where(is_leaf, np.inf, tree.threshold[order]))
        parts["nan_right"].append(np.where(is_leaf, False, tree.nan_right[order]))
        values = np.where(is_leaf[:, None], tree.value[order], 0.0)
        parts["leaf_value"].append(values.reshape(len(order), n_values))
        category = np.full(len(order), -1, dtype=np.intp)
        if tree.category is not None and tree.bitsets is not None:
            own = tree.category[order]
            used = (own >= 0) & ~is_leaf
            category[used] = own[used] + sum(len(b) for b in bitsets)
            padded = np.zeros((len(tree.bitsets), width), dtype=np.uint32)
            padded[:, : tree.bitsets.shape[1]] = tree.bitsets
            bitsets.append(padded)
        parts["category_set"].append(category)
        roots.append(start)
        start += len(order)
    categorical = np.zeros(n_features, dtype=bool)
    merged = {name: np.concatenate(arrays) for name, arrays in parts.items()}
    categorical[np.unique(merged["feature"][merged["category_set"] >= 0])] = True
    return TreeEnsembleArrays.from_nodes(
        n_features=n_features,
        **merged,
        category_bitsets=(
            np.concatenate(bitsets) if bitsets else np.zeros((0, 1), dtype=np.uint32)
        ),
        categorical_features=categorical,
        roots=roots,
        depth=depth,
        **scalars,
    )


def _breadth_first(left: np.ndarray, right: np.ndarray) -> tuple[list[int], np.ndarray, int]:
    """Nodes in breadth-first order (children adjacent), old -> new index, and the depth."""
    order = [0]
    depth_of = [0]
    i = 0
    while i < len(order):
        node = order[i]
        if left[node] >= 0:
            order.extend((int(left[node]), int(right[node])))
            depth_of.extend((depth_of[i] + 1, depth_of[i] + 1))
        i += 1
    new_index = np.full(len(left), -1, dtype=np.intp)
    new_index[order] = np.arange(len(order))
    return order, new_index, max(depth_of)
