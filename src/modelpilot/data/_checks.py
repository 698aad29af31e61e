"""Checks that training data is fit to learn from, before any model sees it.

Eight checks, each a :class:`CheckResult` with a sentence a person understands: ``schema``,
``missing_values``, ``constant_columns``, ``duplicate_rows``, ``label_consistency``,
``class_balance`` (classification only), ``out_of_range`` and ``unseen_categories``.

DuckDB reads the data in at most four passes, all aggregates: column statistics (with the
declared types, ranges and categories), the distinct values of string columns and of the target,
and the two passes of :mod:`modelpilot.data._conflicts` for duplicates and label conflicts.
Nothing holds the data itself in memory, so a file larger than memory is fine.

Why one module of ~480 lines: the eight checks are methods of one run (``_Run``) over the
statistics of one scan, and each is a dozen lines of judgement on them; the data source
(``_source.py``), the scan itself (``_schema.py``), duplicates and conflicts
(``_conflicts.py``) and the report's wording (``_report.py``) live apart.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

import pandas as pd

from modelpilot.data._conflicts import RowIdentity
from modelpilot.data._report import (
    CheckResult,
    DataCheckReport,
    judge,
    over_limit,
    percent,
    plain,
    plural,
    shorten,
    verb,
)
from modelpilot.data._schema import (
    ColumnStats,
    complete_categories,
    feature_from_stats,
    require_column,
    scan_stats,
)
from modelpilot.data._source import Column, DataSource, literal
from modelpilot.errors import DataError
from modelpilot.spec import CheckName, DataChecks, FeatureSpec, Task

__all__ = ["CHECK_NAMES", "check_data"]

#: Every check, in the order of a report (the order the project file's type lists them in).
CHECK_NAMES: tuple[CheckName, ...] = get_args(CheckName)
#: Without a task, a numeric target with more distinct values than this is a regression target.
MAX_CLASSES_GUESS = 20
#: More distinct labels than this is not a classification target; classes are not counted.
MAX_CLASSES = 1000
MAX_EXAMPLES = 5
MAX_VALUE_EXAMPLES = 10
_TRUE_FALSE = ("true", "1", "yes", "y", "t", "false", "0", "no", "n", "f")


def check_data(
    data: pd.DataFrame | str | os.PathLike[str],
    *,
    target: str,
    task: Task | None = None,
    features: Sequence[FeatureSpec] | None = None,
    thresholds: DataChecks | None = None,
) -> DataCheckReport:
    """Check that ``data`` (a DataFrame, or a CSV or Parquet path) is fit to train on.

    Parameters
    ----------
    data
        The training data, with the ``target`` column.
    target
        The label column. Without declared ``features`` it must be in the data (else a
        :class:`~modelpilot.errors.DataError`); with them, its absence fails the schema check.
    task
        regression, binary or multiclass. When None, a numeric target with more than 20
        distinct values means regression, else binary (at most two values) or multiclass.
    features
        The declared schema. None (or empty) checks every other column against the schema
        inferred from the data. Rows are duplicates, or conflict, when all their feature values
        are the same.
    thresholds
        Limits, and which failed checks block; the defaults of :class:`DataChecks` when None.

    Examples
    --------
    >>> from modelpilot.datasets import house_prices
    >>> data = house_prices(500, seed=0, conflicting_duplicates=3)
    >>> report = check_data(data, target="price")
    >>> report.passed, report.task, report.check("label_consistency").status
    (False, 'regression', 'fail')
    >>> print(report.check("label_consistency").summary)
    3 groups of identical feature rows carry different labels (6 rows, 1.2%); none are allowed.
    """
    if task is not None and task not in get_args(Task):
        raise DataError(f"task must be regression, binary or multiclass; got {task!r}")
    declared = [f for f in features or [] if f.name != target] or None
    text_columns = [f.name for f in declared or [] if f.type in {"categorical", "text"}]
    with DataSource(data, text_columns=text_columns) as source:
        if declared is None:
            require_column(source, target, role="target")
        run = _Run(target, task, declared, thresholds or DataChecks())
        return source.run(run.report)


@dataclass
class _Run:
    """The checks over one :class:`DataSource`; :meth:`report` may run twice (see there)."""

    target: str
    given_task: Task | None
    declared: list[FeatureSpec] | None
    limits: DataChecks
    source: DataSource = field(init=False)
    target_column: Column | None = field(init=False)
    spec: dict[str, FeatureSpec] = field(init=False)  # the checked features, by name
    features: list[Column] = field(init=False)
    n_rows: int = field(init=False)
    stats: dict[str, ColumnStats] = field(init=False)
    found: dict[str, Any] = field(init=False)  # the declared-schema aggregates, by purpose
    classes: dict[Any, int] | None = field(init=False)
    n_labels: int = field(init=False)
    task: Task = field(init=False)

    def result(self, name: CheckName, failed: bool, summary: str, **details: Any) -> CheckResult:
        return judge(name, failed, summary, limits=self.limits, **details)

    def report(self, source: DataSource) -> DataCheckReport:
        self.source = source
        self.target_column = source.column(self.target) if self.target in source.names else None
        self.spec = {f.name: f for f in self.declared or [] if f.name in source.names}
        extra = self._declared_aggregates()
        self.n_rows, stats, values = scan_stats(
            source, source.columns, count_distinct=[self.target], extra=list(extra.values())
        )
        if self.n_rows == 0:
            raise DataError(
                f"{source.label} has no rows; there is nothing to check or train on. "
                "Is it the right file?"
            )
        self.found = dict(zip(extra, values, strict=True))
        target_stats = stats.get(self.target)
        self.n_labels = (target_stats.n_distinct or 0) if target_stats else 0
        count_classes = (
            self.target_column is not None
            and self.given_task != "regression"
            and self.n_labels <= MAX_CLASSES
        )
        histogram = [f"histogram({self.target_column.value})"] if self.target_column else []
        self.stats, more = complete_categories(
            source, stats, extra=histogram if count_classes else []
        )
        self.classes = None
        if count_classes:
            self.classes = {plain(k): int(v) for k, v in (more[0] or {}).items()}
            self.n_labels = len(self.classes)  # exact, where the first pass estimated
        self.task = self.given_task or self._guess_task()
        schema = [feature_from_stats(s) for n, s in self.stats.items() if n != self.target]
        if self.declared is None:
            self.spec = {f.name: f for f in schema}
        self.features = [source.column(name) for name in self.spec]
        checks = [self.schema(), self.missing_values(), self.constant_columns()]
        if self.features:
            rows = RowIdentity(source, self.features, self.target_column, self.task, self.limits)
            checks += rows.checks(self.n_rows)
        else:
            nothing = "There are no feature columns to compare rows by."
            checks.append(judge("duplicate_rows", False, nothing, limits=self.limits))
            if self.target_column is not None:
                checks.append(judge("label_consistency", False, nothing, limits=self.limits))
        if self.task != "regression" and self.target_column is not None:
            checks.append(self.class_balance())
        elif self.target_column is not None and self.n_labels == 2:
            checks.append(self.binary_under_regression())
        checks += [self.out_of_range(), self.unseen_categories()]
        return DataCheckReport(
            source.label, self.target, self.task, self.n_rows, len(source.names), checks, schema
        )

    def _declared_aggregates(self) -> dict[str, str]:
        """First-pass aggregates for declared types, ranges and categories, by purpose."""
        out: dict[str, str] = {}
        for name, feature in self.spec.items():
            column = self.source.column(name)
            misfit = _misfit(column, feature.type)
            if misfit is not None:
                out[f"misfit:{name}"] = f"count_if({misfit})"
                if column.kind != "numeric":  # a number that misfits is infinite: no examples
                    examples = f"CASE WHEN {misfit} THEN {column.text} END"
                    out[f"misfit_examples:{name}"] = f"approx_top_k({examples}, {MAX_EXAMPLES})"
            if feature.range is not None:
                number, (low, high) = column.number, feature.range
                out[f"outside:{name}"] = f"count_if({number} < {low!r} OR {number} > {high!r})"
                if column.kind != "numeric":  # else the column statistics have them
                    out[f"min:{name}"], out[f"max:{name}"] = f"MIN({number})", f"MAX({number})"
            if feature.categories is not None:
                known = ", ".join(literal(c) for c in feature.categories)
                unseen = f"{column.text} NOT IN ({known})" if known else "TRUE"
                unseen = f"{column.value} IS NOT NULL AND {unseen}"
                out[f"unseen:{name}"] = f"count_if({unseen})"
                examples = f"CASE WHEN {unseen} THEN {column.text} END"
                out[f"unseen_examples:{name}"] = f"approx_top_k({examples}, {MAX_VALUE_EXAMPLES})"
        if self.target_column is not None and self.given_task in {None, "regression"}:
            misfit = _misfit(self.target_column, "numeric")
            if misfit is not None:
                out["target_misfit"] = f"count_if({misfit})"
        return out

    def _guess_task(self) -> Task:
        if self.target_column is None:
            return "regression"
        if self.target_column.kind == "numeric" and self.n_labels > MAX_CLASSES_GUESS:
            return "regression"
        return "binary" if self.n_labels <= 2 else "multiclass"

    # ---- checks from the column statistics -----------------------------------------------
    def schema(self) -> CheckResult:
        problems: list[str] = []
        details: dict[str, Any] = {"target_missing": self.target_column is None}
        if self.declared is None:
            kinds = [f.type for f in self.spec.values()]
            counts = ", ".join(f"{kinds.count(k)} {k}" for k in dict.fromkeys(kinds))
            summary = f"No schema declared; inferred {plural(len(kinds), 'feature')}"
            summary += f": {counts}." if kinds else "."
        else:
            missing = [f.name for f in self.declared if f.name not in self.spec]
            extra = [n for n in self.source.names if n not in self.spec and n != self.target]
            details.update(missing_features=missing, extra_columns=extra)
            if missing:
                problems.append(
                    f"{plural(len(missing), 'declared feature')} "
                    f"{verb(len(missing), 'is', 'are')} missing from the data: {shorten(missing)}"
                )
            summary = (
                f"All {plural(len(self.declared), 'declared feature')} are present and their "
                "values fit the declared types."
            )
        details["type_mismatches"] = {}
        for name, feature in self.spec.items():
            bad = int(self.found.get(f"misfit:{name}", 0))
            if bad:
                examples = plain(self.found.get(f"misfit_examples:{name}") or [])
                details["type_mismatches"][name] = {
                    "expected": feature.type,
                    "count": bad,
                    "examples": examples,
                }
                shown = f" (e.g. {', '.join(map(repr, examples[:3]))})" if examples else ""
                problems.append(
                    f"Column {name} has {plural(bad, 'value')} that {verb(bad, 'is', 'are')} not "
                    f"{_expected(feature.type, bad)}{shown}"
                )
        if self.target_column is None:
            problems.append(
                f"The target column {self.target!r} is missing, so no label was checked"
            )
        else:
            problems += self._target_problems(details)
        if problems:
            return self.result("schema", True, ". ".join(problems) + ".", **details)
        return self.result("schema", False, summary, **details)

    def _target_problems(self, details: dict[str, Any]) -> list[str]:
        if self.task == "regression":
            bad = int(self.found.get("target_misfit", 0))
            details["target_not_numeric"] = bad
            if bad:
                return [f"The target {self.target} has {plural(bad, 'value')} that are not numbers"]
            return []
        details["target_distinct_values"] = self.n_labels
        allowed = 2 if self.task == "binary" else MAX_CLASSES
        if self.n_labels > allowed:
            return [
                f"The target {self.target} has {self.n_labels:,} distinct values, but a "
                f"{self.task} task allows at most {allowed:,} classes; is the task right?"
            ]
        return []

    def binary_under_regression(self) -> CheckResult:
        """A warning, never blocking: two label values under ``task: regression`` usually
        mean a classification (metrics such as MAE on 0/1 labels say little)."""
        return CheckResult(
            "class_balance",
            "warn",
            False,
            f"The target {self.target} has only 2 distinct values, but the task is regression; "
            "if it is a yes/no label, set `task: binary` in modelpilot.yaml (or pass --task "
            "binary).",
            {"target_distinct_values": self.n_labels, "task": self.task},
        )

    def checked(self) -> list[ColumnStats]:
        """The statistics of the features and the target, in file order."""
        keep = {*self.spec, self.target}
        return [stats for name, stats in self.stats.items() if name in keep]

    def missing_values(self) -> CheckResult:
        limit = self.limits.max_missing_rate
        columns: dict[str, dict[str, Any]] = {}
        over = []
        for stats in self.checked():
            if stats.n_missing:
                name, rate = stats.column.name, stats.n_missing / self.n_rows
                # Nullable only if declared so: an inferred schema calls every gap nullable.
                nullable = (
                    self.declared is not None and name in self.spec and self.spec[name].nullable
                )
                columns[name] = {"missing": stats.n_missing, "rate": rate, "nullable": nullable}
                if rate > limit and not nullable:
                    over.append(name)

        def listing(names: Sequence[str]) -> str:
            ranked = sorted(names, key=lambda n: -columns[n]["rate"])
            nullable = {n: " (nullable)" if columns[n]["nullable"] else "" for n in ranked}
            return shorten([f"{n} {percent(columns[n]['rate'])}{nullable[n]}" for n in ranked])

        if over:
            summary = (
                f"{plural(len(over), 'column')} {verb(len(over), 'misses', 'miss')} more than "
                f"the {percent(limit)} of values allowed: {listing(over)}."
            )
        elif columns:
            summary = (
                f"{plural(len(columns), 'column')} {verb(len(columns), 'has', 'have')} missing "
                f"values, within limits: {listing(list(columns))}."
            )
        else:
            summary = "No values are missing."
        return self.result(
            "missing_values",
            bool(over),
            summary,
            columns=columns,
            over_limit=over,
            max_missing_rate=limit,
        )

    def constant_columns(self) -> CheckResult:
        constant = {s.column.name: plain(s.low) for s in self.checked() if s.is_constant}
        if not constant:
            return self.result("constant_columns", False, "No column holds a single value.")
        shown = [f"{n} (all missing)" if v is None else f"{n} = {v}" for n, v in constant.items()]
        summary = (
            f"{plural(len(constant), 'column')} {verb(len(constant), 'holds', 'hold')} a single "
            f"value, which teaches a model nothing: {shorten(shown)}."
        )
        return self.result("constant_columns", True, summary, columns=constant)

    # ---- checks of the target and of declared ranges and categories -------------------------
    def class_balance(self) -> CheckResult:
        limit = self.limits.min_minority_share
        if self.classes is None:
            summary = (
                f"The target {self.target} has about {self.n_labels:,} distinct values, too many "
                f"to count as classes (at most {MAX_CLASSES:,}); is the task {self.task} right?"
            )
            return self.result("class_balance", True, summary, n_classes=self.n_labels)
        classes = dict(sorted(self.classes.items(), key=lambda kv: (-kv[1], str(kv[0]))))
        labelled = sum(classes.values())
        smallest = min(classes.values()) if len(classes) >= 2 else 0
        share = smallest / labelled if labelled else 0.0
        ratio = max(classes.values()) / smallest if smallest else None
        details = {
            "classes": {str(k): v for k, v in classes.items()},
            "minority_share": share,
            "imbalance_ratio": ratio,
            "min_minority_share": limit,
        }
        if len(classes) < 2:
            only = f" ({next(iter(classes))})" if classes else ""
            summary = (
                f"Only {plural(len(classes), 'class')}{only} in "
                f"{plural(labelled, 'labelled row')}; a {self.task} model needs at least 2."
            )
            return self.result("class_balance", True, summary, **details)
        rarest = list(classes)[-1]
        summary = (
            f"{len(classes)} classes; the rarest, {rarest}, is {percent(share)} of "
            f"{plural(labelled, 'labelled row')} (imbalance {ratio:,.1f}:1)"
            f"{over_limit(share < limit, limit, below=True)}"
        )
        return self.result("class_balance", share < limit, summary, **details)

    def out_of_range(self) -> CheckResult:
        columns = {}
        for name, feature in self.spec.items():
            if feature.range is not None and self.declared is not None:
                count, present = int(self.found[f"outside:{name}"]), self.stats[name].n_present
                columns[name] = {
                    "count": count,
                    "rate": count / present if present else 0.0,
                    "range": list(feature.range),
                    "min": plain(self.found.get(f"min:{name}", self.stats[name].low)),
                    "max": plain(self.found.get(f"max:{name}", self.stats[name].high)),
                }
        return self._per_column(
            "out_of_range", columns, self.limits.max_out_of_range_rate, "ranges", "outside"
        )

    def unseen_categories(self) -> CheckResult:
        columns = {}
        for name, feature in self.spec.items():
            if feature.categories is not None and self.declared is not None:
                count, present = int(self.found[f"unseen:{name}"]), self.stats[name].n_present
                columns[name] = {
                    "count": count,
                    "rate": count / present if present else 0.0,
                    "examples": plain(self.found[f"unseen_examples:{name}"] or []),
                }
        return self._per_column(
            "unseen_categories",
            columns,
            self.limits.max_unseen_category_rate,
            "categories",
            "not among",
        )

    def _per_column(
        self,
        name: CheckName,
        columns: dict[str, dict[str, Any]],
        limit: float,
        what: str,
        bad: str,
    ) -> CheckResult:
        """A check of declared ``what`` (ranges or categories) whose values may be ``bad``."""
        if not columns:
            return self.result(name, False, f"No {what} declared; nothing to check.")
        found = {n: c for n, c in columns.items() if c["count"]}
        over = [n for n, c in found.items() if c["rate"] > limit]
        if not found:
            n = len(columns)
            summary = f"Every value of the {plural(n, 'column')} with declared {what} fits them."
        else:
            listing = shorten(
                [
                    f"{n} {plural(c['count'], 'value')} ({percent(c['rate'])})"
                    for n, c in found.items()
                ]
            )
            summary = (
                f"{plural(len(found), 'column')} {verb(len(found), 'has', 'have')} values {bad} "
                f"the declared {what}: {listing}{over_limit(bool(over), limit)}"
            )
        return self.result(name, bool(over), summary, columns=columns, over_limit=over, limit=limit)


def _expected(kind: str, n: int) -> str:
    if kind == "numeric":
        return verb(n, "a finite number", "finite numbers")
    return "true or false" if kind == "boolean" else verb(n, "a string", "strings")


def _misfit(column: Column, kind: str) -> str | None:
    """SQL that is true where a value does not fit ``kind``; None when every value fits."""
    if kind == "numeric":
        if column.kind == "numeric":
            floats = column.sql_type in {"FLOAT", "DOUBLE", "REAL"}
            return f"NOT isfinite({column.number})" if floats else None
        if column.kind == "boolean":
            return f"{column.value} IS NOT NULL"
        number = column.number
        return f"{column.value} IS NOT NULL AND ({number} IS NULL OR NOT isfinite({number}))"
    if kind == "boolean":
        if column.kind == "boolean":
            return None
        if column.kind == "numeric":
            return f"{column.value} NOT IN (0, 1)"
        words = ", ".join(literal(w) for w in _TRUE_FALSE)
        return f"lower(trim({column.text})) NOT IN ({words})"
    # Categorical and text values are strings when scored; any value can be written as one.
    return None
