"""A device: the bundle it runs, the one before (to roll back to), its log, and its updates.

A device's directory holds ``bundles/`` (the current bundle and the previous one, never
changed once written), ``log/`` (the prediction log, shared by every bundle the device runs)
and ``device.json``, which names the current and previous bundles. Switching bundles is one
atomic replacement of ``device.json`` (write, fsync, rename): a device that loses power
mid-update runs either the old bundle or the new one, never half of each.

An update (:meth:`EdgeDevice.update`) asks the server which version this device should run
(``GET /v1/edge/{deployment}/assignment?device=ID``: a document signed with the same key as
the bundles, newer than the last one accepted), downloads that bundle if it is not the current
one, checks its sha256 against the assignment, verifies its signature and checksums, switches,
and runs the bundle's smoke checks: a bundle that fails them is rolled back at once and not
tried again until the assignment changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ._bundle import Bundle, default_device_id
from ._errors import EdgeError, UpdateFailed
from ._http import request
from ._keys import load_public_key, verify_document
from ._log import LocalLog, LogPolicy
from ._manifest import read_bundle
from ._sync import SyncReport

__all__ = ["EdgeDevice", "UpdateReport"]


@dataclass
class UpdateReport:
    """What an update, an install or a rollback did: ``current`` (nothing to do), ``updated``,
    ``rolled_back`` or ``refused``, with the versions and the reason."""

    status: str
    version: int | None
    previous: int | None = None
    reason: str = ""


class EdgeDevice:
    """The bundles, log and updates of one device, in ``directory``.

    ``deployment`` is needed only before the first bundle is installed (afterwards the
    bundle names it).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        public_key: str | os.PathLike[str] | bytes,
        device_id: str | None = None,
        deployment: str | None = None,
        log_policy: LogPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = Path(directory)
        self.bundles_dir = self.directory / "bundles"
        self.bundles_dir.mkdir(parents=True, exist_ok=True)
        self.public_key = (
            public_key if isinstance(public_key, bytes) else load_public_key(public_key)
        )
        self.device_id = device_id or default_device_id()
        self.clock = clock
        self._state_path = self.directory / "device.json"
        self.state: dict[str, Any] = self._read_state()
        self.log = LocalLog(self.directory / "log", policy=log_policy)
        self._deployment = deployment
        self.bundle: Bundle | None = None
        try:
            if self.state.get("current"):
                self.bundle = self._open(self.state["current"])
        except BaseException:
            self.log.close()
            raise

    # ---- state ----------------------------------------------------------------------------
    def _read_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self._state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            state = {}
        state.setdefault("current", None)
        state.setdefault("previous", None)
        state.setdefault("issued_at", 0.0)
        state.setdefault("refused", {})
        return state

    def _write_state(self) -> None:
        temporary = self._state_path.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            handle.write(json.dumps(self.state, indent=2).encode())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self._state_path)
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def _open(self, name: str) -> Bundle:
        return Bundle.open(
            self.bundles_dir / name,
            public_key=self.public_key,
            log=self.log,
            device_id=self.device_id,
            clock=self.clock,
        )

    @property
    def deployment(self) -> str:
        if self.bundle is not None:
            return self.bundle.deployment
        if self._deployment is None:
            raise EdgeError(
                "this device has no bundle yet: name its deployment (deployment=...) or "
                "install a bundle first"
            )
        return self._deployment

    def _require(self) -> Bundle:
        if self.bundle is None:
            raise EdgeError(
                f"the device in {self.directory} has no bundle yet: install one "
                "(EdgeDevice.install) or fetch its assignment (EdgeDevice.update)"
            )
        return self.bundle

    # ---- serving --------------------------------------------------------------------------
    def predict(self, records: Any) -> Any:
        """The current bundle's answers (``Bundle.predict``)."""
        return self._require().predict(records)

    def sync(self, url: str, token: str | None, **options: Any) -> SyncReport:
        """Upload the device's log (``Bundle.sync``)."""
        return self._require().sync(url, token, **options)

    # ---- switching ------------------------------------------------------------------------
    def install(self, source: str | os.PathLike[str]) -> UpdateReport:
        """Copy a bundle (a zip file or a directory) in, switch to it, run its smoke checks;
        roll back to the bundle before if they fail."""
        source_path = Path(source)
        read_bundle(source_path, public_key=self.public_key)  # refuse before copying anything
        digest = _sha256_of(source_path)
        name = f"{digest[:16]}{'.zip' if source_path.is_file() else ''}"
        target = self.bundles_dir / name
        if not target.exists():
            partial = self.bundles_dir / f".{name}.part"
            if source_path.is_dir():
                shutil.rmtree(partial, ignore_errors=True)
                shutil.copytree(source_path, partial)
            else:
                shutil.copyfile(source_path, partial)
                _fsync_file(partial)
            os.replace(partial, target)
        return self._switch(name, digest)

    def _switch(self, name: str, digest: str) -> UpdateReport:
        old_bundle, old_name = self.bundle, self.state["current"]
        old_version = None if old_bundle is None else old_bundle.version
        if name == old_name:
            return UpdateReport("current", old_version)
        new_bundle = self._open(name)
        self.state.update(current=name, previous=old_name)
        self._write_state()
        self.bundle = new_bundle
        problems = new_bundle.smoke_check()
        if not problems:
            if old_bundle is not None:
                old_bundle.close()
            self._prune()
            return UpdateReport("updated", new_bundle.version, old_version)
        reason = "; ".join(problems[:3])
        self.state["refused"][digest] = reason
        if old_name is None:  # nothing to go back to: no bundle at all rather than a bad one
            self.state.update(current=None, previous=None)
            self._write_state()
            self.bundle = None
            return UpdateReport("refused", None, None, f"smoke checks failed: {reason}")
        self.state.update(current=old_name, previous=name)
        self._write_state()
        self.bundle = old_bundle
        return UpdateReport(
            "rolled_back", old_version, new_bundle.version, f"smoke checks failed: {reason}"
        )

    def rollback(self) -> UpdateReport:
        """Go back to the previous bundle (the current one becomes the previous)."""
        previous = self.state.get("previous")
        if not previous or not (self.bundles_dir / previous).exists():
            raise EdgeError(f"the device in {self.directory} has no previous bundle to go back to")
        current = self._require()
        older = self._open(previous)
        self.state.update(current=previous, previous=self.state["current"])
        self._write_state()
        self.bundle = older
        return UpdateReport("rolled_back", older.version, current.version, "on command")

    def _prune(self) -> None:
        """Keep the current and the previous bundle; delete older ones."""
        keep = {self.state.get("current"), self.state.get("previous")}
        for path in self.bundles_dir.iterdir():
            if path.name not in keep and not path.name.startswith("."):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()

    # ---- updates from the server ------------------------------------------------------------
    def assignment(self, url: str, token: str | None, *, timeout_s: float = 30.0) -> dict[str, Any]:
        """The server's signed assignment for this device, verified."""
        deployment = self.deployment
        endpoint = (
            f"{url.rstrip('/')}/v1/edge/{quote(deployment, safe='')}/assignment"
            f"?device={quote(self.device_id, safe='')}"
        )
        answer = request("GET", endpoint, token=token, timeout_s=timeout_s)
        if answer.status != 200:
            raise UpdateFailed(
                f"asking {endpoint} for this device's version failed ({answer.message})"
            )
        document = verify_document(self.public_key, answer.json())
        if document is None:
            raise UpdateFailed(
                f"the assignment from {endpoint} is not signed with this device's public key; "
                "it was ignored"
            )
        if document.get("device") != self.device_id or document.get("deployment") != deployment:
            raise UpdateFailed(
                f"the assignment is for device {document.get('device')!r} of "
                f"{document.get('deployment')!r}, not {self.device_id!r} of {deployment!r}"
            )
        if float(document.get("issued_at", 0.0)) < float(self.state["issued_at"]):
            raise UpdateFailed(
                "the assignment is older than one this device already followed (a replay?); "
                "it was ignored"
            )
        return document

    def update(self, url: str, token: str | None, *, timeout_s: float = 60.0) -> UpdateReport:
        """Run the version the server assigns to this device (see the module's docstring)."""
        document = self.assignment(url, token, timeout_s=timeout_s)
        version = int(document["version"])
        digest = str(document["bundle"]["sha256"])
        current = self.bundle
        self.state["issued_at"] = float(document.get("issued_at", 0.0))
        if current is not None and self.state["current"] == f"{digest[:16]}.zip":
            self._write_state()
            return UpdateReport("current", current.version)
        if digest in self.state["refused"]:
            self._write_state()
            why = self.state["refused"][digest]
            return UpdateReport(
                "refused",
                None if current is None else current.version,
                version,
                f"version {version} failed its smoke checks before ({why})",
            )
        name = f"{digest[:16]}.zip"
        target = self.bundles_dir / name
        if not target.exists():
            self._download(
                url.rstrip("/") + str(document["bundle"]["url"]), token, digest, target, timeout_s
            )
        report = self._switch(name, digest)
        self._write_state()
        return report

    def _download(
        self, url: str, token: str | None, digest: str, target: Path, timeout_s: float
    ) -> None:
        import urllib.error
        import urllib.request

        partial = target.with_name(f".{target.name}.part")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        prepared = urllib.request.Request(url, headers=headers)
        hasher = hashlib.sha256()
        try:
            with (
                urllib.request.urlopen(prepared, timeout=timeout_s) as response,
                open(partial, "wb") as handle,
            ):
                while chunk := response.read(1 << 16):
                    hasher.update(chunk)
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
        except urllib.error.HTTPError as exc:
            raise UpdateFailed(
                f"downloading {url} failed ({exc.code}: {exc.read()[:200]!r})"
            ) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            raise UpdateFailed(f"downloading {url} failed ({exc})") from None
        if hasher.hexdigest() != digest:
            partial.unlink(missing_ok=True)
            raise UpdateFailed(
                f"the bundle downloaded from {url} is not the one assigned (sha256 differs); "
                "it was deleted"
            )
        read_bundle(partial, public_key=self.public_key)  # its signature and checksums
        os.replace(partial, target)

    def close(self) -> None:
        if self.bundle is not None:
            self.bundle.close()
        self.log.close()

    def __enter__(self) -> EdgeDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sha256_of(path: Path) -> str:
    """The sha256 of a zip file; of a directory, of its files' names and contents."""
    hasher = hashlib.sha256()
    if path.is_file():
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 16):
                hasher.update(chunk)
        return hasher.hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        hasher.update(file.relative_to(path).as_posix().encode() + b"\0" + file.read_bytes())
    return hasher.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
