"""One child process of a local cluster: started with its output in a file, stopped for sure."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelpilot.errors import ModelpilotError

__all__ = ["ChildProcess", "ClusterError", "wait_until"]


class ClusterError(ModelpilotError):
    """A part of the local cluster did not start, or stopped when it should not have."""

    kind = "cluster_error"


@dataclass
class ChildProcess:
    """A process this cluster started (and only those: it never signals anything else)."""

    name: str
    args: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> ChildProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                list(self.args),
                env=dict(self.env) if self.env is not None else None,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C at the terminal goes to the cluster, not here
            )
        return self

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ClusterError(f"{self.name} was not started")
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 20) -> str:
        """The end of the process's output, for error messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def send(self, sig: signal.Signals) -> None:
        if self.alive() and self.process is not None:
            self.process.send_signal(sig)

    def stop(self, *, timeout: float = 60.0, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """``sig`` (SIGTERM: a graceful stop), then SIGKILL after ``timeout``; the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as a machine that dies: no drain, no flush."""
        if self.alive() and self.process is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(30)


def wait_until(
    condition: Callable[[], object],
    *,
    what: str,
    timeout: float,
    every: float = 0.1,
    alive: ChildProcess | None = None,
) -> None:
    """Poll ``condition`` until it is truthy; a ClusterError after ``timeout`` seconds or as
    soon as ``alive`` has ended."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except Exception:  # not up yet
            pass
        if alive is not None and not alive.alive():
            raise ClusterError(f"{alive.name} ended while {what}; its output:\n{alive.tail()}")
        if time.monotonic() > deadline:
            tail = f"; {alive.name}'s output:\n{alive.tail()}" if alive is not None else ""
            raise ClusterError(f"gave up after {timeout:.0f} s {what}{tail}")
        time.sleep(every)
