"""A bundle on disk: its files, a manifest of their sha256, and the manifest's signature.

A bundle is a directory or a zip file holding ``manifest.json`` (the format, each file's
sha256, the signing key's id), ``manifest.sig`` (the Ed25519 signature of the manifest's bytes,
in hex) and the files the manifest lists. Reading one verifies the signature first, then every
file against the manifest, and refuses a file the manifest does not list: what is loaded is
exactly what the signer wrote. The files are read into memory once and parsed from those
bytes, so nothing can change between the check and the load.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._errors import BundleRejected
from ._keys import key_id, public_of, sign, verify

__all__ = ["BUNDLE_FORMAT", "MANIFEST", "SIGNATURE", "read_bundle", "write_bundle"]

BUNDLE_FORMAT = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
# A zip entry's time: fixed, so the same files make the same bytes (and the same sha256).
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bundle(
    target: str | os.PathLike[str],
    files: Mapping[str, bytes],
    *,
    private_key: bytes,
    as_zip: bool,
    created_at: float,
) -> Path:
    """Write ``files`` (relative POSIX names) with a signed manifest; returns the path.

    The bundle is written under a temporary name and renamed into place, so ``target`` is
    either the old bundle or the whole new one.
    """
    path = Path(target)
    manifest = {
        "format": BUNDLE_FORMAT,
        "created_at": created_at,
        "signed_by": key_id(public_of(private_key)),
        "files": {name: _sha256(files[name]) for name in sorted(files)},
    }
    manifest_bytes = json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"
    signature = sign(private_key, manifest_bytes).hex().encode() + b"\n"
    everything = {**files, MANIFEST: manifest_bytes, SIGNATURE: signature}
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if as_zip:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(everything):
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, everything[name])
        os.replace(temporary, path)
        return path
    if temporary.exists():
        shutil.rmtree(temporary)
    for name, data in everything.items():
        file = temporary / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    os.replace(temporary, path)
    return path


def _files_of(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {
            file.relative_to(path).as_posix(): file.read_bytes()
            for file in sorted(path.rglob("*"))
            if file.is_file()
        }
    try:
        with zipfile.ZipFile(path) as archive:
            return {
                info.filename: archive.read(info)
                for info in archive.infolist()
                if not info.is_dir()
            }
    except zipfile.BadZipFile:
        raise BundleRejected(str(path), "it is neither a bundle directory nor a zip file") from None


def read_bundle(path: str | os.PathLike[str], *, public_key: bytes) -> dict[str, bytes]:
    """The files of a bundle, once its signature and every checksum are verified.

    Raises :class:`BundleRejected` naming what failed.
    """
    where = str(path)
    bundle = Path(path)
    if not bundle.exists():
        raise BundleRejected(where, "there is no such file or directory")
    files = _files_of(bundle)
    manifest_bytes = files.pop(MANIFEST, None)
    signature_text = files.pop(SIGNATURE, None)
    if manifest_bytes is None or signature_text is None:
        raise BundleRejected(where, f"it has no {MANIFEST} and {SIGNATURE}: not a bundle")
    try:
        signature = bytes.fromhex(signature_text.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        signature = b""
    if not verify(public_key, manifest_bytes, signature):
        raise BundleRejected(
            where,
            f"the signature of {MANIFEST} does not verify with the public key "
            f"{key_id(public_key)} (the manifest was changed, or signed with another key: "
            f"{_signer(manifest_bytes)})",
        )
    manifest = json.loads(manifest_bytes)
    if manifest.get("format") != BUNDLE_FORMAT:
        raise BundleRejected(
            where, f"its format is {manifest.get('format')!r}; this runner reads {BUNDLE_FORMAT}"
        )
    listed: dict[str, str] = manifest["files"]
    missing = sorted(set(listed) - set(files))
    extra = sorted(set(files) - set(listed))
    if missing:
        raise BundleRejected(
            where, f"file(s) {', '.join(missing)} listed in {MANIFEST} are missing"
        )
    if extra:
        raise BundleRejected(where, f"file(s) {', '.join(extra)} are not in {MANIFEST}")
    for name, expected in listed.items():
        if _sha256(files[name]) != expected:
            raise BundleRejected(where, f"{name} changed since it was signed (sha256 differs)")
    return files


def _signer(manifest_bytes: bytes) -> str:
    try:
        signer: Any = json.loads(manifest_bytes).get("signed_by")
    except (ValueError, AttributeError):
        return "the manifest is not readable"
    return f"it names key {signer}" if signer else "it names no key"


def load_json(files: Mapping[str, bytes], name: str) -> Any:
    """A JSON file of a verified bundle."""
    return json.loads(files[name])


def load_bytes(files: Mapping[str, bytes], name: str) -> io.BytesIO:
    """A binary file of a verified bundle, as a file object (for ``np.load``)."""
    return io.BytesIO(files[name])
