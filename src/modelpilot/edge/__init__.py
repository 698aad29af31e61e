"""Edge deployment, the server's side: signed bundles of registered versions, and a fleet of
devices that run them offline, sync their logs back and follow canary rollouts.

The device's side is the ``modelpilot_edge`` package (its own distribution: NumPy and PyNaCl
only); docs/edge.md has the picture.
"""

from typing import TYPE_CHECKING

from modelpilot._lazy import lazy_exports

if TYPE_CHECKING:
    from modelpilot.edge._bundles import BundleCache
    from modelpilot.edge._device_points import MAX_LABELLED_DEVICES, DevicePoints
    from modelpilot.edge._errors import EdgeFailure, ExportError, NotExportable
    from modelpilot.edge._export import (
        ENGINES,
        ExportReport,
        build_bundle_files,
        deployment_of,
        export_bundle,
        registered_answers,
    )
    from modelpilot.edge._fleet import EdgeFleet, in_canary
    from modelpilot.edge._fleet_store import EdgeRollout, FleetStore
    from modelpilot.edge._ingest import MAX_RECORDS, IngestResult, ingest
    from modelpilot.edge._keys import (
        KEYS_DIR,
        SigningKey,
        create_signing_keys,
        load_signing_key,
    )

__all__ = [
    "ENGINES",
    "KEYS_DIR",
    "MAX_LABELLED_DEVICES",
    "MAX_RECORDS",
    "BundleCache",
    "DevicePoints",
    "EdgeFailure",
    "EdgeFleet",
    "EdgeRollout",
    "ExportError",
    "ExportReport",
    "FleetStore",
    "IngestResult",
    "NotExportable",
    "SigningKey",
    "build_bundle_files",
    "create_signing_keys",
    "deployment_of",
    "export_bundle",
    "in_canary",
    "ingest",
    "load_signing_key",
    "registered_answers",
]

# Each name is imported on first use (PEP 562): `modelpilot keys create` should not pay for
# scikit-learn, nor the server's routes for skl2onnx.
_SOURCES = {
    "_bundles": ("BundleCache",),
    "_device_points": ("MAX_LABELLED_DEVICES", "DevicePoints"),
    "_fleet": ("EdgeFleet", "in_canary"),
    "_fleet_store": ("EdgeRollout", "FleetStore"),
    "_ingest": ("MAX_RECORDS", "IngestResult", "ingest"),
    "_errors": ("EdgeFailure", "ExportError", "NotExportable"),
    "_export": (
        "ENGINES",
        "ExportReport",
        "build_bundle_files",
        "deployment_of",
        "export_bundle",
        "registered_answers",
    ),
    "_keys": ("KEYS_DIR", "SigningKey", "create_signing_keys", "load_signing_key"),
}

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name
    __getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
