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
    "void(float64[:, ::1], float64[:, ::1], boolean, float64, float64[::1], intp[::1], "
    "intp[::1], boolean[::1], intp[::1], uint32[:, ::1], boolean, float64[:, ::1], intp[::1], "
    "intp, boolean)"
)


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
    feature: Any,
    left: Any,
    nan_right: Any,
    category_set: Any,
    bitsets: Any,
    negative_missing: bool,
    leaf_value: Any,
    roots: Any,
    n_groups: int,
    sum32: bool,
) -> None:  # pragma: no cover - runs compiled (numba); the zoo tests check its answers
    """``out[r]`` (holding ``base``) += the leaf values row ``r`` reaches, tree after tree."""
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
    # Tree after tree, every row: one tree's nodes stay in cache; each row's sums still add
    # the trees in order.
    for t in range(n_trees):
        first = (t // per_group) * n_values
        for r in range(n_rows):
            node = roots[t]
            child = left[node]
            while child != node:
                v = X[r, feature[node]]
                chosen = category_set[node]
                if v != v:  # NaN
                    right = nan_right[node]
                elif chosen < 0:
                    right = v > thresholds[node]
                elif v < 0.0 and negative_missing:
                    right = nan_right[node]
                elif v <= -1.0:  # LightGBM: a negative category is in no set
                    right = True
                else:
                    code = np.intp(v)  # truncation, as a C cast
                    word = np.intp(bitsets[chosen, code >> 5])
                    right = ((word >> (code & 31)) & 1) == 0
                node = child + 1 if right else child
                child = left[node]
            for k in range(n_values):
                total = out[r, first + k] + leaf_value[node, k]
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
        self._leaf_value = _owned(arrays.leaf_value.astype(dtype), np.float64)
        self._base = arrays.base.astype(dtype).astype(np.float64)
        self._dtype = dtype
        self._parts = (
            bool(arrays.input_float32),
            float(arrays.zero_threshold),
            _owned(arrays.compared_thresholds, np.float64),
            _owned(arrays.feature, np.intp),
            _owned(arrays.left, np.intp),
            _owned(arrays.nan_right, np.bool_),
            _owned(arrays.category_set, np.intp),
            _owned(arrays.category_bitsets, np.uint32),
            bool(arrays.negative_category_missing),
            self._leaf_value,
            _owned(arrays.roots, np.intp),
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
