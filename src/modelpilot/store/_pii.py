"""Personal data in the prediction log: features marked ``pii: true`` are keyed-hashed or dropped.

A keyed hash (HMAC-SHA256) rather than a plain hash: plain hashes of low-entropy values such as
emails or phone numbers can be reversed by hashing every candidate; without the key they cannot.
The same value still maps to the same token, so joins and counts keep working.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from modelpilot.spec import FeatureSpec

__all__ = ["PiiScrubber", "load_pii_key"]


def load_pii_key(directory: Path, environ: Mapping[str, str]) -> bytes:
    """``MODELPILOT_PII_KEY``, else a random key kept in ``.modelpilot/pii.key`` (mode 0600)."""
    if environ.get("MODELPILOT_PII_KEY"):
        return environ["MODELPILOT_PII_KEY"].encode()
    path = directory / ".modelpilot" / "pii.key"
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(key)
    return key


class PiiScrubber:
    """Replaces pii feature values before they are logged.

    Examples
    --------
    >>> from modelpilot.spec import FeatureSpec
    >>> scrub = PiiScrubber([FeatureSpec(name="email", type="text", pii=True),
    ...                      FeatureSpec(name="x", type="numeric")], mode="hash", key=b"k")
    >>> out = scrub.record({"email": "a@b.c", "x": 1.0})
    >>> out["x"], out["email"].startswith("hmac:"), len(out["email"])
    (1.0, True, 37)
    >>> PiiScrubber([FeatureSpec(name="email", type="text", pii=True)], mode="drop",
    ...             key=b"k").record({"email": "a@b.c"})
    {}
    """

    def __init__(self, features: Sequence[FeatureSpec], *, mode: str, key: bytes) -> None:
        self.fields = [f.name for f in features if f.pii]
        self.mode = mode
        self.key = key

    @property
    def active(self) -> bool:
        return bool(self.fields)

    def token(self, value: Any) -> str | None:
        if value is None:
            return None
        digest = hmac.new(self.key, str(value).encode(), hashlib.sha256).hexdigest()
        return "hmac:" + digest[:32]

    def record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(record)
        for name in self.fields:
            if name in out:
                if self.mode == "drop":
                    del out[name]
                else:
                    out[name] = self.token(out[name])
        return out

    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        present = [name for name in self.fields if name in frame]
        if not present:
            return frame
        if self.mode == "drop":
            return frame.drop(columns=present)
        out = frame.copy()
        for name in present:
            out[name] = [self.token(v) if not pd.isna(v) else None for v in out[name]]
        return out
