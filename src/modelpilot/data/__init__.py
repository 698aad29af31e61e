"""Data: reading files, schema inference and checks before training, validation, profiles."""

from typing import TYPE_CHECKING

from modelpilot._lazy import lazy_exports

if TYPE_CHECKING:
    from modelpilot.data._checks import CHECK_NAMES, check_data
    from modelpilot.data._freshness import (
        BatchInputRejected,
        BatchInputReport,
        InputCheck,
        check_batch_input,
        count_rows,
    )
    from modelpilot.data._io import file_format, iter_batches, read_table, sha256_file
    from modelpilot.data._profile import N_QUANTILES, build_profile
    from modelpilot.data._report import CheckResult, DataCheckReport
    from modelpilot.data._schema import infer_schema
    from modelpilot.data._targets import TargetValidator
    from modelpilot.data._validation import FrameValidation, RecordValidation, SchemaValidator

__all__ = [
    "CHECK_NAMES",
    "N_QUANTILES",
    "BatchInputRejected",
    "BatchInputReport",
    "CheckResult",
    "DataCheckReport",
    "FrameValidation",
    "InputCheck",
    "RecordValidation",
    "SchemaValidator",
    "TargetValidator",
    "build_profile",
    "check_batch_input",
    "check_data",
    "count_rows",
    "file_format",
    "infer_schema",
    "iter_batches",
    "read_table",
    "sha256_file",
]

# Each name is imported on first use (PEP 562): reading a file should not pay for DuckDB and the
# data checks.
_SOURCES = {
    "_checks": ("CHECK_NAMES", "check_data"),
    "_freshness": (
        "BatchInputRejected",
        "BatchInputReport",
        "InputCheck",
        "check_batch_input",
        "count_rows",
    ),
    "_io": ("file_format", "iter_batches", "read_table", "sha256_file"),
    "_profile": ("N_QUANTILES", "build_profile"),
    "_report": ("CheckResult", "DataCheckReport"),
    "_schema": ("infer_schema",),
    "_targets": ("TargetValidator",),
    "_validation": ("FrameValidation", "RecordValidation", "SchemaValidator"),
}

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name
    __getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
