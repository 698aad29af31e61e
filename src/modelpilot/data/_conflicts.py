"""Duplicate rows and label conflicts: rows whose feature values are all the same.

Two passes over the data. The first hashes every row's features and keeps the hashes that
repeat: eight bytes per distinct row, in a hash table DuckDB can spill to disk. The second
groups only the rows with such a hash by their actual values and label, so every count is exact
even if two different rows' hashes collide. What follows reads that small table only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelpilot.data._report import CheckResult, judge, over_limit, percent, plain, plural, verb
from modelpilot.data._source import Column, DataSource, quote
from modelpilot.spec import DataChecks, Task

__all__ = ["RowIdentity"]

MAX_EXAMPLES = 5
MAX_LABELS = 10


@dataclass
class RowIdentity:
    """The ``duplicate_rows`` and ``label_consistency`` checks over ``src``."""

    source: DataSource
    features: list[Column]
    target: Column | None
    task: Task
    limits: DataChecks

    def checks(self, n_rows: int) -> list[CheckResult]:
        """Both checks (only the first without a target); ``n_rows`` is the size of ``src``."""
        key = f"hash({', '.join(c.value for c in self.features)})"
        self.source.query(
            f"CREATE OR REPLACE TEMP TABLE __mp_keys AS SELECT {key} AS __mp_key FROM src "
            "GROUP BY __mp_key HAVING COUNT(*) > 1"
        )
        cols = ", ".join(f"{c.value} AS {quote(c.name)}" for c in self.features)
        label = self.target.value if self.target is not None else "NULL"
        self.source.query(
            f"CREATE OR REPLACE TEMP TABLE __mp_pairs AS SELECT {cols}, {label} AS __mp_label, "
            f"COUNT(*) AS __mp_n FROM src WHERE {key} IN (SELECT __mp_key FROM __mp_keys) "
            "GROUP BY ALL"
        )
        checks = [self.duplicate_rows(n_rows)]
        if self.target is not None:
            checks.append(self.label_consistency(n_rows))
        return checks

    @property
    def _columns(self) -> list[str]:
        return [quote(c.name) for c in self.features]

    def _features_of(self, row: Sequence[Any]) -> dict[str, Any]:
        return {c.name: plain(v) for c, v in zip(self.features, row, strict=False)}

    def duplicate_rows(self, n_rows: int) -> CheckResult:
        limit = self.limits.max_duplicate_rate
        count = int(self.source.query("SELECT COALESCE(SUM(__mp_n - 1), 0) FROM __mp_pairs")[0][0])
        rate = count / n_rows
        rows = self.source.query(
            f"SELECT * FROM __mp_pairs WHERE __mp_n > 1 ORDER BY __mp_n DESC, "
            f"{', '.join(self._columns)}, __mp_label LIMIT {MAX_EXAMPLES}"
        )
        examples = [
            {"features": self._features_of(row), "label": plain(row[-2]), "count": int(row[-1])}
            for row in rows
        ]
        summary = "No row repeats an earlier row."
        if count:
            summary = (
                f"{plural(count, 'row')} ({percent(rate)}) {verb(count, 'repeats', 'repeat')} "
                f"an earlier row{over_limit(rate > limit, limit)}"
            )
        return judge(
            "duplicate_rows",
            rate > limit,
            summary,
            limits=self.limits,
            count=count,
            rate=rate,
            max_duplicate_rate=limit,
            examples=examples,
        )

    def label_consistency(self, n_rows: int) -> CheckResult:
        limit = self.limits.max_label_conflict_rate
        tolerance = self.limits.regression_label_tolerance
        cols = ", ".join(self._columns)
        regression = self.task == "regression"
        y = "TRY_CAST(__mp_label AS DOUBLE)" if regression else "__mp_label"
        middle = "MEDIAN(__mp_y)" if regression else "NULL"
        # A pair row stands for __mp_n identical rows; range() repeats it for the median.
        self.source.query(
            f"CREATE OR REPLACE TEMP TABLE __mp_groups AS SELECT {cols}, COUNT(*) AS __mp_rows, "
            f"MIN(__mp_y) AS __mp_low, MAX(__mp_y) AS __mp_high, {middle} AS __mp_mid "
            f"FROM (SELECT {cols}, {y} AS __mp_y FROM __mp_pairs, range(__mp_n) "
            f"WHERE {y} IS NOT NULL) GROUP BY {cols} HAVING COUNT(DISTINCT __mp_y) > 1"
        )
        # (max - min) / |median| above the tolerance, without dividing by a median of zero.
        conflict = f"__mp_high - __mp_low > {tolerance!r} * abs(__mp_mid)" if regression else "TRUE"
        groups, rows = self.source.query(
            f"SELECT COUNT(*), COALESCE(SUM(__mp_rows), 0) FROM __mp_groups WHERE {conflict}"
        )[0]
        groups, rows = int(groups), int(rows)
        rate = rows / n_rows
        if groups:
            summary = (
                f"{plural(groups, 'group')} of identical feature rows "
                f"{verb(groups, 'carries', 'carry')} different labels ({plural(rows, 'row')}, "
                f"{percent(rate)}){over_limit(rate > limit, limit)}"
            )
        else:
            differ = f"differ by more than {percent(tolerance)}" if regression else "differ"
            summary = f"No identical feature rows carry labels that {differ}."
        details: dict[str, Any] = {
            "conflicting_groups": groups,
            "conflicting_rows": rows,
            "rate": rate,
            "max_label_conflict_rate": limit,
        }
        if regression:
            details["regression_label_tolerance"] = tolerance
        details["examples"] = self._conflict_examples(conflict) if groups else []
        return judge("label_consistency", rate > limit, summary, limits=self.limits, **details)

    def _conflict_examples(self, conflict: str) -> list[dict[str, Any]]:
        """The largest conflicting groups, each with its most frequent labels."""
        cols = self._columns
        same = " AND ".join(f"g.{c} IS NOT DISTINCT FROM p.{c}" for c in cols)
        rows = self.source.query(
            f"WITH g AS (SELECT *, row_number() OVER (ORDER BY __mp_rows DESC, {', '.join(cols)})"
            f" AS __mp_rank FROM __mp_groups WHERE {conflict} ORDER BY __mp_rank "
            f"LIMIT {MAX_EXAMPLES}) SELECT g.__mp_rank, {', '.join(f'g.{c}' for c in cols)}, "
            f"g.__mp_rows, p.__mp_label, p.__mp_n FROM g JOIN __mp_pairs p ON {same} "
            "WHERE p.__mp_label IS NOT NULL QUALIFY row_number() OVER (PARTITION BY g.__mp_rank "
            f"ORDER BY p.__mp_n DESC, p.__mp_label) <= {MAX_LABELS} "
            "ORDER BY g.__mp_rank, p.__mp_n DESC, p.__mp_label"
        )
        examples: dict[int, dict[str, Any]] = {}
        for rank, *values, n_rows, label, count in rows:
            example = examples.setdefault(
                rank, {"features": self._features_of(values), "rows": int(n_rows), "labels": []}
            )
            example["labels"].append({"label": plain(label), "count": int(count)})
        return list(examples.values())
