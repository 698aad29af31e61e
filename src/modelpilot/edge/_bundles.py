"""The bundles a server hands its devices: built on first request, then kept as files.

A device downloads the bundle its assignment names (``GET /v1/edge/{deployment}/bundles/V``).
The server exports it the first time a device needs it, exactly as ``modelpilot export edge``
does (the holdout check included), signs it with the project's key, and keeps the zip under
``.modelpilot/edge/bundles/`` (named by deployment, version and key: a new key makes new
bundles). Concurrent requests for one bundle build it once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

from modelpilot.edge._export import build_bundle_files
from modelpilot.edge._keys import SigningKey
from modelpilot.project import Project
from modelpilot_edge import write_bundle

__all__ = ["BundleCache"]


class BundleCache:
    """Signed bundle files of a project's versions, built on demand."""

    def __init__(
        self,
        project: Project,
        *,
        trust: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.project = project
        self.trust = trust
        self.clock = clock
        self.directory = project.directory / ".modelpilot" / "edge" / "bundles"
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._digests: dict[Path, str] = {}

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def bundle(
        self, key: SigningKey, deployment: str, model: str, version: int
    ) -> tuple[Path, str]:
        """The bundle's file and its sha256, exported first if it is not there yet."""
        path = self.directory / f"{deployment}-{model}-v{version}-{key.id}.zip"
        with self._lock(path.name):
            if not path.exists():
                registered = self.project.registry.get(model, version)
                # force: a rejected version can be rolled out to devices with force, as online.
                runtime = self.project.registry.load(registered, trust=self.trust, force=True)
                files, _ = build_bundle_files(
                    self.project, registered, runtime, deployment=deployment, clock=self.clock
                )
                write_bundle(
                    path, files, private_key=key.private, as_zip=True, created_at=self.clock()
                )
            digest = self._digests.get(path)
            if digest is None:
                digest = self._digests[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        return path, digest
