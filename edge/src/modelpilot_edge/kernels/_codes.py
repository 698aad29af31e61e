"""Codes of categories: what a pipeline's encoders make of a text column, for the tree kernels.

NumPy only, like the evaluators: modelpilot's extraction (``runtime/_extract_pipeline.py``)
builds them from fitted OneHotEncoders and OrdinalEncoders, and both the server and the device
runner turn categories into codes with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["CategoryCodes", "is_missing"]


def is_missing(value: Any) -> bool:
    """None, a float NaN, or pandas' NA (recognised by its type's name: no pandas here).

    Examples
    --------
    >>> [is_missing(v) for v in (None, float("nan"), "a", 0.0)]
    [True, True, False, False]
    """
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    return type(value).__name__ == "NAType"


@dataclass(frozen=True)
class CategoryCodes:
    """Codes of one input column's categories: the category's index; ``unknown`` for a value
    the encoder never saw (None: the library answers, and raises its error), ``missing`` for
    None/NaN.

    Examples
    --------
    >>> codes = CategoryCodes({"a": 0, "b": 1}, unknown=2.0, missing=None)
    >>> codes.encode(["b", "zzz", "a"]).tolist()
    [1.0, 2.0, 0.0]
    >>> codes.encode([None]) is None  # no code for a missing value: the library decides
    True
    """

    categories: dict[Any, int]
    unknown: float | None
    missing: float | None

    def encode(self, values: Sequence[Any]) -> np.ndarray | None:
        """The codes of ``values``, or None when one of them has none."""
        codes = np.empty(len(values))
        for i, value in enumerate(values):
            known = self.categories.get(value)
            code = float(known) if known is not None else None
            if code is None:
                code = self.missing if is_missing(value) else self.unknown
                if code is None:
                    return None
            codes[i] = code
        return codes

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (categories as ``[value, code]`` pairs: keys may be numbers)."""
        return {
            "categories": [[value, code] for value, code in self.categories.items()],
            "unknown": self.unknown,
            "missing": self.missing,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoryCodes:
        """Read what :meth:`to_dict` wrote."""
        return cls(
            {value: int(code) for value, code in data["categories"]},
            data["unknown"],
            data["missing"],
        )
