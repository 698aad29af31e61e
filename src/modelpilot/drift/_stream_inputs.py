"""The inputs of the out-of-core drift engine: feature kinds from an Arrow schema, and a
reference already in memory turned into the summaries pass 1 would have produced."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from modelpilot.drift._reference import DriftReference, FeatureList
from modelpilot.drift._scan import CategorySummary, NumericSummary
from modelpilot.drift._values import Kind
from modelpilot.errors import DataError
from modelpilot.spec import FeatureSpec

__all__ = [
    "Summary",
    "arrow_kinds",
    "in_memory_reference",
    "require_columns",
    "summaries_in_memory",
]

Summary = NumericSummary | CategorySummary


def _arrow_kind(name: str, dtype: pa.DataType) -> Kind | None:
    if pa.types.is_boolean(dtype) or pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "categorical"
    if pa.types.is_dictionary(dtype):
        return "categorical"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    return None  # timestamps, lists, ...: not a distribution to compare


def require_columns(schema: pa.Schema, names: list[str], where: str) -> None:
    """A precise error when a compared feature is not in one side's data."""
    for name in names:
        if name not in schema.names:
            raise DataError(
                f"feature {name!r} is not in the {where}; it has {', '.join(schema.names)}"
            )


def arrow_kinds(schema: pa.Schema, features: FeatureList | None) -> dict[str, Kind]:
    """Numeric or categorical per compared column of the reference data (all comparable
    columns unless ``features`` are named; declared types win over Arrow's)."""
    if features is None:
        found = {f.name: _arrow_kind(f.name, f.type) for f in schema}
        return {n: k for n, k in found.items() if k is not None}
    kinds: dict[str, Kind] = {}
    require_columns(schema, [str(getattr(f, "name", f)) for f in features], "reference data")
    for feature in features:
        name = feature.name if isinstance(feature, FeatureSpec) else str(feature)
        if isinstance(feature, FeatureSpec):
            kinds[name] = "numeric" if feature.type == "numeric" else "categorical"
        else:
            kind = _arrow_kind(name, schema.field(name).type)
            if kind is None:
                raise DataError(f"feature {name!r} is {schema.field(name).type}, not comparable")
            kinds[name] = kind
    return kinds


def summaries_in_memory(ref: DriftReference, sample_size: int) -> dict[str, Summary]:
    """The pass-1 summaries of a reference already in memory (no pass over it needed)."""
    out: dict[str, Summary] = {}
    for name, column in ref.columns.items():
        if column.kind == "categorical":
            counts = dict(zip(column.categories, column.counts.tolist(), strict=True))
            out[name] = CategorySummary(n_missing=column.n_missing, counts=counts)
            continue
        values = column.values
        picks = np.linspace(0, values.size - 1, min(sample_size, values.size)).astype(int)
        distinct = column.distinct
        out[name] = NumericSummary(
            n=column.n,
            n_missing=column.n_missing,
            low=float(values[0]) if values.size else 0.0,
            high=float(values[-1]) if values.size else 0.0,
            mean=float(values.mean()) if values.size else 0.0,
            m2=column.std**2 * column.n,
            distinct=(
                None
                if distinct is None
                else dict(zip(distinct[0].tolist(), distinct[1].tolist(), strict=True))
            ),
            sample=values[picks],
            values=values,
        )
    return out


def in_memory_reference(
    reference: pd.DataFrame | Mapping[str, Any] | DriftReference, features: FeatureList | None
) -> DriftReference:
    """The reference prepared as :func:`compare` prepares it."""
    if isinstance(reference, DriftReference):
        if features is None:
            return reference
        missing = [f for f in features if str(getattr(f, "name", f)) not in reference.columns]
        if missing:
            raise DataError(f"feature {missing[0]!r} is not in the prepared reference")
        names = [str(getattr(f, "name", f)) for f in features]
        return DriftReference({n: reference.columns[n] for n in names}, source=reference.source)
    if isinstance(reference, pd.DataFrame):
        return DriftReference.from_frame(reference, features=features)
    if isinstance(reference, Mapping):
        return DriftReference.from_profile(reference, features=features)
    raise DataError(
        "the reference must be a path, a BatchSource, a DataFrame, a profile or a "
        f"DriftReference; got {type(reference).__name__}"
    )
