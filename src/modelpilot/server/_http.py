"""uvicorn's HTTP protocol, answering the two prediction routes without ASGI's per-request work.

uvicorn stays the server (sockets, workers, signals, graceful shutdown, lifespan, keep-alive,
the httptools parser). For every request, its protocol builds an ASGI scope, a
request-response cycle with an event, ``receive``/``send`` coroutines and message dicts, and
checks each response header with a regular expression; for a prediction request that was
about half of the event loop's time per request, more than validating the request and
answering it (``benchmarks/serving.py``, py-spy). This subclass takes over only a ``POST`` to
``/v1/deployments/{name}/predict`` or ``/v2/models/{name}/infer`` on an idle HTTP/1.1
connection: it buffers the body as it arrives, calls :meth:`ServingApp.respond` and writes the
whole response in one write. Everything else (other routes, pipelined requests behind a busy
one, ``Expect: 100-continue``, upgrades, HTTP/1.0, access logging) goes through uvicorn's own
path, unchanged.

It is used through ``uvicorn.run(..., http=PredictionProtocol)`` (``modelpilot serve``); the
tests run both ways. It also keeps the connections within bounds (``_connections.py``): a
header-read timeout, and a cap that pushes out the oldest idle connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from modelpilot.server._app import ServingApp
from modelpilot.server._connections import ConnectionGuard
from modelpilot.server._errors import BodyTooLarge, error_response

__all__ = ["PredictionProtocol"]

logger = logging.getLogger("modelpilot.server")


class _Event:
    """uvicorn's connection_lost sets the cycle's event; nothing waits on ours."""

    def set(self) -> None:
        return None


class _PredictionCycle:
    """One prediction request on the fast path: what uvicorn's protocol asks of a cycle
    (``response_complete``, ``keep_alive``, ``disconnected``, ``message_event``), and the body."""

    __slots__ = (
        "chunks",
        "disconnected",
        "headers",
        "keep_alive",
        "message_event",
        "name",
        "response_complete",
        "size",
        "started",
        "too_large",
        "v2",
    )

    def __init__(
        self, name: str, v2: bool, headers: list[tuple[bytes, bytes]], keep_alive: bool
    ) -> None:
        self.name = name
        self.v2 = v2
        self.headers = headers
        self.keep_alive = keep_alive
        self.chunks: list[bytes] = []
        self.size = 0
        self.too_large = False
        self.started = False
        self.response_complete = False
        self.disconnected = False
        self.message_event = _Event()


def _serving_app(app: Any) -> ServingApp | None:
    """The ServingApp inside uvicorn's middleware wrappers (each keeps the next as ``.app``)."""
    for _ in range(8):
        if isinstance(app, ServingApp):
            return app
        app = getattr(app, "app", None)
        if app is None:
            return None
    return None


class PredictionProtocol(HttpToolsProtocol):
    """HttpToolsProtocol with a direct path for prediction requests (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.serving = _serving_app(self.app)
        # The direct path writes no access log and does not rewrite the root path: where
        # those are configured, every request takes uvicorn's path.
        self.direct = self.serving is not None and not self.access_log and not self.root_path
        self.guard: ConnectionGuard | None = (
            self.serving.connection_guard if self.serving is not None else None
        )
        self._header_timer: asyncio.TimerHandle | None = None

    # ---- connections (see _connections.py) -----------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self.guard
        if guard is None:
            return
        if not guard.admit(self, open_connections=len(self.connections)):
            transport.close()  # every connection is busy: refuse, keep the descriptor
            return
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        if self.guard is not None:
            self.guard.forget(self)
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:
            self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.guard is not None and not self.transport.is_closing():
            self.guard.waiting(self)  # idle between requests: the first to go when full

    def _arm_header_timer(self) -> None:
        if self.guard is not None:
            self._header_timer = self.loop.call_later(
                self.guard.header_timeout, self._headers_too_slow
            )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        if self.guard is not None:
            self.guard.timed_out += 1
        timeout = self.guard.header_timeout if self.guard is not None else 0.0
        message = f"the request's headers did not arrive within {timeout:g} s".encode()
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\nconnection: close\r\n"
            + b"content-length: "
            + str(len(message)).encode()
            + b"\r\n\r\n"
            + message
        )
        self.close_idle()

    def close_idle(self) -> None:
        """Close this connection, which holds no request in progress (ConnectionGuard)."""
        self._cancel_header_timer()
        if self.guard is not None:
            self.guard.forget(self)
        self.transport.close()

    # ---- parser callbacks ---------------------------------------------------------------
    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        if self.guard is not None:
            self.guard.forget(self)
        serving = self.serving
        if self.direct and serving is not None and self._idle():
            parser = self.parser
            if (
                parser.get_method() == b"POST"
                and parser.get_http_version() == "1.1"
                and not self.expect_100_continue
                and not parser.should_upgrade()
            ):
                path = self.url.partition(b"?")[0]
                if b"%" not in path:
                    route = serving.route(path.decode("ascii", "replace"))
                    if route is not None:
                        self.scope["method"] = "POST"
                        cycle = _PredictionCycle(
                            route[0], route[1], self.headers, parser.should_keep_alive()
                        )
                        self.cycle = cycle  # type: ignore[assignment]
                        for key, value in self.headers:
                            if key == b"content-length":
                                if value.isdigit() and int(value) > serving.max_body:
                                    self._too_large(cycle)
                                break
                        return
        super().on_headers_complete()

    def _idle(self) -> bool:
        # A request behind one still being answered on this connection (pipelining) must be
        # answered after it: uvicorn's own path queues it.
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            return False
        if self.pipeline:
            return False
        limit = self.limit_concurrency
        return limit is None or (len(self.connections) < limit and len(self.tasks) < limit)

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if not isinstance(cycle, _PredictionCycle):
            super().on_body(body)
            return
        if cycle.too_large:
            return
        cycle.size += len(body)
        if self.serving is not None and cycle.size > self.serving.max_body:
            cycle.chunks.clear()
            self._too_large(cycle)
            return
        cycle.chunks.append(body)

    def on_message_complete(self) -> None:
        cycle = self.cycle
        if not isinstance(cycle, _PredictionCycle):
            super().on_message_complete()
            return
        self._start(cycle)

    def _too_large(self, cycle: _PredictionCycle) -> None:
        # Answer 413 at once, without waiting for (or reading) the rest of the body, and
        # close the connection after it: what is still on its way is not a next request.
        cycle.too_large = True
        cycle.keep_alive = False
        self._start(cycle)

    def _start(self, cycle: _PredictionCycle) -> None:
        if cycle.started:
            return
        cycle.started = True
        task = self.loop.create_task(self._answer(cycle))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    # ---- answering ----------------------------------------------------------------------
    async def _answer(self, cycle: _PredictionCycle) -> None:
        serving = self.serving
        if serving is None:  # pragma: no cover - the path is only taken with an app
            return
        limit = serving.max_body

        async def body() -> bytes:
            if cycle.too_large:
                raise BodyTooLarge(limit)
            return b"".join(cycle.chunks)

        try:
            status, headers, payload = await serving.respond(
                cycle.name, cycle.v2, cycle.headers, body
            )
        except Exception as exc:  # respond answers every error itself; this is a last resort
            status, payload = error_response(exc, v2=cycle.v2, where="a prediction request")
            headers = [(b"content-type", b"application/json")]
        self._write(cycle, status, headers, payload)

    def _write(
        self,
        cycle: _PredictionCycle,
        status: int,
        headers: list[tuple[bytes, bytes]],
        payload: bytes,
    ) -> None:
        cycle.response_complete = True
        transport = self.transport
        if cycle.disconnected or transport.is_closing():
            return
        parts = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            parts += [name, b": ", value, b"\r\n"]
        for name, value in headers:
            parts += [name, b": ", value, b"\r\n"]
        parts += [b"content-length: ", str(len(payload)).encode(), b"\r\n"]
        if not cycle.keep_alive:
            parts.append(b"connection: close\r\n")
        parts += [b"\r\n", payload]
        transport.write(b"".join(parts))
        self.on_response_complete()  # uvicorn's: counts it, resumes reading, next in line
        if not cycle.keep_alive and not transport.is_closing():
            transport.close()
