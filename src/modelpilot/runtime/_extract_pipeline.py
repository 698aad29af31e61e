"""The steps of a scikit-learn Pipeline before a tree model, in a form the kernel computes.

Expressed: SimpleImputer, StandardScaler and MinMaxScaler (column-wise arithmetic: a
:class:`ColumnSteps`), and a first ColumnTransformer whose parts are those, ``passthrough``,
``drop``, OrdinalEncoder or OneHotEncoder. Encoders work on the pipeline's input columns: the
runtime turns each category into its code (:class:`CategoryCodes`); an OrdinalEncoder's output
is that code, and a tree split on a one-hot column ``c == k`` becomes a categorical split on
the code (its ``0``/``1`` value compared with the threshold decides which codes go left).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelpilot.runtime._tree_layout import Unsupported
from modelpilot_edge.kernels import CategoryCodes, ColumnSteps, TreeEnsembleArrays, is_missing

__all__ = ["PipelineForm", "pipeline_form"]


# What each transformed column is: ("column", input index) or ("onehot", input index, code,
# number of codes including the unknown one).
Origin = tuple[Any, ...]


@dataclass
class PipelineForm:
    """A pipeline as: codes for categorical inputs, column steps, the final model, and where
    each of the final model's columns comes from."""

    n_inputs: int
    codes: dict[int, CategoryCodes]
    steps: ColumnSteps | None
    final: Any
    origins: list[Origin]

    def remap(self, arrays: TreeEnsembleArrays) -> TreeEnsembleArrays:
        """``arrays`` of the final model, rewritten to read the pipeline's input columns."""
        if arrays.n_features != len(self.origins):
            raise Unsupported("the final model's width differs from the transformed width")
        feature = arrays.feature.copy()
        internal = arrays.left != np.arange(len(feature))
        category_set = arrays.category_set.copy()
        width = arrays.category_bitsets.shape[1]
        n_codes = max((o[3] for o in self.origins if o[0] == "onehot"), default=0)
        width = max(width, n_codes // 32 + 1)
        bitsets = [np.pad(row, (0, width - len(row))) for row in arrays.category_bitsets]
        categorical = np.zeros(self.n_inputs, dtype=bool)
        for i in np.flatnonzero(internal):
            origin = self.origins[int(feature[i])]
            feature[i] = origin[1]
            if origin[0] == "column":
                categorical[origin[1]] |= bool(category_set[i] >= 0)
                continue
            if category_set[i] >= 0:
                raise Unsupported("a categorical split on a one-hot column")
            _, column, code, count = origin
            value = np.zeros(count)
            value[code] = 1.0
            left = value <= arrays.threshold[i]  # 0/1 compared as the tree compares them
            row = np.zeros(width, dtype=np.uint32)
            for c in np.flatnonzero(left):
                row[c >> 5] |= np.uint32(1 << (int(c) & 31))
            category_set[i] = len(bitsets)
            bitsets.append(row)
            categorical[column] = True
        return dataclasses.replace(
            arrays,
            n_features=self.n_inputs,
            feature=feature,
            category_set=category_set,
            category_bitsets=np.array(bitsets, dtype=np.uint32).reshape(-1, width),
            categorical_features=categorical,
        )


def pipeline_form(estimator: Any) -> PipelineForm:
    """The :class:`PipelineForm` of ``estimator`` (a plain model is a pipeline of one step)."""
    steps = [s for _, s in getattr(estimator, "steps", [(None, estimator)])]
    final, before = steps[-1], [s for s in steps[:-1] if s is not None and s != "passthrough"]
    n_inputs = int(getattr(estimator, "n_features_in_", 0) or final.n_features_in_)
    inner = getattr(final, "_preprocessor", None)  # HistGradientBoosting's own OrdinalEncoder
    if inner is not None:
        if before:
            raise Unsupported("steps before a HistGradientBoosting with categorical features")
        before = [inner]
    codes: dict[int, CategoryCodes] = {}
    if before and type(before[0]).__name__ == "ColumnTransformer":
        origins, chains = _column_transformer(before[0], n_inputs, codes)
        before = before[1:]
    else:
        origins = [("column", c) for c in range(n_inputs)]
        chains = {c: [] for c in range(n_inputs)}
    for step in before:  # column-wise steps after the transformer, on its output columns
        if any(o[0] != "column" for o in origins) or len(set(o[1] for o in origins)) != len(
            origins
        ):
            raise Unsupported(f"{type(step).__name__} after a ColumnTransformer that encodes")
        for (_, column), step_part in zip(origins, _column_steps(step, len(origins)), strict=True):
            chains[column].extend(step_part)
    return PipelineForm(n_inputs, codes, _merge(chains, n_inputs), final, origins)


def _column_transformer(
    transformer: Any, n_inputs: int, codes: dict[int, CategoryCodes]
) -> tuple[list[Origin], dict[int, list[tuple[str, float]]]]:
    names = list(getattr(transformer, "feature_names_in_", []))
    chains: dict[int, list[tuple[str, float]]] = {c: [] for c in range(n_inputs)}
    origins: list[Origin] = []
    used: set[int] = set()
    for name, part, columns in transformer.transformers_:
        if part == "drop" or len(_indices(columns, names, n_inputs)) == 0:
            continue
        indices = _indices(columns, names, n_inputs)
        if set(indices) & used:
            raise Unsupported("an input column used by two transformers")
        used |= set(indices)
        kind = type(part).__name__ if part != "passthrough" else "passthrough"
        if kind == "OneHotEncoder":
            origins.extend(_one_hot(part, indices, codes))
        elif kind == "OrdinalEncoder":
            origins.extend(_ordinal(part, indices, codes))
        else:
            for index, step_part in zip(indices, _column_steps(part, len(indices)), strict=True):
                chains[index].extend(step_part)
                origins.append(("column", index))
        if transformer.output_indices_[name].stop != len(origins):
            raise Unsupported(f"the columns of the transformer {name!r} are not where expected")
    return origins, chains


def _indices(columns: Any, names: list[str], n_inputs: int) -> list[int]:
    if isinstance(columns, slice):
        return list(range(n_inputs))[columns]
    items = list(np.atleast_1d(columns))
    if items and isinstance(items[0], str):
        return [names.index(c) for c in items]
    if items and isinstance(items[0], (bool, np.bool_)):
        return [i for i, keep in enumerate(items) if keep]
    return [int(c) for c in items]


def _one_hot(part: Any, indices: list[int], codes: dict[int, CategoryCodes]) -> list[Origin]:
    if part.drop_idx_ is not None or getattr(part, "_infrequent_enabled", False):
        raise Unsupported("OneHotEncoder with drop or infrequent categories")
    origins: list[Origin] = []
    for index, categories in zip(indices, part.categories_, strict=True):
        count = len(categories) + 1  # the last code: a category the encoder never saw
        unknown = float(count - 1) if part.handle_unknown != "error" else None
        codes[index] = _codes(categories, unknown=unknown, missing=None)
        origins.extend(("onehot", index, k, count) for k in range(len(categories)))
    return origins


def _ordinal(part: Any, indices: list[int], codes: dict[int, CategoryCodes]) -> list[Origin]:
    unknown = float(part.unknown_value) if part.handle_unknown == "use_encoded_value" else None
    if getattr(part, "_infrequent_enabled", False):
        raise Unsupported("OrdinalEncoder with infrequent categories")
    for index, categories in zip(indices, part.categories_, strict=True):
        codes[index] = _codes(
            categories, unknown=unknown, missing=float(part.encoded_missing_value)
        )
    return [("column", index) for index in indices]


def _codes(
    categories: np.ndarray, *, unknown: float | None, missing: float | None
) -> CategoryCodes:
    """Codes for ``categories``. A missing value the encoder saw in training gets ``missing``
    (or, if that is None, its own index, as one-hot does); one it never saw is unknown."""
    mapping: dict[Any, int] = {}
    nan_code: float | None = unknown
    for code, category in enumerate(categories.tolist()):
        if is_missing(category):
            nan_code = float(code) if missing is None else missing
        else:
            mapping[category] = code
    return CategoryCodes(mapping, unknown, nan_code)


def _column_steps(step: Any, width: int) -> list[list[tuple[str, float]]]:
    """Per column, the arithmetic of ``step``: a list of (kind, value)."""
    kind = type(step).__name__ if step != "passthrough" else "passthrough"
    if kind == "FunctionTransformer" and _is_identity(step.func):
        kind = "passthrough"
    if kind == "Pipeline":
        per_column: list[list[tuple[str, float]]] = [[] for _ in range(width)]
        for _, inner in step.steps:
            if inner is None or inner == "passthrough":
                continue
            for column, part in enumerate(_column_steps(inner, width)):
                per_column[column].extend(part)
        return per_column
    if not (kind == "passthrough" or type(step).__module__.startswith("sklearn.")):
        raise Unsupported(f"the step {kind}")
    if kind == "passthrough":
        return [[] for _ in range(width)]
    if kind == "StandardScaler":
        mean = step.mean_ if step.with_mean else np.zeros(width)
        scale = step.scale_ if step.with_std else np.ones(width)
        return [[("subtract", m), ("divide", s)] for m, s in zip(mean, scale, strict=True)]
    if kind == "MinMaxScaler" and not step.clip:
        return [[("multiply", s), ("add", m)] for s, m in zip(step.scale_, step.min_, strict=True)]
    if kind == "SimpleImputer":
        statistics = np.asarray(step.statistics_, dtype=np.float64)
        missing = step.missing_values
        nan_marker = isinstance(missing, float) and missing != missing
        if step.add_indicator or not nan_marker or np.isnan(statistics).any():
            raise Unsupported(
                "SimpleImputer with indicators, a marker other than NaN or empty columns"
            )
        return [[("impute", v)] for v in statistics]
    raise Unsupported(f"the step {kind}")


def _is_identity(func: Any) -> bool:
    """A fitted "passthrough" (func None), or HistGradientBoosting's float64 ``check_array``."""
    if func is None:
        return True
    inner = getattr(func, "func", None)  # functools.partial
    return getattr(inner, "__name__", "") == "check_array" and getattr(
        inner, "__module__", ""
    ).startswith("sklearn.")


_NEUTRAL = {"impute": np.nan, "subtract": 0.0, "divide": 1.0, "multiply": 1.0, "add": 0.0}


def _merge(chains: dict[int, list[tuple[str, float]]], n_inputs: int) -> ColumnSteps | None:
    """One :class:`ColumnSteps` for per-column chains (columns with the same kinds share)."""
    groups: dict[tuple[str, ...], list[int]] = {}
    for column, chain in chains.items():
        if chain:
            groups.setdefault(tuple(kind for kind, _ in chain), []).append(column)
    kinds: list[str] = []
    rows: list[np.ndarray] = []
    for sequence, columns in groups.items():
        for position, kind in enumerate(sequence):
            row = np.full(n_inputs, _NEUTRAL[kind])
            for column in columns:
                row[column] = chains[column][position][1]
            kinds.append(kind)
            rows.append(row)
    if not kinds:
        return None
    return ColumnSteps(tuple(kinds), np.array(rows))
