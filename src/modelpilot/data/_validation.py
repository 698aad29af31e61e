"""Schema validation of model inputs: one set of rules for batch scoring and online serving.

Two entry points share the rules of :class:`SchemaValidator`: ``validate_frame`` is vectorised
over a DataFrame (batch scoring), ``validate_records`` checks a few JSON records in plain Python
(online serving, where building a DataFrame just to validate one record would cost more than the
model call). A property test checks that the two agree. The record rules live in the device
runner (``modelpilot_edge.RecordValidator``), so a device running an exported bundle refuses
exactly what the server refuses, with the same problems.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import DataError
from modelpilot.spec import FeatureSpec
from modelpilot_edge import FALSE_WORDS, TRUE_WORDS, RecordValidation, RecordValidator
from modelpilot_edge import expected_text as _expected

__all__ = ["FrameValidation", "RecordValidation", "SchemaValidator"]


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


@dataclass
class FrameValidation:
    """Result of validating a DataFrame: the clean rows, and every problem of the others."""

    valid: np.ndarray
    clean: pd.DataFrame
    problems: list[dict[str, Any]]
    unseen: dict[str, int] = field(default_factory=dict)

    @property
    def n_invalid(self) -> int:
        return int((~self.valid).sum())


class SchemaValidator:
    """Checks inputs against the project file's feature schema.

    Examples
    --------
    >>> from modelpilot.spec import FeatureSpec
    >>> validator = SchemaValidator([
    ...     FeatureSpec(name="size", type="numeric", range=(10, 500)),
    ...     FeatureSpec(name="city", type="categorical", categories=["a", "b"]),
    ... ])
    >>> records = [{"size": 50, "city": "a"}, {"size": "big", "city": "a"}]
    >>> result = validator.validate_records(records)
    >>> result.valid_index, result.problems
    ([0], [{'instance': 1, 'field': 'size', 'expected': 'a number in [10, 500]', 'got': 'big'}])
    >>> validator.numeric_rows(records) is None  # a categorical feature: the full rules
    True
    """

    #: The records as rows in feature order, if all are clean and the schema all numeric; None
    #: means "use :meth:`validate_records`" (``modelpilot_edge.RecordValidator.numeric_rows``).
    numeric_rows: Callable[[Sequence[Any]], list[list[float | int]] | None]

    def __init__(self, features: Sequence[FeatureSpec]) -> None:
        self.features = list(features)
        self.names = tuple(f.name for f in self.features)
        self._categories = {
            f.name: set(f.categories) for f in self.features if f.categories is not None
        }
        records = RecordValidator(self.features)
        self.all_numeric = records.all_numeric
        # The bound method itself: the online fast path pays no call of ours on top of it.
        self.numeric_rows = records.numeric_rows
        self._records = records

    def validate_records(self, records: Sequence[Mapping[str, Any]]) -> RecordValidation:
        """Every record checked with every rule (``modelpilot_edge.RecordValidator``)."""
        return self._records.validate_records(records)

    # ---- frames (batch) ----------------------------------------------------------------
    def missing_columns(self, columns: Sequence[str]) -> list[str]:
        present = set(columns)
        return [f.name for f in self.features if f.name not in present and not f.nullable]

    def validate_frame(self, frame: pd.DataFrame, *, row_offset: int = 0) -> FrameValidation:
        """Vectorised validation; a required column that is absent is a :class:`DataError`."""
        missing = self.missing_columns(list(frame.columns))
        if missing:
            raise DataError(
                f"required column(s) {', '.join(missing)} missing from the input; "
                f"it has {', '.join(map(str, frame.columns)) or 'no columns'}. "
                "Rename the columns or update `features` in modelpilot.yaml"
            )
        n = len(frame)
        valid = np.ones(n, dtype=bool)
        clean: dict[str, Any] = {}
        bad_cells: list[tuple[np.ndarray, str, str, pd.Series]] = []
        unseen: dict[str, int] = {}
        for feature in self.features:
            raw = frame[feature.name] if feature.name in frame else pd.Series([None] * n)
            raw = raw.reset_index(drop=True)
            missing_mask = raw.isna().to_numpy()
            if feature.type == "numeric":
                values, bad = _numeric(raw, missing_mask)
                if feature.range is not None:
                    low, high = feature.range
                    with np.errstate(invalid="ignore"):
                        bad |= ~missing_mask & ~bad & ((values < low) | (values > high))
                clean[feature.name] = values
            elif feature.type == "boolean":
                values_b, bad = _boolean(raw, missing_mask)
                clean[feature.name] = values_b
            else:
                as_text = raw.astype(object)
                if _holds_strings(raw):  # a string column: no value to look at one by one
                    is_str, is_num = ~missing_mask, np.zeros(n, dtype=bool)
                else:
                    is_str = np.array([isinstance(v, str) for v in as_text], dtype=bool)
                    is_num = np.array(
                        [
                            isinstance(v, int | float | np.integer | np.floating)
                            and not isinstance(v, bool | np.bool_)
                            for v in as_text
                        ],
                        dtype=bool,
                    )
                if feature.type == "categorical":
                    bad = ~missing_mask & ~is_str & ~is_num
                    as_text = as_text.where(~is_num, as_text.map(lambda v: str(v)))
                else:
                    bad = ~missing_mask & ~is_str
                clean[feature.name] = as_text.where(~missing_mask, None)
                allowed = self._categories.get(feature.name)
                if allowed is not None:
                    is_unseen = ~missing_mask & ~bad & ~as_text.isin(list(allowed)).to_numpy()
                    if is_unseen.any():
                        unseen[feature.name] = int(is_unseen.sum())
            if not feature.nullable:
                if missing_mask.any():
                    bad_cells.append(
                        (missing_mask, feature.name, "a value (the feature is not nullable)", raw)
                    )
            if bad.any():
                bad_cells.append((bad, feature.name, _expected(feature), raw))
            valid &= ~bad
            if not feature.nullable:
                valid &= ~missing_mask
        problems: list[dict[str, Any]] = []
        for mask, name, expected, raw in bad_cells:
            for index in np.flatnonzero(mask):
                got = raw.iloc[index]
                problems.append(
                    {
                        "row": int(index) + row_offset,
                        "field": name,
                        "expected": expected,
                        "got": None if _is_missing(got) else got,
                    }
                )
        problems.sort(key=lambda p: p["row"])
        clean_frame = (
            pd.DataFrame(clean)[valid].reset_index(drop=True)
            if n
            else pd.DataFrame({name: pd.Series(dtype=object) for name in self.names})
        )
        return FrameValidation(valid, clean_frame, problems, unseen)

    def to_frame(self, columns: Mapping[str, list[Any]]) -> pd.DataFrame:
        """A model-ready DataFrame from ``validate_records`` columns (numeric columns as float)."""
        data: dict[str, Any] = {}
        for feature in self.features:
            values = columns[feature.name]
            if feature.type == "numeric":
                data[feature.name] = np.array(
                    [np.nan if v is None else v for v in values], dtype=np.float64
                )
            else:
                data[feature.name] = pd.Series(values, dtype=object)
        return pd.DataFrame(data)


def _holds_strings(raw: pd.Series) -> bool:
    """A pandas string column (what Arrow's text becomes): its values are str or missing."""
    return isinstance(raw.dtype, pd.StringDtype)


def _numeric(raw: pd.Series, missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if pd.api.types.is_bool_dtype(raw.dtype):
        return np.full(len(raw), np.nan), ~missing
    if pd.api.types.is_numeric_dtype(raw.dtype):
        values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, ~missing & ~np.isfinite(values)
    is_bool = np.array([isinstance(v, bool | np.bool_) for v in raw], dtype=bool)
    values = pd.to_numeric(raw.where(~is_bool, None), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    bad = ~missing & (~np.isfinite(values) | is_bool)
    return values, bad


def _boolean(raw: pd.Series, missing: np.ndarray) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype(object).where(~missing, None), np.zeros(len(raw), dtype=bool)

    def coerce(value: Any) -> Any:
        if isinstance(value, bool | np.bool_):
            return bool(value)
        if isinstance(value, int | float | np.integer | np.floating) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        return None

    values = raw.map(coerce)
    bad = ~missing & values.isna().to_numpy()
    return values.astype(object).where(~missing, None), bad
