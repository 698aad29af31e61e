"""modelpilot: take a trained model from a notebook into production and keep it healthy there.

The lifecycle, one subpackage per stage: ``spec`` (scoping: the project file), ``data``
(checks, validation, profiles), ``registry`` and ``runtime`` (modeling), ``inference`` (the
engine that runs models, batch scoring), ``rollout``, ``monitoring``, ``drift``, ``alerting``,
``automation`` and ``server`` (online deployment and keeping it healthy), ``store`` (metadata
and the prediction log). docs/architecture.md draws the layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelpilot._version import __version__

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
