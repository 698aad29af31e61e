"""The drain: what a replica does between SIGTERM and the moment it stops accepting requests.

A load balancer (HAProxy's health check, a Kubernetes Service's endpoints) needs a moment to
stop sending requests to a replica that is about to stop; a replica that closed its socket at
once would see those requests fail. So at SIGTERM the replica first says it is going away:
``/readyz`` answers 503 at once, its leases are given up (the next leader takes over), and for
``serving.drain_s`` seconds it goes on answering whatever still arrives. Then uvicorn's own
graceful shutdown runs: stop accepting, finish the requests in flight (up to its graceful
timeout), and the lifespan's end flushes the prediction log and the last traffic counts. A
second SIGTERM (or SIGINT) during the drain stops at once, gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType

from modelpilot.server._state import ServerState

__all__ = ["drain_on_sigterm"]

logger = logging.getLogger("modelpilot.server")


def drain_on_sigterm(state: ServerState, loop: asyncio.AbstractEventLoop, drain_s: float) -> bool:
    """Put the drain in front of the SIGTERM handler in place (uvicorn's, which stops the
    server); whether it could (only the main thread sets signal handlers, and only in front
    of a handler that is a function)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    stop = signal.getsignal(signal.SIGTERM)
    if not callable(stop):
        return False

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if state.draining:  # asked again: stop now
            stop(signum, frame)
            return
        state.draining = True
        logger.info(
            "SIGTERM: /readyz answers 503; serving on for %.1f s (serving.drain_s), then stopping",
            drain_s,
        )
        # A signal handler runs between two bytecodes of the main thread, which runs the loop:
        # hand the timer to the loop instead of touching it from here.
        loop.call_soon_threadsafe(loop.call_later, drain_s, _stop_once, state, stop, signum)

    signal.signal(signal.SIGTERM, on_sigterm)
    return True


def _stop_once(state: ServerState, stop: object, signum: int) -> None:
    if callable(stop):
        stop(signum, None)
