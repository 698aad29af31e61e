"""A whole reference prepared once: one :class:`ReferenceColumn` per feature.

Preparing is where the time goes (sorting a million values per numeric feature), so a
:class:`DriftReference` can be built once, from training data or from a registered version's
profile, and handed to :func:`modelpilot.drift.compare` for every new window of data.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

import pandas as pd

from modelpilot.drift._columns import ReferenceColumn
from modelpilot.drift._values import Kind, infer_kind
from modelpilot.errors import DataError, ModelpilotError
from modelpilot.spec import FeatureSpec

__all__ = ["DriftReference", "FeatureList"]

FeatureList = Sequence[str | FeatureSpec]
T = TypeVar("T")
R = TypeVar("R")

_KINDS: dict[str, Kind] = {
    "numeric": "numeric",
    "categorical": "categorical",
    "boolean": "categorical",
}


#: Below this many values in all, threads cost more than they save.
PARALLEL_MIN_VALUES = 2_000_000


def parallel_map(
    function: Callable[[T], R], items: Iterable[T], n_jobs: int | None, *, n_values: int
) -> list[R]:
    """``map`` on a few threads: numpy releases the GIL while it sorts and searches."""
    work = list(items)
    workers = _workers(n_jobs, len(work))
    if n_jobs is None and n_values < PARALLEL_MIN_VALUES:
        workers = 1
    if workers <= 1:
        return [function(item) for item in work]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, work))


def _workers(n_jobs: int | None, n_items: int) -> int:
    if n_jobs is None:
        n_jobs = min(4, os.cpu_count() or 1)
    if n_jobs < 1:
        raise ModelpilotError(f"n_jobs must be a positive number of threads or None; got {n_jobs}")
    return max(1, min(n_jobs, n_items))


def _declared_kind(feature: FeatureSpec) -> Kind:
    if feature.type not in _KINDS:
        raise DataError(
            f"feature {feature.name!r} is of type {feature.type}; drift is measured on "
            "numeric, categorical and boolean features only, so leave it out"
        )
    return _KINDS[feature.type]


def _missing(what: str, name: str, available: Iterable[str]) -> DataError:
    names = sorted(map(str, available))
    shown = ", ".join(names[:20]) + (f" (and {len(names) - 20} more)" if len(names) > 20 else "")
    return DataError(f"feature {name!r} is not in the {what}; it has {shown or 'no columns'}")


class DriftReference:
    """Reference columns prepared once, from data or from a profile.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> frame = pd.DataFrame({"x": np.arange(10.0), "c": list("ab") * 5})
    >>> reference = DriftReference.from_frame(frame)
    >>> reference.kinds, reference.source
    ({'x': 'numeric', 'c': 'categorical'}, 'data')
    """

    def __init__(
        self,
        columns: Mapping[str, ReferenceColumn],
        *,
        source: Literal["data", "profile"],
        frame: pd.DataFrame | None = None,
    ) -> None:
        self.columns = dict(columns)
        self.source: Literal["data", "profile"] = source
        self.frame = frame

    @property
    def kinds(self) -> dict[str, Kind]:
        return {name: column.kind for name, column in self.columns.items()}

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, *, features: FeatureList | None = None, n_jobs: int | None = None
    ) -> DriftReference:
        """Prepare raw reference data (sorted per numeric feature, counted per categorical)."""
        if not isinstance(frame, pd.DataFrame):
            raise DataError(
                f"the reference must be a pandas DataFrame, a profile dict or a "
                f"DriftReference; got {type(frame).__name__}"
            )
        if features is None:
            # Timestamps are neither a distribution to compare nor categories: leave them out.
            wanted: dict[str, Kind] = {
                str(c): infer_kind(frame[c])
                for c in frame.columns
                if not pd.api.types.is_datetime64_any_dtype(frame[c])
                and not pd.api.types.is_timedelta64_dtype(frame[c])
            }
        else:
            wanted = {}
            for feature in features:
                name = feature.name if isinstance(feature, FeatureSpec) else str(feature)
                if name not in frame.columns:
                    raise _missing("reference data", name, frame.columns)
                wanted[name] = (
                    _declared_kind(feature)
                    if isinstance(feature, FeatureSpec)
                    else infer_kind(frame[name])
                )
        if not wanted:
            raise DataError("the reference data has no columns to compare")

        def prepare(item: tuple[str, Kind]) -> ReferenceColumn:
            name, kind = item
            return ReferenceColumn.from_values(frame[name], name=name, kind=kind)

        columns = parallel_map(prepare, wanted.items(), n_jobs, n_values=frame.size)
        return cls({c.name: c for c in columns}, source="data", frame=frame)

    @classmethod
    def from_profile(
        cls, profile: Mapping[str, Any], *, features: FeatureList | None = None
    ) -> DriftReference:
        """Prepare a reference profile (the format of ``modelpilot.data.build_profile``)."""
        entries = profile.get("features") if isinstance(profile, Mapping) else None
        if not isinstance(entries, Mapping):
            raise DataError(
                "the reference profile has no 'features' mapping; build it with "
                "modelpilot.data.build_profile (or register the model with --data)"
            )
        if features is None:
            names = [n for n, e in entries.items() if e.get("type") in _KINDS]
        else:
            names = []
            for feature in features:
                name = feature.name if isinstance(feature, FeatureSpec) else str(feature)
                if name not in entries:
                    raise _missing("reference profile", name, entries)
                if isinstance(feature, FeatureSpec):
                    declared, profiled = _declared_kind(feature), entries[name].get("type")
                    if _KINDS.get(str(profiled)) != declared:
                        raise DataError(
                            f"feature {name!r} is declared {feature.type} but the profile has it "
                            f"as {profiled}; rebuild the profile with the current schema"
                        )
                names.append(name)
        if not names:
            raise DataError(
                "the reference profile has no numeric, categorical or boolean features to compare"
            )
        columns = {n: ReferenceColumn.from_profile(entries[n], name=n) for n in names}
        return cls(columns, source="profile")

    def __repr__(self) -> str:
        return f"DriftReference({len(self.columns)} features, source={self.source!r})"
