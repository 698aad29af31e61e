"""Importing this module registers every command with the root app."""

from modelpilot.cli import (  # noqa: F401
    _alerts,
    _automation,
    _cluster,
    _data,
    _demo,
    _drift,
    _edge,
    _init,
    _log,
    _models,
    _models_alias,
    _predict,
    _rollout,
    _score,
    _serve,
)
