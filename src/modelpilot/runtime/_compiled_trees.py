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
    "void(float64[:, ::1], float64[:, ::1], boolean, float64, float64[::1], uint32[:, ::1], "
    "int64[::1], uint32[:, ::1], boolean, float64[:, ::1], uint32[::1], intp[::1], "
    "boolean[::1], intp, boolean)"
)
# Rows walked together through a tree on the fast path (see _tree_sums).
_BLOCK = 8


def compiled_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """False when ``MODELPILOT_COMPILED_KERNELS`` turns the compiled walk off (``0``, ...)."""
    value = environ.get("MODELPILOT_COMPILED_KERNELS", "1").strip().lower()
    return value not in {"0", "false", "no", "off"}


def _tree_sums(
    X: Any,
    out: Any,
    round32: bool,
    zero_threshold: float,
    thresholds: Any,
    links: Any,
    special: Any,
    bitsets: Any,
    negative_missing: bool,
    leaf_value: Any,
    roots: Any,
    depths: Any,
    plain: Any,
    n_groups: int,
    sum32: bool,
) -> None:  # pragma: no cover - runs compiled (numba); the zoo tests check its answers
    """``out[r]`` (holding ``base``) += the leaf values row ``r`` reaches, tree after tree.

    Node ``i``: ``thresholds[i]``; ``links[i]`` = (feature, left child); ``special[i]``: -1 (a
    numeric split, NaN goes left), -2 (numeric, NaN goes right), or ``2 * bitset row +
    nan_right`` (categorical). ``plain[t]``: tree ``t`` has no categorical split.

    Tree after tree (each row's sums add the trees in order), the rows go through the tree in
    blocks of ``_BLOCK``, so the tree's nodes stay in cache for all the rows. A full block
    without a missing value, in a tree without a categorical split, takes the fast path: eight
    walks interleaved in registers, ``i = left + (x > threshold)`` a step. The eight steps of a
    level do not depend on each other, so the core runs them in parallel, where one walk alone
    waits on each load. Other rows take the general step, one row at a time. Indices are
    unsigned: numba then emits no wrap-around test for a negative index at each load
    (measured: a third of the time of a step).
    """
    n_rows, n_features = X.shape
    n_blocks = (n_rows + _BLOCK - 1) // _BLOCK
    complete = np.ones(n_blocks, dtype=np.bool_)  # a full block without a missing value
    complete[n_rows // _BLOCK :] = False  # the partial block at the end, if any
    for r in range(n_rows):  # the input as the NumPy walk compares it
        for f in range(n_features):
            v = X[r, f]
            if v != v:
                complete[r // _BLOCK] = False
            elif round32:
                X[r, f] = np.float64(np.float32(v))
            elif zero_threshold > 0.0 and abs(v) <= zero_threshold:
                X[r, f] = 0.0
    n_trees = roots.shape[0]
    per_group = n_trees // n_groups
    n_values = leaf_value.shape[1]
    at = np.empty(_BLOCK, dtype=np.uintp)
    for t in range(n_trees):
        root = np.uintp(roots[t])
        first = (t // per_group) * n_values
        for block in range(n_blocks):
            b = block * _BLOCK  # the block's first row
            size = min(_BLOCK, n_rows - b)
            if complete[block] and plain[t]:
                i0 = i1 = i2 = i3 = i4 = i5 = i6 = i7 = root
                for _ in range(depths[t]):
                    i0 = np.uintp(links[i0, 1]) + np.uintp(X[b, links[i0, 0]] > thresholds[i0])
                    i1 = np.uintp(links[i1, 1]) + np.uintp(X[b + 1, links[i1, 0]] > thresholds[i1])
                    i2 = np.uintp(links[i2, 1]) + np.uintp(X[b + 2, links[i2, 0]] > thresholds[i2])
                    i3 = np.uintp(links[i3, 1]) + np.uintp(X[b + 3, links[i3, 0]] > thresholds[i3])
                    i4 = np.uintp(links[i4, 1]) + np.uintp(X[b + 4, links[i4, 0]] > thresholds[i4])
                    i5 = np.uintp(links[i5, 1]) + np.uintp(X[b + 5, links[i5, 0]] > thresholds[i5])
                    i6 = np.uintp(links[i6, 1]) + np.uintp(X[b + 6, links[i6, 0]] > thresholds[i6])
                    i7 = np.uintp(links[i7, 1]) + np.uintp(X[b + 7, links[i7, 0]] > thresholds[i7])
                at[0], at[1], at[2], at[3] = i0, i1, i2, i3
                at[4], at[5], at[6], at[7] = i4, i5, i6, i7
            else:
                for j in range(size):
                    r = b + j
                    i = root
                    for _ in range(depths[t]):
                        v = X[r, links[i, 0]]
                        kind = special[i]
                        if v != v or kind >= 0:  # rare: missing values, categorical splits
                            if v != v:
                                right = kind == -2 or (kind >= 0 and (kind & 1) == 1)
                            elif v < 0.0 and negative_missing:  # a negative category is missing
                                right = (kind & 1) == 1
                            elif v <= -1.0:  # LightGBM: a negative category is in no set
                                right = True
                            else:
                                code = np.uintp(np.intp(v))  # truncation, as a C cast (v > -1)
                                word = bitsets[np.uintp(kind >> 1), code >> np.uintp(5)]
                                right = ((word >> (code & np.uintp(31))) & 1) == 0
                        else:
                            right = v > thresholds[i]
                        i = np.uintp(links[i, 1]) + np.uintp(right)
                    at[j] = i
            for j in range(size):
                for k in range(n_values):
                    total = out[b + j, first + k] + leaf_value[at[j], k]
                    out[b + j, first + k] = np.float64(np.float32(total)) if sum32 else total


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
        depths, plain = _shape(arrays)
        self._parts = (
            bool(arrays.input_float32),
            float(arrays.zero_threshold),
            _owned(arrays.compared_thresholds, np.float64),
            _links(arrays),
            _special(arrays),
            _owned(arrays.category_bitsets, np.uint32),
            bool(arrays.negative_category_missing),
            leaf_value,
            _owned(arrays.roots, np.uint32),
            depths,
            plain,
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


def _links(arrays: TreeEnsembleArrays) -> np.ndarray:
    """``links`` of :func:`_tree_sums`: each node's feature and left child, side by side (one
    cache line holds a node's two, and both are read at each step)."""
    return _owned(np.stack([arrays.feature, arrays.left], axis=1), np.uint32)


def _special(arrays: TreeEnsembleArrays) -> np.ndarray:
    """``special`` of :func:`_tree_sums`: how a node treats a missing value or a category."""
    nan_right = arrays.nan_right.astype(np.int64)
    categorical = arrays.category_set >= 0
    return np.where(categorical, 2 * arrays.category_set + nan_right, -1 - nan_right).astype(
        np.int64
    )


def _shape(arrays: TreeEnsembleArrays) -> tuple[np.ndarray, np.ndarray]:
    """Each tree's depth (the walk takes that many steps in it), and whether it has no
    categorical split (the fast path's trees)."""
    depths = np.zeros(len(arrays.roots), dtype=np.intp)
    plain = np.ones(len(arrays.roots), dtype=np.bool_)
    for t, root in enumerate(arrays.roots):
        level = np.array([root])
        while True:
            inner = level[arrays.left[level] != level]
            if not inner.size:
                break
            plain[t] &= bool((arrays.category_set[inner] < 0).all())
            level = np.concatenate([arrays.left[inner], arrays.left[inner] + 1])
            depths[t] += 1
    return depths, plain
