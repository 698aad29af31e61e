"""The online server: assembles the engine (``modelpilot.inference``), rollouts, automation,
monitoring and alerts into one ASGI app behind uvicorn, with the JSON API, the Open Inference
Protocol, the dashboard and the control loop. Only the CLI imports it."""

from typing import TYPE_CHECKING

from modelpilot._lazy import lazy_exports

if TYPE_CHECKING:
    from modelpilot.server._app import ServingApp, create_app
    from modelpilot.server._auth import ROLES, Principal, TokenStore
    from modelpilot.server._control import ControlLoop
    from modelpilot.server._http import PredictionProtocol
    from modelpilot.server._serve import app_factory, serve
    from modelpilot.server._state import ServerState, build_state

__all__ = [
    "ROLES",
    "ControlLoop",
    "PredictionProtocol",
    "Principal",
    "ServerState",
    "ServingApp",
    "TokenStore",
    "app_factory",
    "build_state",
    "create_app",
    "serve",
]

# `modelpilot token create` needs the token store, not uvicorn and every model runtime.
_SOURCES = {
    "_app": ("ServingApp", "create_app"),
    "_auth": ("ROLES", "Principal", "TokenStore"),
    "_control": ("ControlLoop",),
    "_http": ("PredictionProtocol",),
    "_serve": ("app_factory", "serve"),
    "_state": ("ServerState", "build_state"),
}

if not TYPE_CHECKING:  # hidden from mypy, which would otherwise accept any name
    __getattr__, __dir__ = lazy_exports(__name__, _SOURCES, globals(), __all__)
