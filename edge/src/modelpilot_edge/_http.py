"""A few HTTP calls with the standard library (urllib): the runner needs no HTTP package."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["HttpAnswer", "request"]


@dataclass
class HttpAnswer:
    """What the server answered: its status and body (None: no answer at all, ``error`` why)."""

    status: int | None
    body: bytes
    error: str = ""

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def message(self) -> str:
        """The server's error message (its ``message`` field) or what went wrong."""
        if self.status is None:
            return self.error
        try:
            payload = self.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("message"), str):
            return f"{self.status}: {payload['message']}"
        return f"{self.status}: {self.body[:200].decode('utf-8', 'replace')}"

    @property
    def retryable(self) -> bool:
        """No answer, a server error, or "busy" (429): worth trying again; other 4xx are not."""
        return self.status is None or self.status >= 500 or self.status in (408, 429)


def request(
    method: str,
    url: str,
    *,
    token: str | None,
    body: Any = None,
    timeout_s: float = 30.0,
    headers: Mapping[str, str] | None = None,
) -> HttpAnswer:
    """One request; never raises for an HTTP status or a connection failure."""
    # Imported here: urllib.request (with http.client and email) costs ~25 ms at start-up,
    # and a device that only predicts never needs it.
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
    sent = {"Accept": "application/json", **(headers or {})}
    if data is not None:
        sent["Content-Type"] = "application/json"
    if token:
        sent["Authorization"] = f"Bearer {token}"
    prepared = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with urllib.request.urlopen(prepared, timeout=timeout_s) as response:
            return HttpAnswer(int(response.status), response.read())
    except urllib.error.HTTPError as exc:
        return HttpAnswer(int(exc.code), exc.read())
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return HttpAnswer(None, b"", f"cannot reach {url}: {reason}")
