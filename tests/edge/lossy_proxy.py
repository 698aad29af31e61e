"""A TCP proxy in front of a live server that can lose answers: it forwards a request, lets
the server answer it (and commit), and closes the client's connection instead of passing the
answer on. What a device meets when its network drops at the worst moment."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class LossyProxy:
    """Forwards HTTP/1.1 requests with ``Connection: close`` (urllib's) to ``upstream``.

    ``lose`` holds the numbers (1, 2, ...) of the POST requests whose answers are lost.
    """

    def __init__(self, upstream: tuple[str, int], lose: set[int]) -> None:
        self.upstream = upstream
        self.lose = set(lose)
        self.posts = 0
        self.lost = 0
        self._lock = threading.Lock()

    def handle(self, client: socket.socket) -> None:
        request = _read_request(client)
        with self._lock:
            drop = False
            if request.startswith(b"POST"):
                self.posts += 1
                drop = self.posts in self.lose
                self.lost += drop
        with socket.create_connection(self.upstream, timeout=60) as server:
            server.sendall(request)
            answer = b""
            while chunk := server.recv(1 << 16):
                answer += chunk
        if not drop:
            client.sendall(answer)


def _read_request(client: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(1 << 16)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        body += client.recv(1 << 16)
    return head + b"\r\n\r\n" + body


@contextmanager
def lossy_proxy(url: str, *, lose: set[int]) -> Iterator[tuple[str, LossyProxy]]:
    """``(proxy URL, proxy)`` in front of the server at ``url`` for the block's duration."""
    host, port = url.removeprefix("http://").split(":")
    proxy = LossyProxy((host, int(port)), lose)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            proxy.handle(self.request)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
