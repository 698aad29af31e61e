"""The artifact store: content-addressed, written atomically, verified before every load.

Artifacts are stored under their sha256, so a registration interrupted after the copy leaves
at most an unreferenced file (never a half version) and the same model registered twice is
stored once. Object storage can implement :class:`ArtifactStore` later.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelpilot.errors import ArtifactError, NotFoundError

__all__ = ["ArtifactRef", "ArtifactStore", "LocalArtifactStore", "sha256_path"]


@dataclass(frozen=True)
class ArtifactRef:
    uri: str
    sha256: str
    filename: str
    size_bytes: int


def sha256_path(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, or of a directory's files (sorted relative paths and their bytes)."""
    root = Path(path)
    digest = hashlib.sha256()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for file in files:
        if root.is_dir():
            digest.update(str(file.relative_to(root)).encode() + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class ArtifactStore(Protocol):
    def put(self, source: Path) -> ArtifactRef: ...

    def local_path(self, ref: ArtifactRef) -> Path: ...

    def verify(self, ref: ArtifactRef) -> Path: ...


class LocalArtifactStore:
    """Artifacts in a directory: ``<root>/<sha[:2]>/<sha>/<filename>``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def put(self, source: Path) -> ArtifactRef:
        if not source.exists():
            raise NotFoundError("artifact", str(source), hint="check the path")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.root))
        try:
            copy = staging / source.name
            if source.is_dir():
                shutil.copytree(source, copy)
            else:
                shutil.copyfile(source, copy)
                with open(copy, "rb") as handle:
                    os.fsync(handle.fileno())
            sha = sha256_path(copy)
            final_dir = self.root / sha[:2] / sha
            final = final_dir / source.name
            # A stored copy that no longer matches its name was damaged after it was stored;
            # replacing it is what "register the model again" in verify's message promises.
            if not final.exists() or sha256_path(final) != sha:
                final_dir.mkdir(parents=True, exist_ok=True)
                if final.is_dir():  # os.replace cannot replace a non-empty directory
                    shutil.rmtree(final)
                os.replace(copy, final)  # atomic on one file system
            return ArtifactRef(
                uri=str(final.relative_to(self.root)),
                sha256=sha,
                filename=source.name,
                size_bytes=_size(final),
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def local_path(self, ref: ArtifactRef) -> Path:
        return self.root / ref.uri

    def verify(self, ref: ArtifactRef) -> Path:
        """The artifact's path, after checking its sha256 against the registry's."""
        path = self.local_path(ref)
        if not path.exists():
            raise ArtifactError(
                f"artifact {ref.uri} is missing from the artifact store at {self.root}; "
                "restore it from a backup or register the model again"
            )
        actual = sha256_path(path)
        if actual != ref.sha256:
            raise ArtifactError(
                f"artifact {ref.uri} is corrupt: its sha256 is {actual[:12]}..., the registry "
                f"recorded {ref.sha256[:12]}...; it was changed after registration. "
                "Restore it or register the model again"
            )
        return path
