"""The project's signing key pair for edge bundles and assignments.

``modelpilot keys create`` writes ``.modelpilot/keys/edge-signing.key`` (the private key, mode
0600) and ``edge-signing.pub`` (the public key, which every device's runner is given). The
export signs bundles with the private key and the server signs devices' assignments with it;
``MODELPILOT_EDGE_SIGNING_KEY`` (the key's text, or a file holding it) takes the place of the
file, for a server whose secrets come from its environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelpilot.errors import ConflictError, ModelpilotError
from modelpilot_edge import generate_keys, key_id, load_private_key, public_of, public_text

__all__ = ["KEYS_DIR", "SigningKey", "create_signing_keys", "load_signing_key"]

KEYS_DIR = Path(".modelpilot") / "keys"
PRIVATE_FILE = "edge-signing.key"
PUBLIC_FILE = "edge-signing.pub"
ENVIRONMENT = "MODELPILOT_EDGE_SIGNING_KEY"


class MissingSigningKey(ModelpilotError):
    """No signing key where it is looked for; says how to make one."""

    http_status = 409
    kind = "no_signing_key"

    def __init__(self, where: Path) -> None:
        super().__init__(
            f"no edge signing key: {where} does not exist and {ENVIRONMENT} is not set; "
            "run `modelpilot keys create` (then give the devices edge-signing.pub)"
        )


@dataclass(frozen=True)
class SigningKey:
    """A private key (its 32-byte seed), its public key, and the public key's short id."""

    private: bytes

    @property
    def public(self) -> bytes:
        return public_of(self.private)

    @property
    def public_text(self) -> str:
        return public_text(self.public)

    @property
    def id(self) -> str:
        return key_id(self.public)


def create_signing_keys(directory: Path, *, force: bool = False) -> tuple[Path, Path]:
    """Write a new key pair into ``directory``; returns (private file, public file).

    Examples
    --------
    >>> import tempfile
    >>> private, public = create_signing_keys(Path(tempfile.mkdtemp()))
    >>> public.read_text().startswith("ed25519-public:"), oct(private.stat().st_mode)[-3:]
    (True, '600')
    """
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / PRIVATE_FILE, directory / PUBLIC_FILE
    if private_path.exists() and not force:
        raise ConflictError(
            f"{private_path} exists: devices trust its public key. Pass --force to replace it "
            "(then every device needs the new edge-signing.pub, and bundles signed before no "
            "longer verify)"
        )
    keys = generate_keys()
    temporary = private_path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(keys.private + "\n")
    os.replace(temporary, private_path)
    public_path.write_text(keys.public + "\n", encoding="utf-8")
    return private_path, public_path


def load_signing_key(project_dir: Path, environ: Mapping[str, str]) -> SigningKey:
    """The project's signing key: ``MODELPILOT_EDGE_SIGNING_KEY``, else the key file."""
    given = environ.get(ENVIRONMENT)
    if given:
        return SigningKey(load_private_key(given))
    path = project_dir / KEYS_DIR / PRIVATE_FILE
    if not path.exists():
        raise MissingSigningKey(path)
    return SigningKey(load_private_key(path))
