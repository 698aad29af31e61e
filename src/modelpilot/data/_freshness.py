"""Before a batch is scored: is the input file fresh, and about as large as usual?

Two problems upstream of the model that no schema check sees: yesterday's export scored again
because today's job did not run (the file is old), and a truncated or partial export (far
fewer rows than the runs before). ``modelpilot score`` runs :func:`check_batch_input` before it
reads a row; the thresholds are the project file's ``batch_checks``.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from modelpilot.data._io import file_format
from modelpilot.errors import DataError, ModelpilotError, NotFoundError
from modelpilot.spec import BatchCheckSettings
from modelpilot.types import Clock

__all__ = [
    "BatchInputRejected",
    "BatchInputReport",
    "InputCheck",
    "check_batch_input",
    "count_rows",
]


@dataclass(frozen=True)
class InputCheck:
    """One check of an input file; ``passed`` is None when it could not be judged."""

    name: str
    passed: bool | None
    message: str
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "passed": self.passed,
            "value": self.value,
            "message": self.message,
        }


@dataclass(frozen=True)
class BatchInputReport:
    """What :func:`check_batch_input` found: the file's row count and each check."""

    path: str
    rows: int
    checks: tuple[InputCheck, ...]

    @property
    def failed(self) -> list[InputCheck]:
        return [c for c in self.checks if c.passed is False]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "passed": not self.failed,
            "checks": [c.to_dict() for c in self.checks],
        }


class BatchInputRejected(ModelpilotError):
    """An input file failed a blocking check; nothing was scored."""

    kind = "batch_input_rejected"
    exit_code = 2

    def __init__(self, report: BatchInputReport) -> None:
        self.report = report
        reasons = "; ".join(c.message for c in report.failed)
        super().__init__(
            f"{report.path} was not scored: {reasons}. Pass --skip-checks to score it anyway, "
            "or change batch_checks in modelpilot.yaml"
        )


def count_rows(path: str | os.PathLike[str]) -> int:
    """The number of data rows of a CSV or Parquet file (Parquet: from its metadata).

    Examples
    --------
    >>> import tempfile
    >>> file = Path(tempfile.mkdtemp()) / "notes.csv"
    >>> _ = file.write_text('id,note\\n1,"two\\nlines"\\n2,one line\\n')
    >>> count_rows(file)
    2
    """
    file = Path(path)
    if not file.is_file():
        raise NotFoundError("file", str(path), hint="check the path")
    try:
        if file_format(file) == "parquet":
            return int(pq.ParquetFile(file).metadata.num_rows)
        # Quoted fields may hold newlines: let the CSV reader count rows, converting one column.
        reader = pacsv.open_csv(file, read_options=pacsv.ReadOptions(block_size=8 << 20))
        first = reader.schema.names[:1]
        reader.close()
        options = pacsv.ConvertOptions(
            include_columns=first, column_types=dict.fromkeys(first, pa.string())
        )
        reader = pacsv.open_csv(
            file, read_options=pacsv.ReadOptions(block_size=8 << 20), convert_options=options
        )
        return sum(batch.num_rows for batch in reader)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{file}: cannot be read to count its rows ({exc})") from None


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def check_batch_input(
    path: str | os.PathLike[str],
    settings: BatchCheckSettings,
    *,
    history: Sequence[int],
    rows: int | None = None,
    clock: Clock = time.time,
) -> BatchInputReport:
    """Check an input file's age (its modification time) and its row count.

    ``history`` holds the row counts of the model's last successful scoring runs, newest
    first; ``rows`` is counted from the file when not given.

    Examples
    --------
    >>> import tempfile
    >>> from modelpilot.spec import BatchCheckSettings
    >>> file = Path(tempfile.mkdtemp()) / "new.csv"
    >>> _ = file.write_text("size\\n1\\n2\\n")
    >>> now = file.stat().st_mtime + 2 * 3600  # two hours after it was written
    >>> report = check_batch_input(
    ...     file, BatchCheckSettings(max_age_hours=24), history=[100, 90, 110], clock=lambda: now)
    >>> [(c.name, c.passed) for c in report.checks]
    [('freshness', True), ('volume', False)]
    >>> print(report.failed[0].message)
    new.csv has 2 rows, fewer than 0.5x the usual 100 (median of the last 3 successful runs): it
    may be truncated or a partial export
    """
    file = Path(path)
    if not file.is_file():
        raise NotFoundError("file", str(path), hint="check the path")
    n_rows = count_rows(file) if rows is None else rows
    checks = [_freshness(file, settings, clock()), _volume(file, n_rows, settings, history)]
    return BatchInputReport(str(file), n_rows, tuple(checks))


def _freshness(file: Path, settings: BatchCheckSettings, now: float) -> InputCheck:
    age = max(0.0, now - file.stat().st_mtime)
    limit = settings.max_age_hours
    if limit is None:
        return InputCheck("freshness", None, "not checked: batch_checks.max_age_hours is null", age)
    if age > limit * 3600:
        return InputCheck(
            "freshness",
            False,
            f"{file.name} was last modified {_hours(age)} ago, more than "
            f"batch_checks.max_age_hours ({limit:g} h): it may be an old export; check that the "
            "job that writes it ran",
            age,
        )
    return InputCheck(
        "freshness", True, f"last modified {_hours(age)} ago (limit {limit:g} h)", age
    )


def _volume(
    file: Path, rows: int, settings: BatchCheckSettings, history: Sequence[int]
) -> InputCheck:
    recent = list(history)[: settings.history_runs]
    if len(recent) < settings.min_history_runs:
        return InputCheck(
            "volume",
            None,
            f"not checked: {len(recent)} earlier successful run(s) of this model, the check "
            f"needs {settings.min_history_runs} (batch_checks.min_history_runs)",
            float(rows),
        )
    usual = float(statistics.median(recent))
    low, high = settings.volume_ratio
    usual_text = f"the usual {usual:,.0f} (median of the last {len(recent)} successful runs)"
    if rows < low * usual:
        return InputCheck(
            "volume",
            False,
            f"{file.name} has {rows:,} rows, fewer than {low:g}x {usual_text}: it may be "
            "truncated or a partial export",
            float(rows),
        )
    if rows > high * usual:
        return InputCheck(
            "volume",
            False,
            f"{file.name} has {rows:,} rows, more than {high:g}x {usual_text}: it may hold "
            "duplicates or more than one period",
            float(rows),
        )
    return InputCheck(
        "volume",
        True,
        f"{rows:,} rows, within {low:g}x-{high:g}x {usual_text}",
        float(rows),
    )
