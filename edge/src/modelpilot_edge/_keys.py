"""Ed25519 keys and signatures: bundles' manifests and the server's assignments are signed.

PyNaCl (libsodium) does the cryptography; README.md says why it and not ``cryptography``
(a quarter of the size, as fast). Keys are text: ``ed25519-public:<64 hex digits>`` and
``ed25519-private:<64 hex digits>`` (the 32-byte seed), one line each, so a key can sit in a
file, an environment variable or a configuration management system alike. A document (an
assignment) is signed as its canonical JSON: sorted keys, no spaces, ASCII.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import KeyRejected

__all__ = [
    "KeyPair",
    "canonical_json",
    "generate_keys",
    "key_id",
    "load_private_key",
    "load_public_key",
    "public_of",
    "public_text",
    "sign",
    "sign_document",
    "verify",
    "verify_document",
]

_PUBLIC = "ed25519-public:"
_PRIVATE = "ed25519-private:"


@dataclass(frozen=True)
class KeyPair:
    """A private key (the 32-byte seed) and its public key, both as text."""

    private: str
    public: str


def generate_keys() -> KeyPair:
    """A new key pair.

    Examples
    --------
    >>> keys = generate_keys()
    >>> keys.public.startswith("ed25519-public:"), len(keys.public)
    (True, 79)
    """
    from nacl.signing import SigningKey

    signing = SigningKey.generate()
    return KeyPair(_PRIVATE + bytes(signing).hex(), _PUBLIC + bytes(signing.verify_key).hex())


def _read(value: str | os.PathLike[str], prefix: str, what: str) -> bytes:
    text = str(value).strip()
    if not text.startswith(prefix):
        path = Path(text).expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise KeyRejected(
                f"the {what} key {str(value)[:80]!r} is neither a key ({prefix}<64 hex digits>) "
                f"nor a readable file ({exc.strerror}); `modelpilot keys create` makes a pair"
            ) from None
    if not text.startswith(prefix):
        other = _PRIVATE if prefix == _PUBLIC else _PUBLIC
        hint = f"; it is an {other[:-1]} key" if text.startswith(other) else ""
        raise KeyRejected(
            f"{str(value)[:80]!r} does not hold an {what} key (expected a line "
            f"{prefix}<64 hex digits>{hint}); `modelpilot keys create` makes a pair"
        )
    try:
        raw = bytes.fromhex(text[len(prefix) :])
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise KeyRejected(f"the {what} key {text[:40]}... is not 64 hex digits after {prefix}")
    return raw


def load_public_key(value: str | os.PathLike[str]) -> bytes:
    """The 32 bytes of a public key, from its text or a file holding it."""
    return _read(value, _PUBLIC, "ed25519-public")


def load_private_key(value: str | os.PathLike[str]) -> bytes:
    """The 32-byte seed of a private key, from its text or a file holding it."""
    return _read(value, _PRIVATE, "ed25519-private")


def public_of(private: bytes) -> bytes:
    """The public key of a private key (its 32-byte seed)."""
    from nacl.signing import SigningKey

    return bytes(SigningKey(private).verify_key)


def public_text(public: bytes) -> str:
    """A public key as the text a key file holds."""
    return _PUBLIC + public.hex()


def key_id(public: bytes) -> str:
    """A short name of a public key, for messages: the first 16 hex digits of its sha256."""
    return hashlib.sha256(public).hexdigest()[:16]


def sign(private: bytes, data: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``data``."""
    from nacl.signing import SigningKey

    return bytes(SigningKey(private).sign(data).signature)


def verify(public: bytes, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the signature of ``data`` by ``public``'s private key.

    Examples
    --------
    >>> keys = generate_keys()
    >>> private, public = load_private_key(keys.private), load_public_key(keys.public)
    >>> signature = sign(private, b"manifest")
    >>> verify(public, b"manifest", signature), verify(public, b"manifesto", signature)
    (True, False)
    """
    fast = _verify_with_libsodium(public, data, signature)
    if fast is not None:
        return fast
    from nacl.exceptions import BadSignatureError
    from nacl.signing import VerifyKey

    try:
        VerifyKey(public).verify(data, signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


def _verify_with_libsodium(public: bytes, data: bytes, signature: bytes) -> bool | None:
    """The check ``VerifyKey.verify`` makes (libsodium's ``crypto_sign_open``), called on
    PyNaCl's compiled libsodium directly; None where that module is not there.

    Why: importing ``nacl.signing`` loads every binding of PyNaCl, ~12 ms of a device's
    ~100 ms start-up here, to verify one signature. ``nacl._sodium`` is PyNaCl's own cffi
    module (the same since PyNaCl 1.0); if a release moves it, this gives None and the public
    API verifies (a test holds both to the same answers).
    """
    try:
        from nacl._sodium import ffi, lib
    except ImportError:  # pragma: no cover - PyNaCl moved its module: the public API then
        return None
    if len(public) != 32 or len(signature) != 64:  # what VerifyKey refuses (ValueError)
        return False
    if ffi.init_once(lib.sodium_init, "libsodium") == -1:  # pragma: no cover
        return None
    signed = signature + data
    message = ffi.new("unsigned char[]", len(signed))
    length = ffi.new("unsigned long long *")
    return bool(lib.crypto_sign_open(message, length, signed, len(signed), public) == 0)


def canonical_json(document: Any) -> bytes:
    """The bytes a document is signed as: sorted keys, no spaces, ASCII."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def sign_document(private: bytes, document: dict[str, Any]) -> dict[str, Any]:
    """``{"document": document, "signature": <hex>}``: a signed JSON document."""
    return {"document": document, "signature": sign(private, canonical_json(document)).hex()}


def verify_document(public: bytes, signed: Any) -> dict[str, Any] | None:
    """The document of ``signed`` if its signature is right, else None.

    Examples
    --------
    >>> keys = generate_keys()
    >>> signed = sign_document(load_private_key(keys.private), {"version": 3})
    >>> verify_document(load_public_key(keys.public), signed)
    {'version': 3}
    >>> signed["document"]["version"] = 4
    >>> verify_document(load_public_key(keys.public), signed) is None
    True
    """
    if not isinstance(signed, dict) or not isinstance(signed.get("document"), dict):
        return None
    try:
        signature = bytes.fromhex(str(signed.get("signature", "")))
        data = canonical_json(signed["document"])
    except (ValueError, TypeError):
        return None
    document: dict[str, Any] = signed["document"]
    return document if verify(public, data, signature) else None
