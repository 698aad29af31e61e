"""The tree walk of ``TreeEnsembleArrays`` compiled with numba: the one module importing it.

Why: the NumPy evaluator (``modelpilot_edge.kernels._evaluate_trees``) pays ~1.2 us a NumPy
call, and a walk of 200 trees of depth 8 takes ~30 calls, so one row costs 70-150 us although
the arithmetic is a few microseconds of compiled code. numba compiles this loop at model load
(with LLVM, which its wheel ships: no compiler is needed on the user's machine) and keeps the
machine code in its on-disk cache (``NUMBA_CACHE_DIR``, by default ``__pycache__`` beside this
module, or numba's user cache where that is read-only), so a restart loads it instead of
compiling again. numba is an optional extra (``pip install 'modelpilot[compiled]'``);
without it, or with ``MODELPILOT_COMPILED_KERNELS=0``, the NumPy evaluator answers.

Same arrays, same arithmetic: inputs rounded to float32 for ``input_float32`` (compared with
the thresholds the NumPy walk uses) or zeroed below LightGBM's ``zero_threshold``; a sample
goes right when ``x > threshold``, NaN where ``nan_right`` says, categories through the same
bitsets; sums start at ``base`` and add the leaf values tree after tree, as the NumPy
evaluator's ``cumsum`` does. Float32 sums (XGBoost) add in float64 and round each partial
sum to float32, which is the float32 sum itself (a float64 sum of two float32 numbers rounded
to float32 is correctly rounded: 53 >= 2 x 24 + 2 bits). The scaling, links and class
decisions after the sums are the NumPy evaluator's own. The load-time check (``_tree_kernel``)
holds these answers to the library's, as it does the NumPy walk's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import numpy as np

from modelpilot_edge.kernels import TreeEnsembleArrays

__all__ = ["CompiledTrees", "compiled_enabled", "compiled_trees"]

logger = logging.getLogger("modelpilot.runtime")

# One signature, compiled once (explicit: no other is compiled at request time).
_SIGNATURE = (
    "void(float64[:, ::1], float64[:, ::1], boolean, float64, float64[:, ::1], uint32[:, ::1], "
    "boolean, float64[:, ::1], intp[::1], intp[::1], intp, boolean)"
)
# The columns of the walk's node table: one row (32 bytes) a node, so a step reads one cache
# line, not one in each of five arrays (a 100-tree forest of depth 12 has 60,000 nodes).
_THRESHOLD, _FEATURE, _LEFT, _SPECIAL = range(4)


def compiled_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """False when ``MODELPILOT_COMPILED_KERNELS`` turns the compiled walk off (``0``, ...)."""
    value = environ.get("MODELPILOT_COMPILED_KERNELS", "1").strip().lower()
    return value not in {"0", "false", "no", "off"}


def _tree_sums(
    X: Any,
    out: Any,
    round32: bool,
    zero_threshold: float,
    nodes: Any,
    bitsets: Any,
    negative_missing: bool,
    leaf_value: Any,
    roots: Any,
    depths: Any,
    n_groups: int,
    sum32: bool,
) -> None:  # pragma: no cover - runs compiled (numba); the zoo tests check its answers
    """``out[r]`` (holding ``base``) += the leaf values row ``r`` reaches, tree after tree.

    ``nodes[i]``: threshold, feature, left child, and ``special``: -1 (a numeric split, NaN
    goes left), -2 (numeric, NaN goes right), or ``2 * bitset row + nan_right`` (categorical).
    """
    n_rows, n_features = X.shape
    for r in range(n_rows):  # the input as the NumPy walk compares it
        for f in range(n_features):
            v = X[r, f]
            if round32:
                X[r, f] = np.float64(np.float32(v))
            elif zero_threshold > 0.0 and abs(v) <= zero_threshold:
                X[r, f] = 0.0
    n_trees = roots.shape[0]
    per_group = n_trees // n_groups
    n_values = leaf_value.shape[1]
    at = np.empty(n_rows, dtype=np.intp)
    # Tree after tree, one level at a time over the rows: the tree's nodes stay in cache, the
    # rows' steps are independent (no branch on the depth; a leaf points to itself), and each
    # row's sums still add the trees in order.
    for t in range(n_trees):
        at[:] = roots[t]
        for _ in range(depths[t]):
            for r in range(n_rows):
                i = at[r]
                v = X[r, np.intp(nodes[i, 1])]
                special = nodes[i, 3]
                if v != v or special >= 0.0:  # rare: missing values, categorical splits
                    if v != v:
                        right = special == -2.0 or (special >= 0.0 and (np.intp(special) & 1) == 1)
                    elif v < 0.0 and negative_missing:  # a negative category is missing
                        right = (np.intp(special) & 1) == 1
                    elif v <= -1.0:  # LightGBM: a negative category is in no set
                        right = True
                    else:
                        code = np.intp(v)  # truncation, as a C cast
                        word = np.intp(bitsets[np.intp(special) >> 1, code >> 5])
                        right = ((word >> (code & 31)) & 1) == 0
                else:
                    right = v > nodes[i, 0]
                at[r] = np.intp(nodes[i, 2]) + np.intp(right)
        first = (t // per_group) * n_values
        for r in range(n_rows):
            for k in range(n_values):
                total = out[r, first + k] + leaf_value[at[r], k]
                out[r, first + k] = np.float64(np.float32(total)) if sum32 else total


@cache
def _compiled() -> Callable[..., None] | None:
    """The compiled walk (from numba's cache when it holds it), or None without numba."""
    try:
        import numba  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        logger.info(
            "numba is not installed: tree kernels walk in NumPy "
            "(pip install 'modelpilot[compiled]' for the compiled walk)"
        )
        return None
    compiled: Callable[..., None] = numba.njit(_SIGNATURE, cache=True, nogil=True)(_tree_sums)
    return compiled


class CompiledTrees:
    """Raw scores of ``arrays`` from the compiled walk: the same as ``arrays.raw``.

    Examples
    --------
    >>> stump = TreeEnsembleArrays.from_nodes(
    ...     n_features=1, feature=[0, 0, 0], threshold=[0.5, np.inf, np.inf], left=[1, 1, 2],
    ...     nan_right=[True, False, False], leaf_value=[[0.0], [1.0], [2.0]], roots=[0],
    ...     depth=1, base=[0.5],
    ... )
    >>> trees = compiled_trees(stump, environ={})
    >>> rows = np.array([[0.5], [0.7], [np.nan]])
    >>> trees is None or trees.raw(rows).ravel().tolist() == stump.raw(rows).ravel().tolist()
    True
    """

    def __init__(self, arrays: TreeEnsembleArrays, walk: Callable[..., None]) -> None:
        self.arrays = arrays
        self._walk = walk
        sum32 = arrays.sum_float32
        dtype = np.float32 if sum32 else np.float64
        # Values as the sums take them (float32 numbers, held in float64, for XGBoost).
        leaf_value = _owned(arrays.leaf_value.astype(dtype), np.float64)
        self._base = arrays.base.astype(dtype).astype(np.float64)
        self._dtype = dtype
        self._parts = (
            bool(arrays.input_float32),
            float(arrays.zero_threshold),
            _node_table(arrays),
            _owned(arrays.category_bitsets, np.uint32),
            bool(arrays.negative_category_missing),
            leaf_value,
            _owned(arrays.roots, np.intp),
            _depths(arrays),
            int(arrays.n_groups),
            sum32,
        )

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Raw scores ``(n_rows, n_outputs)`` for a float64 array the arrays accept."""
        rows = np.array(X, dtype=np.float64, order="C")  # a copy: the walk rounds it in place
        out = np.empty((len(rows), len(self._base)))
        out[:] = self._base
        self._walk(rows, out, *self._parts)
        return self.arrays.scaled(out.astype(self._dtype, copy=False))


def compiled_trees(
    arrays: TreeEnsembleArrays, *, environ: Mapping[str, str] = os.environ
) -> CompiledTrees | None:
    """The compiled walk of ``arrays``, or None (switched off, or numba not installed)."""
    if not compiled_enabled(environ):
        return None
    walk = _compiled()
    return None if walk is None else CompiledTrees(arrays, walk)


def _owned(values: np.ndarray, dtype: Any) -> np.ndarray:
    """A C-ordered, writeable array of ``dtype`` (the types of the compiled signature)."""
    return np.require(values, dtype=dtype, requirements=["C", "W"])


def _node_table(arrays: TreeEnsembleArrays) -> np.ndarray:
    """The ``nodes`` table of :func:`_tree_sums` (every value exact in float64)."""
    table = np.empty((len(arrays.feature), 4))
    table[:, _THRESHOLD] = arrays.compared_thresholds
    table[:, _FEATURE] = arrays.feature
    table[:, _LEFT] = arrays.left
    nan_right = arrays.nan_right.astype(np.float64)
    categorical = arrays.category_set >= 0
    table[:, _SPECIAL] = np.where(
        categorical, 2.0 * arrays.category_set + nan_right, -1.0 - nan_right
    )
    return table


def _depths(arrays: TreeEnsembleArrays) -> np.ndarray:
    """Each tree's depth (the walk takes that many steps in it)."""
    depths = np.zeros(len(arrays.roots), dtype=np.intp)
    for t, root in enumerate(arrays.roots):
        level = np.array([root])
        while True:
            inner = level[arrays.left[level] != level]
            if not inner.size:
                break
            level = np.concatenate([arrays.left[inner], arrays.left[inner] + 1])
            depths[t] += 1
    return depths
