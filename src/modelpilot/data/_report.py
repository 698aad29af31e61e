"""The outcome of the data checks, and the wording of their one-sentence summaries."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from modelpilot.spec import CheckName, DataChecks, FeatureSpec, Task

__all__ = ["CheckResult", "DataCheckReport", "Status"]

Status = Literal["pass", "warn", "fail"]


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome.

    ``status`` is "fail" when the check's threshold is exceeded and the check is blocking,
    "warn" when it is exceeded but the check is not blocking, and "pass" otherwise. ``summary``
    is one sentence for a person; ``details`` holds the numbers behind it (JSON types only).

    Examples
    --------
    >>> result = CheckResult("duplicate_rows", "warn", False, "12 rows (0.4%) repeat a row.")
    >>> result.to_dict()["status"], result.blocking
    ('warn', False)
    """

    name: str
    status: Status
    blocking: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "blocking": self.blocking,
            "summary": self.summary,
            "details": self.details,
        }


@dataclass(frozen=True)
class DataCheckReport:
    """Every check of one data set, and the feature schema inferred from it.

    Examples
    --------
    >>> ok = CheckResult("duplicate_rows", "pass", False, "No row repeats an earlier row.")
    >>> bad = CheckResult("schema", "fail", True, "The target column 'y' is missing.")
    >>> report = DataCheckReport("train.csv", "y", "binary", 10, 3, [ok, bad], [])
    >>> report.passed, report.check("schema").summary
    (False, "The target column 'y' is missing.")
    """

    source: str
    target: str
    task: Task
    n_rows: int
    n_columns: int
    checks: list[CheckResult]
    schema: list[FeatureSpec]

    @property
    def passed(self) -> bool:
        """True unless a blocking check failed; warnings are allowed."""
        return not any(check.status == "fail" for check in self.checks)

    def check(self, name: str) -> CheckResult:
        """The result of the check called ``name``."""
        for check in self.checks:
            if check.name == name:
                return check
        ran = ", ".join(check.name for check in self.checks)
        raise KeyError(f"no check named {name!r} in this report; it has {ran}")

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON types."""
        return {
            "passed": self.passed,
            "source": self.source,
            "target": self.target,
            "task": self.task,
            "n_rows": self.n_rows,
            "n_columns": self.n_columns,
            "checks": [check.to_dict() for check in self.checks],
            "schema": [feature.model_dump(mode="json") for feature in self.schema],
        }


def judge(
    name: CheckName, failed: bool, summary: str, *, limits: DataChecks, **details: Any
) -> CheckResult:
    """A check's result: a failure blocks if ``limits.blocking`` names the check, else warns."""
    blocking = name in limits.blocking
    status: Status = "pass" if not failed else "fail" if blocking else "warn"
    return CheckResult(name, status, blocking, summary, details)


def plain(value: Any) -> Any:
    """A JSON-ready version of a value DuckDB returned."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value)


def percent(rate: float) -> str:
    """A share as a short percentage that is never rounded to zero.

    Examples
    --------
    >>> percent(0.004), percent(0.00012), percent(0.05), percent(0.0)
    ('0.4%', '0.012%', '5%', '0%')
    """
    if rate == 0 or rate >= 0.001:
        return f"{rate * 100:.1f}".removesuffix(".0") + "%"
    return f"{rate * 100:.2g}%"


def plural(n: int, word: str) -> str:
    """``n`` and ``word``, in the plural unless ``n`` is 1: '1 row', '1,204 rows'."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def verb(n: int, singular: str, plural_form: str) -> str:
    """The form of a word that agrees with ``n``: verb(1, "has", "have") == "has"."""
    return singular if n == 1 else plural_form


def shorten(items: Sequence[str], limit: int = 5) -> str:
    """The first ``limit`` items, and how many more there are."""
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def over_limit(exceeded: bool, limit: float, *, below: bool = False) -> str:
    """How a summary ends: with the limit it broke, or with a full stop."""
    if not exceeded:
        return "."
    if limit == 0 and not below:
        return "; none are allowed."
    if below:
        return f", below the {percent(limit)} required."
    return f", above the {percent(limit)} allowed."
