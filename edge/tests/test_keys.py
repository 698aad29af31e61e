"""Signatures: the check on PyNaCl's libsodium (no nacl.signing at start-up) answers as
PyNaCl's public API does."""

from __future__ import annotations

import subprocess
import sys

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey

from modelpilot_edge import KeyPair, generate_keys, load_private_key, load_public_key
from modelpilot_edge._keys import _verify_with_libsodium, sign


def _public_api(public: bytes, data: bytes, signature: bytes) -> bool:
    try:
        VerifyKey(public).verify(data, signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


def test_the_libsodium_check_agrees_with_verify_key(keys: KeyPair) -> None:
    private, public = load_private_key(keys.private), load_public_key(keys.public)
    other = load_public_key(generate_keys().public)
    signature = sign(private, b"manifest")
    cases = [
        (public, b"manifest", signature),
        (public, b"manifesto", signature),
        (other, b"manifest", signature),
        (public, b"manifest", signature[:-1] + bytes([signature[-1] ^ 1])),
        (public, b"manifest", signature[:63]),
        (public[:31], b"manifest", signature),
        (public, b"", sign(private, b"")),
    ]
    for case in cases:
        fast = _verify_with_libsodium(*case)
        assert fast is not None, "the libsodium path is not in use"
        assert fast == _public_api(*case), case


def test_opening_a_bundle_imports_none_of_what_it_does_not_need(
    linear_bundle: object, keys: KeyPair
) -> None:
    """nacl.signing (all of PyNaCl's bindings), logging (warnings only), socket (the host's
    name comes from os.uname): ~30 ms of a device's start-up together."""
    code = (
        "import sys\nfrom modelpilot_edge import Bundle\n"
        f"Bundle.open({str(linear_bundle)!r}, public_key={keys.public!r}, logging=False)\n"
        "print(*(m in sys.modules for m in ('nacl.signing', 'nacl.bindings', 'logging', "
        "'socket')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.split() == ["False"] * 4
