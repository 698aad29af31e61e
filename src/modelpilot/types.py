"""Type aliases shared across modelpilot's layers (as ``starlette/types.py`` does for Starlette).

Kept to names that several packages spell the same way; a type used by one package lives there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

__all__ = ["Clock", "Message", "Receive", "Scope", "Send"]

#: Seconds since the epoch (``time.time``) or any stand-in for it: every component that reads
#: the time takes one, so tests move a fake clock instead of sleeping.
Clock: TypeAlias = Callable[[], float]

# ASGI, as the server speaks it.
Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
