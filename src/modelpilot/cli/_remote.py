"""Where the project's server listens, and a client for it.

``modelpilot serve`` binds its socket, then writes the address it got (port 0 included) to
``.modelpilot/server.json`` in the project, and removes the file when it stops. Commands that
talk HTTP find the server in this order: ``--url``, ``$MODELPILOT_URL``, that file (when the
process that wrote it still runs), the project's ``serving`` host and port, and
http://127.0.0.1:8000 outside a project.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from modelpilot.cli._root import state
from modelpilot.errors import ConfigError, ModelpilotError

if TYPE_CHECKING:
    from modelpilot.client import Client

__all__ = [
    "ListeningAddress",
    "Url",
    "address_file",
    "bind",
    "client",
    "read_address",
    "remove_address",
    "server_url",
    "write_address",
]

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="MODELPILOT_URL",
        help="Server URL (default: where `modelpilot serve` of this project listens).",
        show_default=False,
    ),
]


@dataclass(frozen=True)
class ListeningAddress:
    """What ``server.json`` holds: the URL, and the process that listens there."""

    url: str
    pid: int
    node: str
    started_at: float


def address_file(project_dir: Path) -> Path:
    return project_dir / ".modelpilot" / "server.json"


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free port), as uvicorn binds one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ModelpilotError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); another server may hold "
            "the port: pick another with --port (0: any free port) or stop the other one"
        ) from None
    sock.set_inheritable(True)  # worker processes serve on it too
    return sock


def url_of(sock: socket.socket) -> str:
    """The URL a client on this machine reaches ``sock`` at (a wildcard becomes loopback).

    Examples
    --------
    >>> with bind("127.0.0.1", 0) as sock:
    ...     url_of(sock).startswith("http://127.0.0.1:")
    True
    """
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def write_address(path: Path, url: str, *, pid: int | None = None) -> ListeningAddress:
    address = ListeningAddress(
        url, os.getpid() if pid is None else pid, platform.node(), time.time()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{address.pid}.tmp")
    tmp.write_text(json.dumps(dataclasses.asdict(address)), encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a file
    return address


def remove_address(path: Path, *, pid: int | None = None) -> None:
    """Remove the file if this process (``pid``) wrote it: a second server may have since."""
    found = read_address(path, alive=lambda _: True)
    if found is not None and found.pid == (os.getpid() if pid is None else pid):
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def read_address(path: Path, *, alive: Callable[[int], bool] = _alive) -> ListeningAddress | None:
    """The recorded address, or None: no file, an unreadable one, or one left by a server that
    was killed (its process is gone). A file written on another machine (a shared disk) is
    taken as it is: a refused connection then says which URL was tried."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        address = ListeningAddress(
            str(data["url"]), int(data["pid"]), str(data["node"]), float(data["started_at"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if address.node == platform.node() and not alive(address.pid):
        return None
    return address


def server_url(url: str | None, *, environ: Mapping[str, str] | None = None) -> str:
    """The URL of the server to talk to (see the module's docstring for the order)."""
    env = os.environ if environ is None else environ
    if url:
        return url
    if env.get("MODELPILOT_URL"):
        return env["MODELPILOT_URL"]
    from modelpilot.client import DEFAULT_URL
    from modelpilot.project import Project
    from modelpilot.spec import find_project_dir

    directory = state.project_dir or env.get("MODELPILOT_PROJECT")
    if directory is None:
        try:
            directory = find_project_dir()
        except ConfigError:
            return DEFAULT_URL  # outside a project: the default address
    project = Project.open(directory, environ=env)
    recorded = read_address(address_file(project.directory))
    if recorded is not None:
        return recorded.url
    settings = project.spec.serving
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    return f"http://[{host}]:{settings.port}" if ":" in host else f"http://{host}:{settings.port}"


def client(url: str | None, token: str | None, *, admin: bool = False) -> Client:
    """A client for the project's server; the token defaults to ``$MODELPILOT_TOKEN`` (and,
    for admin commands, ``$MODELPILOT_ADMIN_TOKEN`` first)."""
    from modelpilot.client import Client

    env = os.environ
    token = token or (env.get("MODELPILOT_ADMIN_TOKEN") if admin else None)
    return Client(server_url(url), token=token or env.get("MODELPILOT_TOKEN"))
