"""``modelpilot serve`` replicas of one project, each a process of its own on its own port."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

import httpx

from modelpilot.cluster._postgres import free_port
from modelpilot.cluster._process import ChildProcess, ClusterError, wait_until

__all__ = ["Replica", "console_script"]


def console_script() -> str:
    """The ``modelpilot`` program beside this Python (a virtualenv's), or on PATH."""
    beside = Path(sys.executable).with_name("modelpilot")
    found = str(beside) if beside.exists() else shutil.which("modelpilot")
    if found is None:
        raise ClusterError("the `modelpilot` program was not found beside Python nor on PATH")
    return found


class Replica:
    """One replica: a port for its life, a process per start (a restart keeps the port, as
    a load balancer's server entry does)."""

    def __init__(
        self, index: int, project: Path, database_url: str, logs: Path, env: Mapping[str, str]
    ) -> None:
        self.index = index
        self.name = f"replica-{index}"
        self.project = project
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logs = logs
        self.environ = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith("MODELPILOT_") or k.startswith("MODELPILOT_TEST_")
            },
            "MODELPILOT_DATABASE_URL": database_url,
            "OMP_NUM_THREADS": "1",  # small model calls; the machine's cores are the replicas'
            **env,
        }
        self.process: ChildProcess | None = None
        self.starts = 0

    def start(self) -> Replica:
        self.starts += 1
        self.process = ChildProcess(
            self.name,
            [console_script(), "-p", str(self.project), "serve", "--port", str(self.port)],
            self.logs / f"{self.name}.{self.starts}.log",
            env=self.environ,
        ).start()
        return self

    def ready(self) -> bool:
        return httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200

    def wait_ready(self, timeout: float = 120.0) -> None:
        wait_until(
            self.ready,
            what=f"waiting for {self.name} to be ready",
            timeout=timeout,
            alive=self.process,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def stop(self, *, timeout: float = 60.0) -> int | None:
        """SIGTERM: the drain, then a graceful stop; the exit code (0 when drained)."""
        return self.process.stop(timeout=timeout) if self.process is not None else None

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
