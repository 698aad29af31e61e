"""modelpilot-edge: run a signed model bundle on a device, without the server.

``Bundle.open(path, public_key=...)`` verifies a bundle written by ``modelpilot export edge``
and answers ``predict`` as the server does (the same validation, answers and errors), logging
every prediction to a crash-safe local log that ``Bundle.sync`` uploads later. An
``EdgeDevice`` keeps the current and the previous bundle and follows the version the server
assigns it. NumPy and PyNaCl are all it needs (onnxruntime for ONNX bundles only).

Names are imported on first use: modelpilot imports the validation rules and error messages
from here without paying for NumPy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._bundle import DEVICE_PATTERN, Bundle, default_device_id, new_ids
    from ._device import EdgeDevice, UpdateReport
    from ._drift import drift_report, psi
    from ._errors import (
        BundleRejected,
        EdgeError,
        KeyRejected,
        ModelFailed,
        SyncFailed,
        UpdateFailed,
        ValidationFailed,
        problems_message,
    )
    from ._keys import (
        KeyPair,
        canonical_json,
        generate_keys,
        key_id,
        load_private_key,
        load_public_key,
        public_of,
        public_text,
        sign_document,
        verify_document,
    )
    from ._log import LocalLog, LogPolicy
    from ._manifest import read_bundle, write_bundle
    from ._sync import SyncReport, sync_log
    from ._validation import (
        FALSE_WORDS,
        TRUE_WORDS,
        Feature,
        RecordValidation,
        RecordValidator,
        expected_text,
    )

_SOURCES = {
    "_bundle": ("DEVICE_PATTERN", "Bundle", "default_device_id", "new_ids"),
    "_device": ("EdgeDevice", "UpdateReport"),
    "_drift": ("drift_report", "psi"),
    "_errors": (
        "BundleRejected",
        "EdgeError",
        "KeyRejected",
        "ModelFailed",
        "SyncFailed",
        "UpdateFailed",
        "ValidationFailed",
        "problems_message",
    ),
    "_keys": (
        "KeyPair",
        "canonical_json",
        "generate_keys",
        "key_id",
        "load_private_key",
        "load_public_key",
        "public_of",
        "public_text",
        "sign_document",
        "verify_document",
    ),
    "_log": ("LocalLog", "LogPolicy"),
    "_manifest": ("read_bundle", "write_bundle"),
    "_sync": ("SyncReport", "sync_log"),
    "_validation": (
        "FALSE_WORDS",
        "TRUE_WORDS",
        "Feature",
        "RecordValidation",
        "RecordValidator",
        "expected_text",
    ),
}
__all__ = [
    "DEVICE_PATTERN",
    "FALSE_WORDS",
    "TRUE_WORDS",
    "Bundle",
    "BundleRejected",
    "EdgeDevice",
    "EdgeError",
    "Feature",
    "KeyPair",
    "KeyRejected",
    "LocalLog",
    "LogPolicy",
    "ModelFailed",
    "RecordValidation",
    "RecordValidator",
    "SyncFailed",
    "SyncReport",
    "UpdateFailed",
    "UpdateReport",
    "ValidationFailed",
    "canonical_json",
    "default_device_id",
    "drift_report",
    "expected_text",
    "generate_keys",
    "key_id",
    "load_private_key",
    "load_public_key",
    "new_ids",
    "problems_message",
    "psi",
    "public_of",
    "public_text",
    "read_bundle",
    "sign_document",
    "sync_log",
    "verify_document",
    "write_bundle",
]
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'modelpilot_edge' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"modelpilot_edge.{module}"), name)
    globals()[name] = value  # later look-ups find it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
