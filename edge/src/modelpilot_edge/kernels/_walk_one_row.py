"""One row through a tree ensemble: the walk of ``_evaluate_trees.py``, in fewer, smaller calls.

Online, a request is one row, and the batch walk's cost is its NumPy calls and the arrays they
sweep, not arithmetic: comparing the row with every node of 200 trees of depth 8 (~12,000
nodes: a gather of the row's values, a comparison, an addition, each over all nodes), then
eight steps from the roots. Here the nodes are laid out once, when the ensemble first answers
one row, so that the per-row work is smaller:

- only internal nodes are compared (a leaf's answer is itself): about half the nodes;
- internal nodes are sorted by their feature, so the values they compare are the row repeated
  (``np.repeat`` of the row by each feature's node count: a fill, not a gather, and no
  per-node feature array to read);
- leaves come after the internal nodes and point to themselves, so the eight steps are the
  same ``child.take(node)`` as the batch walk's.

Each comparison is the batch walk's (``x > threshold``, missing values where ``nan_right``
says, float32 inputs against the float32 thresholds), and the leaf values are summed as
:meth:`TreeEnsembleArrays.raw` sums them, tree after tree from ``base``: the raw scores are
the batch walk's bit for bit (the runner's tests check it on every kind of ensemble).
Ensembles with categorical splits keep the batch walk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._evaluate_trees import TreeEnsembleArrays

__all__ = ["OneRowWalk"]


@dataclass(frozen=True, eq=False)
class OneRowWalk:
    """The nodes of an ensemble laid out for one row at a time (see the module docstring).

    Node ids are positions in this layout: internal nodes ``0 .. n_internal - 1`` by feature,
    then the leaves.
    """

    depth: int
    counts: np.ndarray  # internal nodes of each feature, in feature order
    thresholds: np.ndarray  # compared thresholds of the internal nodes (float32 for float32 x)
    nan_right: np.ndarray  # of the internal nodes
    left: np.ndarray  # int32: the left child's id
    step: np.ndarray  # int32: the right child's id minus the left's
    leaf_ids: np.ndarray  # int32: each leaf's own id (a leaf points to itself)
    roots: np.ndarray  # each tree's root id
    values: np.ndarray  # the summed leaf values (``_sum_values``), rows in id order

    @classmethod
    def of(cls, arrays: TreeEnsembleArrays, sum_values: np.ndarray) -> OneRowWalk | None:
        """The layout of ``arrays`` (``sum_values``: its leaf values as they are summed), or
        None where it has categorical splits."""
        if arrays.has_categories:
            return None
        n_nodes = len(arrays.left)
        ids = np.arange(n_nodes)
        is_leaf = arrays.left == ids
        internal = np.flatnonzero(~is_leaf)
        # Stable: within a feature, nodes keep their order (any order gives the same bits).
        by_feature = internal[np.argsort(arrays.feature[internal], kind="stable")]
        order = np.concatenate([by_feature, np.flatnonzero(is_leaf)])
        position = np.empty(n_nodes, dtype=np.intp)
        position[order] = ids
        n_internal = len(by_feature)
        left = position[arrays.left[by_feature]]
        right = position[arrays.left[by_feature] + 1]
        return cls(
            depth=arrays.depth,
            counts=np.bincount(arrays.feature[by_feature], minlength=arrays.n_features),
            thresholds=np.ascontiguousarray(arrays.compared_thresholds[by_feature]),
            nan_right=np.ascontiguousarray(arrays.nan_right[by_feature]),
            left=left.astype(np.int32),
            step=(right - left).astype(np.int32),
            leaf_ids=np.arange(n_internal, n_nodes, dtype=np.int32),
            roots=position[arrays.roots],
            values=np.ascontiguousarray(sum_values[order]),
        )

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """The leaf id each tree reaches for the prepared row ``x`` (1-D, the batch walk's
        dtype: float32 for float32 inputs)."""
        values = np.repeat(x, self.counts)
        right = values > self.thresholds
        total = sum(x.tolist())  # a few Python floats: cheaper than a NumPy reduction
        if total != total:  # rare: a missing value (the sum of a row with one is NaN)
            right |= np.isnan(values) & self.nan_right
        n_internal = len(right)
        child = np.empty(n_internal + len(self.leaf_ids), dtype=np.int32)
        # left + right * step: the chosen child's id (the two children are not adjacent here).
        np.multiply(right, self.step, out=child[:n_internal])
        child[:n_internal] += self.left
        child[n_internal:] = self.leaf_ids
        node = self.roots
        for _ in range(self.depth):
            node = child.take(node)
        return node
