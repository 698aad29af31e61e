"""Client load for a local cluster: threads sending one-house predictions, counting answers."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Load", "LoadResult"]


@dataclass
class LoadResult:
    """What the clients got: the ids and versions of the answered predictions, and failures."""

    ids: list[str] = field(default_factory=list)
    versions: Counter[int] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    cpu_s: float = 0.0
    seconds: float = 0.0

    @property
    def answered(self) -> int:
        return len(self.ids)

    @property
    def failed(self) -> int:
        return sum(self.failures.values())


class Load:
    """``threads`` clients posting to ``url`` until :meth:`stop` (or ``total`` requests)."""

    def __init__(
        self,
        url: str,
        *,
        threads: int = 4,
        total: int | None = None,
        deployment: str = "houses",
        pause_s: float = 0.0,
    ) -> None:
        from modelpilot.datasets import house_prices

        self.url = url
        self.threads = threads
        self.total = total
        self.path = f"/v1/deployments/{deployment}/predict"
        self.pause_s = pause_s
        frame = house_prices(200, seed=11).drop(columns="price")
        self.rows: list[dict[str, Any]] = [
            {str(k): (None if v != v else v) for k, v in r.items()}
            for r in frame.to_dict("records")
        ]
        self.result = LoadResult()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sent = 0
        self._workers: list[threading.Thread] = []
        self._started = 0.0

    def _next(self) -> bool:
        with self._lock:
            if self._stop.is_set() or (self.total is not None and self._sent >= self.total):
                return False
            self._sent += 1
            return True

    def _run(self, index: int) -> None:
        with httpx.Client(base_url=self.url, timeout=60.0) as client:
            i = index
            while self._next():
                row = self.rows[i % len(self.rows)]
                i += self.threads
                try:
                    response = client.post(self.path, json={"instances": [row]})
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.result.failures[type(exc).__name__] += 1
                    continue
                with self._lock:
                    if response.status_code == 200:
                        body = response.json()
                        self.result.ids.append(body["predictions"][0]["id"])
                        self.result.versions[int(body.get("version", 0))] += 1
                    else:
                        self.result.failures[f"HTTP {response.status_code}"] += 1
                if self.pause_s:
                    time.sleep(self.pause_s)

    def start(self) -> Load:
        self._started = time.monotonic()
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> LoadResult:
        """Stop sending, wait for the answers under way; what the clients got."""
        self._stop.set()
        return self.wait()

    def wait(self) -> LoadResult:
        for worker in self._workers:
            worker.join(120)
        self.result.seconds = time.monotonic() - self._started
        return self.result
