"""How many connections a server holds, and for how long one may take to send its request.

Every open connection costs a file descriptor, and the process has a fixed number of them: the
prediction log's database, the control loop and the model files need some too. A flood of
connections that open and then send nothing (or an incomplete header block, slowly) used to
take every descriptor, after which even the legitimate requests failed and the controller
could not reach its database. So:

- a connection must send its request's headers within ``header_timeout`` seconds of opening
  (or of starting its next request); otherwise it is answered 408 and closed. Idle keep-alive
  connections are closed by uvicorn after ``timeout_keep_alive`` seconds;
- the server holds at most ``max_connections`` (by default the descriptor limit less a
  reserve of :data:`FD_RESERVE`). Past it, a new connection closes the oldest one that has
  not sent its headers yet: a flood of idle connections pushes out its own oldest, while a
  legitimate request, which sends its headers at once, is answered. Only when every
  connection is busy with a request is the new one refused.

uvicorn's ``limit_concurrency`` is not used for this: it answers 503 only once a request's
headers are in, so idle connections keep their descriptors.
"""

from __future__ import annotations

import logging
import resource
from collections import OrderedDict
from typing import Protocol

__all__ = ["FD_RESERVE", "ConnectionGuard", "descriptor_limit"]

logger = logging.getLogger("modelpilot.server")

#: Descriptors kept for what is not a connection: the database, log files, model files,
#: the control loop's and the log writer's work.
FD_RESERVE = 256


class Closable(Protocol):
    def close_idle(self) -> None: ...


def descriptor_limit() -> int:
    """The process's descriptor limit, raised to its hard limit first (as far as allowed).

    Examples
    --------
    >>> descriptor_limit() > FD_RESERVE
    True
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # not allowed here: live with the soft limit
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


class ConnectionGuard:
    """Keeps the connections of one server process within ``max_connections``.

    Examples
    --------
    >>> class Conn:
    ...     closed = False
    ...     def close_idle(self) -> None:
    ...         self.closed = True
    >>> guard = ConnectionGuard(max_connections=2, header_timeout=10.0)
    >>> a, b, c = Conn(), Conn(), Conn()
    >>> guard.admit(a, open_connections=1), guard.admit(b, open_connections=2)
    (True, True)
    >>> guard.admit(c, open_connections=3), a.closed, b.closed
    (True, True, False)
    """

    def __init__(self, *, max_connections: int, header_timeout: float) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        # Connections that owe the server a request's headers, oldest first.
        self._waiting: OrderedDict[Closable, None] = OrderedDict()
        self.refused = 0
        self.evicted = 0
        self.timed_out = 0

    def admit(self, connection: Closable, *, open_connections: int) -> bool:
        """Whether a new connection may stay (it counts in ``open_connections``); makes room
        by closing the oldest waiting one when the server is full."""
        if open_connections > self.max_connections:
            oldest = next(iter(self._waiting), None)
            if oldest is None:  # every connection is busy with a request
                self.refused += 1
                return False
            self.forget(oldest)
            self.evicted += 1
            oldest.close_idle()
        self.waiting(connection)
        return True

    def waiting(self, connection: Closable) -> None:
        """``connection`` is waiting for a request's headers (newest last)."""
        self._waiting[connection] = None
        self._waiting.move_to_end(connection)

    def forget(self, connection: Closable) -> None:
        """``connection`` sent its headers, or closed."""
        self._waiting.pop(connection, None)
