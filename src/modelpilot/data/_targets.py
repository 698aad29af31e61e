"""Free-form values checked against the model's task: labels, and a person's decisions.

A label (``POST /v1/feedback``, ``modelpilot feedback``) and a review decision (which becomes
a label) arrive as any JSON value. A value that does not fit the task used to be stored as it
came, and later broke every metric computed over it (a string label among integer classes made
scikit-learn raise on every monitor tick). :class:`TargetValidator` is the one check both go
through: one of the model's classes for a classifier (or, without them, a string, an integer
or a boolean), a finite number for a regressor. It also returns the value in the classes' own
type (``1.0`` for class ``1``), so what is stored compares equal to what the model predicts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from modelpilot.errors import ValidationFailed

__all__ = ["TargetValidator"]

_SHOWN = 20


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _native(value: Any) -> Any:
    item = getattr(value, "item", None)  # NumPy scalars: the Python value
    return item() if callable(item) else value


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class TargetValidator:
    """Checks a value against a model's task (and its classes, when known).

    Examples
    --------
    >>> check = TargetValidator("multiclass", classes=[0, 1, 2])
    >>> check.check(2), check.check(1.0)
    (2, 1)
    >>> check.problem("class_0")
    "one of the model's classes 0, 1, 2; got 'class_0'"
    >>> TargetValidator("regression").problem(float("nan"))
    'a finite number; got nan'
    """

    def __init__(self, task: str | None, classes: Sequence[Any] | None = None) -> None:
        self.task = task
        self.classes = [_native(c) for c in classes] if classes is not None else None

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` (what is expected, what came), or None."""
        return self._fit(value)[1]

    def check(self, value: Any, *, field: str = "label") -> Any:
        """``value`` as stored (in the classes' type), or a 422 naming ``field``."""
        fitted, problem = self._fit(value)
        if problem is not None:
            expected = problem.partition("; got ")[0]
            raise ValidationFailed([{"field": field, "expected": expected, "got": value}])
        return fitted

    def _fit(self, value: Any) -> tuple[Any, str | None]:
        value = _native(value)
        if self.task == "regression":
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            ):
                return value, None
            return None, f"a finite number; got {_describe(value)}"
        if self.classes:
            for known in self.classes:
                if _same(known, value):
                    return known, None
            shown = ", ".join(str(c) for c in self.classes[:_SHOWN])
            more = f" ({len(self.classes)} in all)" if len(self.classes) > _SHOWN else ""
            return None, f"one of the model's classes {shown}{more}; got {_describe(value)}"
        if isinstance(value, str | bool) or _is_integer(value):
            return value, None
        if isinstance(value, float) and value.is_integer():
            return int(value), None
        return None, f"a class label (a string, an integer or true/false); got {_describe(value)}"


def _same(known: Any, value: Any) -> bool:
    """Whether ``value`` names class ``known``: equal, and of a kind that fits (True is not
    class 1, "1" is not class 1)."""
    if isinstance(known, bool) or isinstance(value, bool):
        return isinstance(known, bool) and isinstance(value, bool) and known == value
    if isinstance(known, str) or isinstance(value, str):
        return isinstance(known, str) and isinstance(value, str) and known == value
    if isinstance(known, int | float) and isinstance(value, int | float):
        return bool(known == value)
    return False
