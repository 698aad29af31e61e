"""Importing this module registers every command with the root app."""

from modelpilot.cli import _init, _models  # noqa: F401
