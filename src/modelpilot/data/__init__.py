"""Data: reading files, schema inference and checks before training, validation, profiles."""

from modelpilot.data._io import file_format, iter_batches, read_table, sha256_file
from modelpilot.data._profile import N_QUANTILES, build_profile
from modelpilot.data._validation import FrameValidation, RecordValidation, SchemaValidator

__all__ = [
    "N_QUANTILES",
    "FrameValidation",
    "RecordValidation",
    "SchemaValidator",
    "build_profile",
    "file_format",
    "iter_batches",
    "read_table",
    "sha256_file",
]
