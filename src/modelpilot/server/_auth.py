"""Tokens for the online server: predict, review and admin roles.

Tokens live hashed (sha256) in a JSON file that ``modelpilot token create`` maintains, so the
file never holds a usable secret; ``MODELPILOT_PREDICT_TOKEN``, ``MODELPILOT_REVIEW_TOKEN`` and
``MODELPILOT_ADMIN_TOKEN`` add one token each from the environment. An admin token allows
every call; a review token reads and decides the review queue and nothing else (a reviewer is
rarely the engineer who may deploy or read the prediction log).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from modelpilot.errors import AuthError, ConfigError, ConflictError, ModelpilotError, NotFoundError

__all__ = ["ROLES", "Principal", "Role", "TokenStore"]

Role = Literal["predict", "review", "admin"]
ROLES: tuple[Role, ...] = ("predict", "review", "admin")


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role

    def allows(self, role: Role) -> bool:
        return self.role == "admin" or self.role == role


def _article(word: str) -> str:
    """``a`` or ``an`` before ``word``: "an admin token", "a predict token"."""
    return "an" if word[:1] in "aeiou" else "a"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    """Looks tokens up by their hash.

    Examples
    --------
    >>> store = TokenStore(path=None, environ={"MODELPILOT_ADMIN_TOKEN": "s3cret"})
    >>> store.authenticate("Bearer s3cret", role="admin").name
    'env:admin'
    >>> store.authenticate("Bearer nope", role="predict")
    Traceback (most recent call last):
    ...
    modelpilot.errors.AuthError: the token is not valid; check it or create one with ...
    """

    def __init__(
        self, *, path: Path | None, environ: Mapping[str, str], open_predict: bool = False
    ) -> None:
        self.path = path
        self.open_predict = open_predict
        self._env: dict[str, Principal] = {}
        for role in ROLES:
            token = environ.get(f"MODELPILOT_{role.upper()}_TOKEN")
            if token:
                self._env[_digest(token)] = Principal(f"env:{role}", role)
        self._by_digest: dict[str, Principal] = {}
        # Headers already verified, until the token table changes: a dictionary look-up per
        # request instead of a SHA-256 and a comparison with every known token.
        self._verified: dict[str, Principal] = {}
        self._mtime: float | None = None
        self._checked = 0.0
        self._reload()

    def _reload(self) -> None:
        mtime = self.path.stat().st_mtime if self.path is not None and self.path.exists() else None
        table = dict(self._env)
        for entry in self._read():
            table[entry["sha256"]] = Principal(entry["name"], entry["role"])
        self._by_digest = table
        self._verified = {}
        self._mtime = mtime

    def _refresh(self) -> None:
        # A token created or revoked with the CLI takes effect within a second, without a
        # restart; the file is stat-ed at most once a second.
        now = time.monotonic()
        if self.path is None or now - self._checked < 1.0:
            return
        self._checked = now
        mtime = self.path.stat().st_mtime if self.path.exists() else None
        if mtime != self._mtime:
            self._reload()

    def _read(self) -> list[dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            entries = data["tokens"]
            return [e for e in entries if e["role"] in ROLES and "sha256" in e and "name" in e]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                str(self.path),
                [f"{self.path}: not a valid token file ({exc}); remove it and create tokens again"],
            ) from None

    @property
    def configured(self) -> dict[Role, int]:
        counts: dict[Role, int] = dict.fromkeys(ROLES, 0)
        for principal in self._by_digest.values():
            counts[principal.role] += 1
        return counts

    def holds_token(self, header: str | None) -> bool:
        """Whether ``header`` carries a valid token (any role): what a route without a token
        shows beyond its answer (which deployments exist, why they failed) is for them only."""
        try:
            self.authenticate(header, role="predict")
        except AuthError:
            return False
        return True

    def authenticate(self, header: str | None, *, role: Role) -> Principal:
        """The caller behind an ``Authorization`` header, if it may act in ``role``."""
        if role == "predict" and self.open_predict and not header:
            return Principal("anonymous", "predict")
        self._refresh()
        if header:
            seen = self._verified.get(header)
            if seen is not None and seen.allows(role):
                return seen
        if not header:
            hint = (
                ""
                if self._by_digest
                else f"; no {role} token is configured: create one with "
                f"`modelpilot token create NAME --role {role}` or set "
                f"MODELPILOT_{role.upper()}_TOKEN"
            )
            raise AuthError(
                f"this endpoint needs {_article(role)} {role} token: send the header "
                f"'Authorization: Bearer TOKEN'{hint}",
                status=401,
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise AuthError("the Authorization header must be 'Bearer TOKEN'", status=401)
        digest = _digest(token.strip())
        principal = None
        for known, candidate in self._by_digest.items():
            if hmac.compare_digest(known, digest):
                principal = candidate
        if principal is None:
            raise AuthError(
                "the token is not valid; check it or create one with "
                f"`modelpilot token create NAME --role {role}`",
                status=401,
            )
        if len(self._verified) < 1024:
            self._verified[header] = principal
        if not principal.allows(role):
            raise AuthError(
                f"token {principal.name!r} has role {principal.role!r}; this "
                f"endpoint needs {_article(role)} {role} token",
                status=403,
            )
        return principal

    # ---- managing the file ------------------------------------------------------------
    def _write(self, entries: list[dict[str, Any]]) -> None:
        if self.path is None:
            raise ModelpilotError("no token file is configured (serving.tokens_file)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"tokens": entries}, handle, indent=2)
        os.replace(tmp, self.path)

    def create(self, name: str, role: Role, *, clock: Any = time.time) -> str:
        """Add a token and return it; only its hash is stored, so it is shown once."""
        if role not in ROLES:
            raise ModelpilotError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        entries = self._read()
        if any(e["name"] == name for e in entries):
            raise ConflictError(
                f"a token named {name!r} exists; revoke it first or pick another name"
            )
        token = "mp_" + secrets.token_urlsafe(32)
        entries.append(
            {"name": name, "role": role, "sha256": _digest(token), "created_at": clock()}
        )
        self._write(entries)
        return token

    def revoke(self, name: str) -> None:
        entries = self._read()
        kept = [e for e in entries if e["name"] != name]
        if len(kept) == len(entries):
            raise NotFoundError("token", name, hint="`modelpilot token list` shows the names")
        self._write(kept)

    def list(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in e.items() if k != "sha256"} for e in self._read()]
