"""Evaluate a tree ensemble given as plain arrays, NumPy only, with the library's arithmetic.

This module imports nothing but NumPy and its sibling evaluators (``_evaluate_links.py``,
``_evaluate_steps.py``; no scikit-learn, no SciPy, nothing of modelpilot): it lives in the
device runner (``modelpilot_edge``), and modelpilot's server imports it from there. Turning a
fitted model into :class:`TreeEnsembleArrays` and checking the result against the library is
done in modelpilot (``runtime/_extract_sklearn_trees.py``, ``_extract_boosters.py``,
``_tree_kernel.py``).

How: every tree of the ensemble is walked at once, one level per step, over all rows x trees
("lanes"): a node's children are adjacent (right = left + 1) and a leaf points to itself, so a
step is ``node = left[node] + (x[feature[node]] > threshold[node])`` for every lane, padded to
the deepest tree. For a few rows it is cheaper to compare each row with every node first and
then only follow the pointers (``_leaves_all_nodes``); a cost model picks the cheaper way. One
row (online) takes a walk of its own, laid out for it (``_walk_one_row.py``): the same bits.
(Past 400 lines: one class whose checks, walks and sums read the same fields; the links, the
one-row walk and the column steps live beside it.)

Measured in-process (``benchmarks/tree_kernels.py``: one thread, CPU time, best of 5 rounds)
on the shared 2-core machine while others' test suites kept its load average at 7-11, so every
figure is inflated and noisy (the libraries' own figures ran ~1.4x their quiet values); one
row, 200 trees of depth <= 8 on 20 features: HistGradientBoosting 74 us (GTIL 96 us,
scikit-learn 1,825 us); XGBoost 120-145 us (GTIL 110-176, ``inplace_predict`` 395-543);
LightGBM 112-137 us (GTIL 129-132, Booster.predict 68-94); a 100-tree forest of depth 12
138-153 us (GTIL 105-116; scikit-learn 9,000-10,300). 64 rows: 850-1,450 us (13-23 us a
row), 2-3x faster than GTIL, about XGBoost's and LightGBM's own. modelpilot's server walks
the same arrays compiled with numba where it is installed (``runtime/_compiled_trees.py``,
the same bits; see docs/architecture.md, "Tree kernels"); this NumPy walk stays for runners
that have only NumPy.

Exactness rules, each the library's own:

- inputs: LightGBM reads ``|x| <= 1e-35`` (``zero_threshold``) as 0.0;
- comparisons: a sample goes right when ``x > threshold`` (scikit-learn and LightGBM go left
  on ``x <= threshold``; XGBoost goes left on ``x < t``, stored as the next float32 below
  ``t``). Libraries that compare float32 inputs (scikit-learn's trees, XGBoost, CatBoost) get
  ``input_float32``: inputs are rounded to float32 and compared with each threshold rounded
  down to float32, which decides every float32 input as the float64 threshold does (and moves
  half the bytes);
- missing values (NaN) go where ``nan_right`` says, per node;
- categorical splits: a category (the input truncated to an integer, as a C cast does) goes
  left when its bit is set in the node's bitset; NaN goes as missing, and so do negative
  values where ``negative_category_missing`` (scikit-learn; LightGBM sends them right);
  categories beyond the bitset are not accepted (the library answers them);
- sums: leaf values are added tree after tree, starting from ``base`` (CatBoost then takes
  ``post_scale * sum + post_bias``), in float64 or in float32
  (``sum_float32``, XGBoost). ``np.sum`` over a tree axis may sum pairwise, in another order;
  ``np.cumsum`` is always sequential, so sums use it;
- links: ``expit`` is SciPy's ``1 / (1 + exp(-x))``; the softmax of scikit-learn's gradient
  boosting (and LightGBM's) subtracts the row maximum, sums ``exp`` class after class and
  divides; XGBoost's float32 sigmoid and softmax use ``expf``, computed here as float64
  ``exp`` rounded to float32 (``expf`` of glibc is correctly rounded in nearly all cases; the
  load-time check compares every probability with the library's).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

import numpy as np

# Relative: the evaluator modules import only NumPy and each other (a test holds them to it).
from ._evaluate_links import decide, link
from ._evaluate_links import expf as default_expf
from ._walk_one_row import OneRowWalk

__all__ = ["TreeEnsembleArrays"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)
# Cost model for choosing between the two walks, in units of one element of a NumPy operation
# (~0.7 ns here): a NumPy call costs about 1.2 us, ~1,700 elements.
_CALL_COST = 1700


@dataclass(frozen=True, eq=False)
class TreeEnsembleArrays:
    """A fitted tree ensemble as arrays and a few scalars (see the module docstring).

    Nodes of all trees are flattened into one set of arrays; ``roots[t]`` is tree ``t``'s
    root. An internal node's children are ``left[i]`` and ``left[i] + 1``; a leaf's ``left``
    is itself. ``leaf_value`` has one row per node (zeros on internal nodes) and ``n_values``
    columns. Trees come in ``n_groups`` equal runs; run ``g`` adds to outputs
    ``g * n_values ... (g + 1) * n_values - 1`` (one run per class in multiclass boosting).
    Round-trips through :meth:`save` / :meth:`load` (``np.savez``, no pickle).

    Examples
    --------
    A stump on feature 0 (left leaf 1.0 below or at 0.5, right leaf 2.0; NaN goes right):

    >>> stump = TreeEnsembleArrays.from_nodes(
    ...     n_features=1, feature=[0, 0, 0], threshold=[0.5, np.inf, np.inf], left=[1, 1, 2],
    ...     nan_right=[True, False, False], leaf_value=[[0.0], [1.0], [2.0]], roots=[0],
    ...     depth=1, base=[0.0],
    ... )
    >>> raw, proba, index = stump.evaluate(np.array([[0.5], [0.7], [np.nan]]))
    >>> raw.ravel().tolist(), proba, index
    ([1.0, 2.0, 2.0], None, None)
    """

    n_features: int
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    nan_right: np.ndarray
    category_set: np.ndarray
    category_bitsets: np.ndarray
    categorical_features: np.ndarray
    leaf_value: np.ndarray
    roots: np.ndarray
    depth: int
    n_groups: int
    base: np.ndarray
    divisor: float = 1.0
    input_float32: bool = False
    sum_float32: bool = False
    allow_nan: bool = True
    allow_inf: bool = False
    link: str = "identity"
    link_scale: float = 1.0
    decision: str = "none"
    negative_category_missing: bool = True
    zero_threshold: float = 0.0
    post_scale: float = 1.0
    post_bias: float = 0.0

    @classmethod
    def from_nodes(cls, **values: Any) -> TreeEnsembleArrays:
        """Build from lists or arrays; categorical fields default to "no categories"."""
        n_nodes = len(values["feature"])
        n_features = int(values["n_features"])
        values.setdefault("category_set", np.full(n_nodes, -1))
        values.setdefault("category_bitsets", np.zeros((0, 1), dtype=np.uint32))
        values.setdefault("categorical_features", np.zeros(n_features, dtype=bool))
        values.setdefault("n_groups", 1)
        typed = {
            "feature": np.intp,
            "threshold": np.float64,
            "left": np.intp,
            "nan_right": bool,
            "category_set": np.intp,
            "category_bitsets": np.uint32,
            "categorical_features": bool,
            "leaf_value": np.float64,
            "roots": np.intp,
            "base": np.float64,
        }
        for name, dtype in typed.items():
            values[name] = np.ascontiguousarray(values[name], dtype=dtype)
        return cls(**values)

    # ---- properties -------------------------------------------------------------------------
    @property
    def n_trees(self) -> int:
        return len(self.roots)

    @property
    def n_values(self) -> int:
        return int(self.leaf_value.shape[1])

    @property
    def n_outputs(self) -> int:
        return self.n_groups * self.n_values

    @property
    def has_categories(self) -> bool:
        return bool(self.category_bitsets.shape[0])

    @cached_property
    def _has_categorical_features(self) -> bool:
        return bool(self.categorical_features.any())

    @cached_property
    def _categorical_nodes(self) -> np.ndarray:
        return np.flatnonzero(self.category_set >= 0)

    @cached_property
    def _thresholds(self) -> np.ndarray:
        """The thresholds inputs are compared with: for float32 inputs, each as the largest
        float32 at or below it (``x > t`` then holds for the same float32 ``x``)."""
        if not self.input_float32:
            return self.threshold
        with np.errstate(over="ignore"):  # past float32's range: inf, then float32's largest
            rounded = self.threshold.astype(np.float32)
        above = rounded.astype(np.float64) > self.threshold
        rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
        return rounded

    @property
    def compared_thresholds(self) -> np.ndarray:
        """The thresholds inputs are compared with (float32 for ``input_float32``): for a
        compiled walk of the same arrays (modelpilot's ``runtime/_compiled_trees.py``)."""
        return self._thresholds

    @cached_property
    def _left32(self) -> np.ndarray:
        return self.left.astype(np.int32)

    @cached_property
    def _sum_base(self) -> np.ndarray:
        dtype = np.float32 if self.sum_float32 else np.float64
        return self.base.astype(dtype).reshape(self.n_groups, self.n_values)

    @cached_property
    def _sum_values(self) -> np.ndarray:
        return self.leaf_value.astype(np.float32 if self.sum_float32 else np.float64)

    # ---- input --------------------------------------------------------------------------------
    def accepts(self, X: np.ndarray) -> bool:
        """Whether the kernel answers ``X`` exactly as the library would (else ask the library)."""
        if X.dtype != np.float64 or X.ndim != 2 or X.shape[1] != self.n_features or not len(X):
            return False
        if len(X) == 1:  # one row (online): its Python floats cost less to check than NumPy
            row = X[0].tolist()
            # A non-finite value makes the sum non-finite (so may an overflowing sum of
            # finite values: those take the full check below).
            if math.isfinite(sum(row)):
                if self.input_float32 and max(map(abs, row)) > _FLOAT32_MAX:
                    return False
                return self._codes_fit(X)
        finite = np.isfinite(X)
        if finite.all():
            if self.input_float32 and float(np.abs(X).max()) > _FLOAT32_MAX:
                return False
        else:
            nan = np.isnan(X)
            if nan.any() and not self.allow_nan:
                return False
            if not (finite | nan).all() and not self.allow_inf:
                return False
            if self.input_float32 and bool((np.abs(X[finite]) > _FLOAT32_MAX).any()):
                return False
        return self._codes_fit(X)

    def _codes_fit(self, X: np.ndarray) -> bool:
        """Whether the categories of ``X`` fit the bitsets (beyond them: the library's)."""
        if self._has_categorical_features:
            codes = X[:, self.categorical_features]
            limit = 32 * self.category_bitsets.shape[1]
            if bool((codes >= limit).any()):  # NaN compares False: missing is fine
                return False
        return True

    def _prepared(self, X: np.ndarray) -> np.ndarray:
        if self.input_float32:  # compared in float32 with _thresholds (half the bytes)
            return X.astype(np.float32)
        if self.zero_threshold:
            return np.where(np.abs(X) <= self.zero_threshold, 0.0, X)
        return np.ascontiguousarray(X, dtype=np.float64)

    # ---- walking the trees ------------------------------------------------------------------
    def leaves(self, X: np.ndarray) -> np.ndarray:
        """The leaf each row reaches in each tree: ``(n_rows, n_trees)`` node indices."""
        X = self._prepared(X)
        n_rows = X.shape[0]
        n_lanes = n_rows * self.n_trees
        nodes = len(self.feature)
        missing = bool(np.isnan(X).any())
        all_nodes = _CALL_COST * (8 + self.depth) + n_rows * (3 * nodes) + self.depth * n_lanes
        by_level = _CALL_COST * 6 * self.depth + 7 * self.depth * n_lanes
        if all_nodes < by_level:
            return self._leaves_all_nodes(X, missing)
        return self._leaves_by_level(X, missing)

    def _goes_right(self, values: np.ndarray, nodes: np.ndarray, missing: bool) -> np.ndarray:
        """Whether ``values`` (one per lane) go right at ``nodes`` (one per lane)."""
        right = values > self._thresholds.take(nodes)
        if missing:
            right |= np.isnan(values) & self.nan_right.take(nodes)
        if self.has_categories:
            sets = self.category_set.take(nodes)
            where = np.flatnonzero(sets >= 0)
            if where.size:
                right[where] = self._category_right(values[where], nodes[where])
        return right

    def _category_right(self, values: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        nan = np.isnan(values)
        # scikit-learn tests the float (< 0); LightGBM the C cast (int(-0.5) is category 0).
        negative = values < 0 if self.negative_category_missing else values <= -1
        missing = nan | negative if self.negative_category_missing else nan
        codes = np.where(nan | negative, 0, values).astype(np.intp)  # truncation, as a C cast
        words = self.category_bitsets[self.category_set[nodes], codes >> 5]
        inside = (words >> (codes & 31).astype(np.uint32)) & 1
        right = (inside == 0) | negative  # a negative category is in no set
        result: np.ndarray = np.where(missing, self.nan_right[nodes], right)
        return result

    def _leaves_by_level(self, X: np.ndarray, missing: bool) -> np.ndarray:
        n_rows = X.shape[0]
        node = np.tile(self.roots, n_rows)
        flat = X.ravel()
        index = np.empty_like(node)
        values = np.empty(len(node), dtype=X.dtype)
        row_start = None
        if n_rows > 1:
            row_start = np.repeat(np.arange(n_rows, dtype=np.intp) * self.n_features, self.n_trees)
        for _ in range(self.depth):
            self.feature.take(node, out=index)
            if row_start is not None:
                index += row_start
            flat.take(index, out=values)
            right = self._goes_right(values, node, missing)
            self.left.take(node, out=index)
            np.add(index, right, out=node)
        return node.reshape(n_rows, self.n_trees)

    def _leaves_all_nodes(self, X: np.ndarray, missing: bool) -> np.ndarray:
        """Every row compared with every node first (few rows: fewer, larger NumPy calls)."""
        n_rows, n_nodes = X.shape[0], len(self.feature)
        values = X.take(self.feature, axis=1)
        right = values > self._thresholds
        if missing:
            right |= np.isnan(values) & self.nan_right
        if self.has_categories:
            columns = self._categorical_nodes
            if columns.size:
                picked = values[:, columns]
                nodes = np.broadcast_to(columns, picked.shape)
                right[:, columns] = self._category_right(picked.ravel(), nodes.ravel()).reshape(
                    picked.shape
                )
        if n_rows == 1:  # the common case online: no row offsets, 4-byte pointers
            child = self._left32 + right[0]
            node = self.roots
            for _ in range(self.depth):
                node = child.take(node)
            return node.reshape(1, self.n_trees)
        offsets = np.arange(n_rows, dtype=np.intp)[:, None] * n_nodes
        child = (self.left + right + offsets).ravel()
        node = (self.roots + offsets).ravel()
        for _ in range(self.depth):
            node = child.take(node)
        leaves: np.ndarray = node.reshape(n_rows, self.n_trees) - offsets
        return leaves

    # ---- sums and links ---------------------------------------------------------------------
    def raw(self, X: np.ndarray) -> np.ndarray:
        """Raw scores ``(n_rows, n_outputs)``: ``base`` plus the leaf values, tree after tree."""
        walk = self._one_row_walk if X.shape[0] == 1 else None
        if walk is None:
            return self._sums(self.leaves(X), self._sum_values)
        return self._sums(walk.leaves(self._prepared(X)[0])[None, :], walk.values)

    @cached_property
    def _one_row_walk(self) -> OneRowWalk | None:
        return OneRowWalk.of(self, self._sum_values)

    def _sums(self, leaves: np.ndarray, leaf_values: np.ndarray) -> np.ndarray:
        """Raw scores of the leaves each row reached (``leaf_values`` indexed by leaf id)."""
        n_rows, n_groups, n_values = leaves.shape[0], self.n_groups, self.n_values
        if n_values == 1:  # boosting: one value a leaf (a take is cheaper than an index)
            values = leaf_values.ravel().take(leaves).reshape(n_rows, n_groups, -1, 1)
        else:
            values = leaf_values[leaves].reshape(n_rows, n_groups, -1, n_values)
        dtype = values.dtype
        # base + t1 is the first partial sum: adding base to the first tree's values in place
        # keeps the library's order (base, then tree after tree) without another array.
        values[:, :, 0, :] += self._sum_base
        # add.accumulate is np.cumsum without its Python wrapper (~1.5 us of a one-row call).
        sums = np.add.accumulate(values, axis=2, dtype=dtype)[:, :, -1, :].reshape(n_rows, -1)
        return self.scaled(sums)

    def scaled(self, sums: np.ndarray) -> np.ndarray:
        """Raw scores from the sums of ``base`` and the leaf values (float32 for
        ``sum_float32``): divided by ``divisor``, then CatBoost's scale and bias."""
        dtype = sums.dtype
        if self.divisor != 1.0:
            sums = sums / dtype.type(self.divisor)
        if self.post_scale != 1.0 or self.post_bias != 0.0:  # CatBoost: scale * sum + bias
            sums = self.post_scale * sums + self.post_bias
        return sums

    def evaluate(
        self, X: np.ndarray, *, expf: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Raw scores, class probabilities and the predicted class index.

        Regressors get ``(raw, None, None)``; their prediction is ``link(raw)[:, 0]`` (see
        :meth:`predict_values`). ``expf`` is the float32 ``exp`` of the float32 links: by
        default float64 ``exp`` rounded to float32, which differs from the C library's
        ``expf`` in the last bit on a few inputs (the caller may pass the C library's own).
        """
        return self.answers(self.raw(X), expf=expf)

    def answers(
        self, raw: np.ndarray, *, expf: Callable[[np.ndarray], np.ndarray] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """:meth:`evaluate` from raw scores already computed (by :meth:`raw` or a compiled
        walk of the same arrays)."""
        if self.decision == "none":
            return raw, None, None
        proba = link(self.link, raw, self.link_scale, expf or default_expf)
        return raw, proba, decide(self.decision, raw, proba)

    def predict_values(self, X: np.ndarray) -> np.ndarray:
        """Regression predictions: the link of the raw score, one value per row."""
        return self.values_of(self.raw(X))

    def values_of(self, raw: np.ndarray) -> np.ndarray:
        """:meth:`predict_values` from raw scores already computed."""
        return link(self.link, raw, self.link_scale)[:, 0]

    # ---- storage ----------------------------------------------------------------------------
    def save(self, file: Any) -> None:
        """Write the arrays and scalars with ``np.savez`` (a path or a binary file object)."""
        arrays: dict[str, Any] = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}
        np.savez(file, **arrays)

    @classmethod
    def load(cls, file: Any) -> TreeEnsembleArrays:
        """Read what :meth:`save` wrote."""
        with np.load(file, allow_pickle=False) as data:
            values: dict[str, Any] = {}
            for f in fields(cls):
                item = data[f.name]
                values[f.name] = item if item.ndim else item.item()
        return cls(**values)
