"""Helpers of the alerting tests: a fake clock, a notifier that records, points fed one by one,
a real HTTP server on 127.0.0.1 that answers webhooks as each test scripts it, and shadow
traffic written to the prediction log."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fake_clock import FakeClock
from live_server import DEPLOYMENT
from modelpilot.alerting import Alert, AlertEngine
from modelpilot.monitoring import Point
from modelpilot.project import Project
from modelpilot.store import PredictionBatch, new_ids

#: The alert rules of the project with registered versions: errors roll a canary back.
CANARY_RULES = {
    "rules": [
        {
            "name": "canary_errors",
            "metric": "error_rate",
            "threshold": 0.05,
            "window_s": 10,
            "severity": "critical",
            "actions": ["rollback_canary"],
        },
        {"name": "memory", "metric": "memory_rss_bytes", "threshold": 1, "severity": "info"},
    ],
    "action_cooldown_s": 600,
}


@dataclass
class RecordingNotifier:
    """A notifier (the public protocol) that keeps every event and when it arrived."""

    events: list[dict[str, Any]] = field(default_factory=list)
    arrived: list[float] = field(default_factory=list)

    def notify(self, event: Any) -> None:
        self.events.append(dict(event))
        self.arrived.append(time.monotonic())

    def close(self, timeout: float = 5.0) -> None:
        return None

    def statuses(self) -> list[tuple[str, str]]:
        return [(e["rule"], e["status"]) for e in self.events]


def feed(
    engine: AlertEngine,
    clock: FakeClock,
    metric: str,
    values: Sequence[float],
    *,
    step: float = 10.0,
    deployment: str = DEPLOYMENT,
    labels: str = "",
) -> list[Alert]:
    """One point every ``step`` seconds, as the monitor would write them; returns what fired
    or resolved."""
    changed: list[Alert] = []
    for value in values:
        clock.advance(step)
        changed += engine.evaluate([Point(metric, deployment, value, clock(), labels)])
    return changed


# ---- a webhook receiver -------------------------------------------------------------------------
@dataclass
class Received:
    path: str
    body: dict[str, Any]
    at: float


class HookServer:
    """``ThreadingHTTPServer`` on 127.0.0.1. ``/ok`` answers 200; ``/fail`` 500; ``/hang`` waits
    until the test ends; ``/script`` answers the next status of ``script`` (then 200)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: list[int] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with hooks._lock:
                    hooks.received.append(Received(self.path, body, time.monotonic()))
                    status = 200
                    if self.path == "/fail":
                        status = 500
                    elif self.path == "/script" and hooks.script:
                        status = hooks.script.pop(0)
                if self.path == "/hang":
                    hooks.release.wait(30)
                with contextlib.suppress(OSError):  # the client may have given up on a hang
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def on(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, path: str, count: int, *, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.on(path)
            if len(found) >= count:
                return found
            time.sleep(0.01)
        raise AssertionError(f"{path} got {len(self.on(path))} request(s), expected {count}")


@contextlib.contextmanager
def hook_server() -> Iterator[HookServer]:
    hooks = HookServer()
    hooks.thread.start()
    try:
        yield hooks
    finally:
        hooks.release.set()
        hooks.server.shutdown()
        hooks.server.server_close()
        hooks.thread.join(5)


# ---- projects with registered versions (served by live_server) ---------------------------------


def update_project(directory: Path, settings: dict[str, Any]) -> None:
    path = directory / "modelpilot.yaml"
    data = yaml.safe_load(path.read_text("utf-8"))
    data.update(settings)
    path.write_text(yaml.safe_dump(data, sort_keys=False), "utf-8")


# ---- shadow traffic in the prediction log ------------------------------------------------------
#: Production's answer to every request of :func:`log_shadow_pairs`.
PRIMARY_PRICE = 200_000.0
#: The candidate's answers: 9.5% above production's agrees (within the rollout code's 10%),
#: 10.5% above does not.
AGREEING_PRICE = PRIMARY_PRICE * 1.095
DISAGREEING_PRICE = PRIMARY_PRICE * 1.105


def log_shadow_pairs(
    project: Project,
    clock: FakeClock,
    *,
    agree: int = 0,
    disagree: int = 0,
    errors: int = 0,
    primary: int = 1,
    candidate: int = 2,
) -> None:
    """What the server logs during a shadow: production (``primary``) answered
    ``agree + disagree + errors`` requests, the candidate scored copies of them
    (``source="shadow"``, the same ids), ``agree`` of them within 10%, ``disagree`` not, and
    failed on ``errors``."""
    rows = agree + disagree + errors
    ids = new_ids(rows, clock=clock)
    inputs = pd.DataFrame({"size_sqft": np.full(rows, 1500.0)})
    shadow: list[dict[str, Any]] = (
        [{"prediction": AGREEING_PRICE}] * agree
        + [{"prediction": DISAGREEING_PRICE}] * disagree
        + [{"prediction": None, "error": "ValueError"}] * errors
    )
    ts = np.full(rows, clock())
    project.prediction_log.append(
        [
            PredictionBatch(
                DEPLOYMENT, primary, ids, ts, inputs, [{"prediction": PRIMARY_PRICE}] * rows
            ),
            PredictionBatch(DEPLOYMENT, candidate, ids, ts, inputs, shadow, source="shadow"),
        ]
    )
