"""A throwaway PostgreSQL server for a local cluster: ``initdb`` into a temporary directory,
``pg_ctl`` on 127.0.0.1, removed at the end. Debian's ``postgresql`` package provides the
programs (under ``/usr/lib/postgresql/VERSION/bin``, not on PATH). PostgreSQL refuses to run
as root; as root the server runs as the ``postgres`` user (``runuser``), as CI does."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from modelpilot.cluster._process import ClusterError

__all__ = ["TemporaryPostgres", "free_port", "postgres_program"]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_program(name: str) -> str:
    """The path of PostgreSQL's ``name`` (``initdb``, ``pg_ctl``): on PATH or Debian's."""
    found = shutil.which(name) or next(
        iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None
    )
    if found is None:
        raise ClusterError(
            f"PostgreSQL's {name} was not found (on PATH or in /usr/lib/postgresql/*/bin); "
            "install it (`apt-get install postgresql`) or pass --database-url"
        )
    return found


class TemporaryPostgres:
    """``start()`` a server in a new temporary directory on a free port; ``stop()`` it and
    delete it. (A directory of its own: the ``postgres`` user must reach it, and a private
    temporary directory of root's is closed to it.)"""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="modelpilot-postgres-"))
        self.data = self.directory / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.url = f"postgresql+psycopg://modelpilot@127.0.0.1:{self.port}/modelpilot"

    def _run(self, args: list[str]) -> None:
        command = ["runuser", "-u", "postgres", "--", *args] if self.as_root else args
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            output = (done.stderr or done.stdout)[-800:]
            raise ClusterError(f"`{' '.join(args)}` exited {done.returncode}: {output}")

    def start(self) -> TemporaryPostgres:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.as_root:
            shutil.chown(self.directory, "postgres", "postgres")
        initdb = postgres_program("initdb")
        self._run([initdb, "-D", str(self.data), "-U", "modelpilot", "--auth=trust", "-E", "UTF8"])
        self.start_again()
        self.create_database("modelpilot")
        return self

    def halt(self) -> None:
        """Stop the server, keeping its data (``start_again`` brings it back): a database that
        goes away under its clients."""
        self._run([postgres_program("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def start_again(self) -> None:
        """Start the server on its data: after ``halt``, as a restarted database comes back."""
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory}"
        log = str(self.directory / "postgres.log")
        self._run(
            [
                postgres_program("pg_ctl"),
                *("-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "60", "start"),
            ]
        )

    def create_database(self, name: str) -> str:
        """Create a database on this server; its URL."""
        if not name.isidentifier():
            raise ClusterError(f"a database name must be an identifier, got {name!r}")
        psql = [postgres_program("psql"), "-h", "127.0.0.1", "-p", str(self.port)]
        self._run(
            [*psql, "-U", "modelpilot", "-d", "postgres", "-q", "-c", f"CREATE DATABASE {name}"]
        )
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def pids(self) -> list[int]:
        """The server's processes (the postmaster and its backends), for CPU accounting."""
        import psutil

        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return []
        main = psutil.Process(int(pid_file.read_text().split()[0]))
        return [main.pid, *(child.pid for child in main.children(recursive=True))]

    def stop(self) -> None:
        if self.data.exists():
            try:
                self._run(
                    [postgres_program("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"]
                )
            except ClusterError:
                pass  # not running
        shutil.rmtree(self.directory, ignore_errors=True)
