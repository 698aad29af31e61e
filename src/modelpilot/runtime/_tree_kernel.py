"""Tree kernels: a model's :class:`TreeEnsembleArrays`, used only where they answer as it does.

When a model loads, its trees become arrays (``_extract_*``), and the kernel answers a check
sample: for every leaf (up to ``_MAX_LEAF_ROWS``), a row that reaches it, with values on the
thresholds themselves (``x <= t`` against ``x < t`` is decided there); rows with missing values;
random rows. Every prediction and probability must equal the library's own, bit for bit and
in the library's dtype, in one batch and row by row (the two walks of the evaluator). Anything
else (a model the arrays cannot express, one answer that differs) leaves the library to answer
every call, with the reason in an INFO log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from modelpilot.runtime._check_rows import check_rows
from modelpilot.runtime._compiled_trees import CompiledTrees, compiled_trees
from modelpilot.runtime._kernels import frame_array, same_answers
from modelpilot_edge.kernels import CategoryCodes, ColumnSteps, TreeEnsembleArrays, c_expf

__all__ = ["TreeKernel", "checked_kernel"]

logger = logging.getLogger("modelpilot.runtime")

_FLOAT32_LINKS = frozenset({"expit32", "softmax32"})

# The library's answers on an array: (predictions, probabilities or None).
Answers = tuple[np.ndarray, np.ndarray | None]


class TreeKernel:
    """Answers of a tree ensemble from its arrays; labels from ``classes`` (classifiers).

    ``codes`` turn the categories of text input columns into numbers and ``steps`` are the
    column-wise arithmetic of the pipeline's transformers (see ``_extract_pipeline.py``).

    Examples
    --------
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from modelpilot.runtime._extract_sklearn_trees import sklearn_tree_arrays
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> model = DecisionTreeClassifier(random_state=0).fit(X, ["a", "a", "b", "b"])
    >>> kernel = TreeKernel(sklearn_tree_arrays(model), classes=model.classes_)
    >>> labels, proba = kernel.predict_with_proba(np.array([[0.5], [2.5]]))
    >>> labels.tolist(), proba.tolist()
    (['a', 'b'], [[1.0, 0.0], [0.0, 1.0]])
    """

    def __init__(
        self,
        arrays: TreeEnsembleArrays,
        *,
        classes: Any = None,
        proba_dtype: Any = None,
        codes: dict[int, CategoryCodes] | None = None,
        steps: ColumnSteps | None = None,
        names: list[str] | None = None,
    ) -> None:
        self.arrays = arrays
        self.width = arrays.n_features
        self.classes: np.ndarray | None = None if classes is None else np.asarray(classes)
        self.codes = codes or {}
        self.steps = steps
        self.names = names
        self._proba_dtype = proba_dtype
        # The compiled walk of the same arrays (numba), set by checked_kernel where it passes.
        self.compiled: CompiledTrees | None = None

    def from_frame(self, frame: pd.DataFrame) -> np.ndarray | None:
        """The array this kernel takes for ``frame`` (the model's columns), or None."""
        if not self.codes:
            return frame_array(frame, float32=True)
        kinds = [dtype.kind for dtype in frame.dtypes]
        # One conversion of the whole frame: selecting columns one by one costs more.
        values = frame.to_numpy(dtype=object)
        columns = []
        for index, kind in enumerate(kinds):
            codes = self.codes.get(index)
            if codes is not None:
                encoded = codes.encode(values[:, index].tolist())
            elif kind in "biuf":
                encoded = values[:, index].astype(np.float64)
            else:
                encoded = None
            if encoded is None:
                return None
            columns.append(encoded)
        return np.column_stack(columns) if columns else None

    def from_array(self, X: np.ndarray) -> np.ndarray | None:
        """The array this kernel takes for a float array of the model's input columns."""
        if not self.codes:
            return X
        names = self.names or [str(i) for i in range(X.shape[1])]
        return self.from_frame(pd.DataFrame(X, columns=names))

    def _prepared(self, X: np.ndarray) -> np.ndarray | None:
        if X.dtype != np.float64 or X.ndim != 2 or X.shape[1] != self.width:
            return None
        if self.steps is not None:
            # scikit-learn's transformers refuse infinities; NaN is theirs to fill or pass on.
            if bool(np.isinf(X).any()):
                return None
            X = self.steps.apply(X)
        return X if self.arrays.accepts(X) else None

    def accepts(self, X: np.ndarray) -> bool:
        return self._prepared(X) is not None

    def answer(self, X: np.ndarray) -> Answers | None:
        """Predictions and probabilities, or None where the library must answer ``X``."""
        prepared = self._prepared(X)
        return None if prepared is None else self._evaluate(prepared)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_with_proba(X)[0]

    def predict_with_proba(self, X: np.ndarray) -> Answers:
        """Predictions (labels for a classifier) and class probabilities (None otherwise)."""
        prepared = self._prepared(X)
        if prepared is None:
            raise ValueError("the kernel does not take this input; ask the library")
        return self._evaluate(prepared)

    def _evaluate(self, X: np.ndarray) -> Answers:
        raw = self.arrays.raw(X) if self.compiled is None else self.compiled.raw(X)
        if self.classes is None:
            return self.arrays.values_of(raw), None
        expf = c_expf() if self.arrays.link in _FLOAT32_LINKS else None
        _, proba, index = self.arrays.answers(raw, expf=expf)
        if proba is None or index is None:
            raise RuntimeError("a classifier's arrays gave no probabilities")
        if self._proba_dtype is not None:
            proba = proba.astype(self._proba_dtype, copy=False)
        return self.classes[index], proba


def checked_kernel(
    kernel: TreeKernel,
    answer: Callable[[Any], Answers],
    *,
    name: str,
    environ: Mapping[str, str] = os.environ,
) -> TreeKernel | None:
    """``kernel`` if it answers the check sample as ``answer`` (the library) does, else None.

    ``answer`` gets the check rows as the library takes them: a DataFrame of the input
    columns (with categories in place of their codes) where the kernel has names. The
    compiled walk (``_compiled_trees.py``; ``MODELPILOT_COMPILED_KERNELS`` in ``environ``)
    is checked first, on the same rows (which compiles it, or loads it from numba's cache);
    where it differs the NumPy walk is checked in its place.
    """
    rows = check_rows(kernel.arrays, np.random.default_rng(0))
    if kernel.steps is not None:
        rows = _undo(kernel.steps, rows)
        if "impute" in kernel.steps.kinds:  # missing values the imputer fills
            holes = rows[: min(len(rows), 512)].copy()
            holes[np.random.default_rng(2).random(holes.shape) < 0.3] = np.nan
            rows = np.concatenate([rows, holes])
    given = _library_rows(kernel, rows)
    try:
        # One thread: a one-off call on a few thousand rows, where OpenMP threads waiting for
        # a busy core cost more than they give.
        with threadpool_limits(limits=1):
            expected = answer(given)
    except Exception as exc:  # the library refuses its own check rows: leave it alone
        logger.info("no tree kernel for %s: the library failed on the check rows (%s)", name, exc)
        return None
    inputs = (
        kernel.from_frame(given) if isinstance(given, pd.DataFrame) else kernel.from_array(given)
    )
    if inputs is None:
        problem: str | None = "the kernel cannot encode its check rows"
    else:
        problem = _compiled_difference(kernel, inputs, expected, name=name, environ=environ)
    if problem is not None:
        logger.info(
            "the tree kernel for %s differs from the library on the check sample (%s); "
            "the library answers every call",
            name,
            problem,
        )
        return None
    return kernel


def _compiled_difference(
    kernel: TreeKernel,
    rows: np.ndarray,
    expected: Answers,
    *,
    name: str,
    environ: Mapping[str, str],
) -> str | None:
    """The check of the compiled walk where there is one, else (or where it differs) of the
    NumPy walk; the kernel keeps the walk that passed."""
    kernel.compiled = compiled_trees(kernel.arrays, environ=environ)
    if kernel.compiled is None:
        return _difference(kernel, rows, expected)
    problem = _difference(kernel, rows, expected)
    if problem is None:
        return None
    logger.info(
        "the compiled tree walk for %s differs from the library on the check sample (%s); "
        "trying the NumPy walk",
        name,
        problem,
    )
    kernel.compiled = None
    return _difference(kernel, rows, expected)


def _undo(steps: ColumnSteps, rows: np.ndarray) -> np.ndarray:
    """Input rows that the steps take (about) to ``rows``: leaves are reached all the same,
    thresholds themselves only where the arithmetic rounds back."""
    inverse = {"subtract": np.add, "add": np.subtract, "divide": np.multiply}
    inverse["multiply"] = np.divide
    for kind, values in zip(reversed(steps.kinds), steps.values[::-1], strict=True):
        if kind in inverse:
            rows = inverse[kind](rows, values)
    return rows


def _library_rows(kernel: TreeKernel, rows: np.ndarray) -> Any:
    if not kernel.codes and kernel.names is None:
        return rows
    if kernel.names is None:  # fitted on an array: categories are numbers
        return _numeric_categories(kernel, rows)
    rng = np.random.default_rng(1)
    names = kernel.names or [str(i) for i in range(rows.shape[1])]
    data: dict[str, Any] = {}
    for index, name in enumerate(names):
        codes = kernel.codes.get(index)
        if codes is None:
            data[name] = rows[:, index]
            continue
        by_code: dict[float, Any] = {float(c): v for v, c in codes.categories.items()}
        if codes.unknown is not None:
            by_code.setdefault(codes.unknown, "<a category never seen>")
        if codes.missing is not None:
            by_code.setdefault(codes.missing, None)
        known = list(by_code)
        values = []
        for code in rows[:, index]:
            if code not in by_code:
                code = known[int(rng.integers(len(known)))]
            values.append(by_code[code])
        data[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data)


def _numeric_categories(kernel: TreeKernel, rows: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(1)
    out = rows.copy()
    for index, codes in kernel.codes.items():
        by_code = {float(c): float(v) for v, c in codes.categories.items()}
        unseen = max(by_code.values(), default=0.0) + 1.0
        for i, code in enumerate(rows[:, index]):
            if code in by_code:
                out[i, index] = by_code[code]
            elif rng.random() < 0.1:
                out[i, index] = np.nan if codes.missing is not None else unseen
            elif rng.random() < 0.1 and codes.unknown is not None:
                out[i, index] = unseen
            else:
                out[i, index] = list(by_code.values())[int(rng.integers(len(by_code)))]
    return out


def _difference(kernel: TreeKernel, rows: np.ndarray, expected: Answers) -> str | None:
    if not kernel.accepts(rows):
        return "the kernel does not take its own check rows"
    batches = [(rows, expected)]
    for i in range(min(8, len(rows))):  # one row at a time: the evaluator's other walk
        batches.append((rows[i : i + 1], _part(expected, slice(i, i + 1))))
    # Without the C library's expf, XGBoost's float32 probabilities are matched to the last
    # unit (see _evaluate_trees.py); the classes must still be the same.
    last_unit = kernel.arrays.link in _FLOAT32_LINKS and c_expf() is None
    for batch, wanted in batches:
        got = kernel.predict_with_proba(batch)
        if not same_answers(_Fixed(wanted), batch, got) and not (
            last_unit and _within_one_unit(got, wanted)
        ):
            return f"first difference on a batch of {len(batch)} rows"
    return None


def _within_one_unit(got: Answers, wanted: Answers) -> bool:
    if got[1] is None or wanted[1] is None or not np.array_equal(got[0], wanted[0]):
        return False
    a, b = np.asarray(got[1], dtype=np.float32), np.asarray(wanted[1], dtype=np.float32)
    steps = np.abs(a.view(np.int32).astype(np.int64) - b.view(np.int32).astype(np.int64))
    return a.shape == b.shape and bool((steps <= 1).all())


def _part(answers: Answers, rows: slice) -> Answers:
    predictions, proba = answers
    return predictions[rows], None if proba is None else proba[rows]


class _Fixed:
    """Known answers behind the estimator interface ``same_answers`` takes."""

    def __init__(self, answers: Answers) -> None:
        self._answers = answers
        if answers[1] is not None:
            self.classes_ = np.arange(answers[1].shape[1])

    def predict(self, X: Any) -> np.ndarray:
        return self._answers[0]

    def predict_proba(self, X: Any) -> np.ndarray | None:
        return self._answers[1]
