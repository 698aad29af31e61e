"""modelpilot: take a trained model from a notebook into production and keep it healthy there.

The lifecycle, one subpackage per stage: ``spec`` (scoping: the project file), ``data``
(checks, validation, profiles), ``registry`` and ``runtime`` (modeling), ``serving`` (batch and
online deployment), ``drift`` (data and concept drift), ``store`` (metadata and prediction log).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Client", "ModelpilotError", "Project", "__version__"]

if TYPE_CHECKING:
    from modelpilot.client import Client
    from modelpilot.errors import ModelpilotError
    from modelpilot.project import Project


def __getattr__(name: str) -> Any:
    # Lazy: `import modelpilot` stays fast for the client, which needs none of the heavy parts.
    if name == "Client":
        from modelpilot.client import Client

        return Client
    if name == "Project":
        from modelpilot.project import Project

        return Project
    if name == "ModelpilotError":
        from modelpilot.errors import ModelpilotError

        return ModelpilotError
    raise AttributeError(f"module 'modelpilot' has no attribute {name!r}")
