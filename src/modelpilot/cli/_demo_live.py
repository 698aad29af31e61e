"""The second half of `modelpilot demo`: the seed's whole story on a live server.

The house-price model is served; traffic arrives with its true prices a moment later; then
people start building larger houses (data drift) and prices rise (concept drift). Drift and
performance alerts fire; the deployment drops to partial automation, deferring the houses it
has never seen the like of to the review queue; retraining is triggered; the new version runs
in shadow, then as a canary, and the gates promote it. The project file gets short intervals
so all this fits in about a minute (``_demo_live_project.py``); every step is a real server, real
HTTP, real database.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from modelpilot.cli._demo_live_project import configure_live

__all__ = ["run_live_story"]

PREDICT_TOKEN = "demo-predict-token"
ADMIN_TOKEN = "demo-admin-token"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Traffic:
    """Client threads: one house per request, its true price sent as feedback right after."""

    def __init__(self, url: str, *, threads: int = 3) -> None:
        self.url = url
        self.threads = threads
        self.phase = "normal"
        self.stop = threading.Event()
        self.sent = 0
        self.failed = 0
        self.deferred = 0
        self.truth: dict[str, float] = {}
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def _rows(self, drifted: bool, seed: int) -> list[dict[str, Any]]:
        from modelpilot.datasets import house_prices

        frame = house_prices(
            3000,
            seed=seed,
            size_shift=0.3 if drifted else 0.0,
            price_inflation=0.25 if drifted else 0.0,
        )
        records = frame.to_dict("records")
        return [{str(k): (None if v != v else v) for k, v in r.items()} for r in records]

    def _run(self, index: int) -> None:
        normal = self._rows(False, 100 + index)
        drifted = self._rows(True, 200 + index)
        rng = random.Random(index)
        headers = {"Authorization": f"Bearer {PREDICT_TOKEN}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=30) as client:
            while not self.stop.is_set():
                row = dict(rng.choice(drifted if self.phase == "drift" else normal))
                price = row.pop("price")
                try:
                    response = client.post(
                        "/v1/deployments/house-prices/predict",
                        json={"instances": [row], "key": f"user-{rng.randrange(1000)}"},
                    )
                except httpx.HTTPError:
                    with self._lock:
                        self.failed += 1
                    continue
                with self._lock:
                    self.sent += 1
                    if response.status_code != 200:
                        self.failed += 1
                        continue
                item = response.json()["predictions"][0]
                if "review_id" in item:
                    with self._lock:
                        self.deferred += 1
                        self.truth[item["review_id"]] = price
                    continue  # a person will decide this one
                client.post("/v1/feedback", json={"prediction_id": item["id"], "label": price})
                time.sleep(0.01)

    def start(self) -> None:
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(index,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def finish(self) -> None:
        self.stop.set()
        for worker in self._workers:
            worker.join(30)


def _wait(what: str, check: Callable[[], Any], timeout: float, say: Callable[[str], None]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(0.5)
    say(f"[yellow]not within {timeout:.0f}s: {what}; the story goes on[/]")
    return None


def run_live_story(
    root: Path, say: Callable[[str], None], stage: Callable[[str, str], None]
) -> list[tuple[str, str]]:
    """Run the story; returns summary lines. The server is stopped before returning."""
    configure_live(root)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MODELPILOT_PREDICT_TOKEN": PREDICT_TOKEN,
        "MODELPILOT_ADMIN_TOKEN": ADMIN_TOKEN,
    }
    executable = Path(sys.executable).with_name("modelpilot")
    command = [
        str(executable) if executable.exists() else "modelpilot",
        "-p",
        str(root),
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    log = open(root / "server.log", "w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    admin = httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
    )
    traffic = _Traffic(url)
    started = time.time()
    events: list[tuple[float, str]] = []

    def note(text: str) -> None:
        events.append((time.time() - started, text))
        say(f"  t+{time.time() - started:5.1f}s  {text}")

    try:
        stage(
            "5. Deployment (online)",
            "The production model is served over HTTP; users ask "
            "for prices and, a moment later, the true sale price comes back as feedback.",
        )
        if not _wait(
            "the server is ready", lambda: admin.get("/readyz").status_code == 200, 60, say
        ):
            raise RuntimeError(f"the server did not start; see {root / 'server.log'}")
        note(f"serving house-prices v2 at {url}")
        traffic.start()
        _wait("traffic", lambda: traffic.sent >= 250, 60, say)
        note(f"{traffic.sent} requests answered, labels flowing back")

        stage(
            "6. The world changes",
            "People start building larger houses (data drift) and "
            "prices rise for the same house (concept drift).",
        )
        traffic.phase = "drift"
        note("traffic now: 30% larger houses, prices 25% higher")

        def alerts_fired() -> list[dict[str, Any]]:
            payload = admin.get("/v1/alerts").json()
            return [a for a in payload.get("active", []) if a.get("state") == "firing"]

        seen: set[str] = set()

        def performance_alert() -> bool:
            for alert in alerts_fired():
                if alert["rule"] not in seen:
                    seen.add(alert["rule"])
                    value = alert.get("value")
                    shown = f"{value:,.4g}" if isinstance(value, float) else value
                    note(f"alert {alert['rule']} fired (value {shown})")
            return "key_metric_mae" in seen

        _wait("the MAE alert", performance_alert, 90, say)

        def degree() -> str:
            return str(admin.get("/v1/deployments/house-prices/automation").json()["degree"])

        if _wait("partial automation", lambda: degree() != "full", 30, say):
            note(f"automation lowered to {degree()}: uncertain houses go to the review queue")

        stage(
            "7. Retraining",
            "The alert's action retrains on the exported data (the "
            "training set plus the logged houses with their true prices), registers the new "
            "version, compares it with production, and deploys it: shadow, then canary.",
        )

        def new_rollout() -> dict[str, Any] | None:
            status: dict[str, Any] = admin.get("/v1/deployments/house-prices/status").json()
            rollout: dict[str, Any] | None = status.get("rollout") or None
            return rollout

        from modelpilot.automation import RetrainLoop
        from modelpilot.project import Project

        loop = RetrainLoop(Project.open(root))
        outcome: dict[str, Any] = {}

        def retrained() -> bool:
            runs = loop.runs(limit=1)
            if runs and runs[0].status != "running" and "run" not in outcome:
                outcome["run"] = runs[0]
                details = runs[0].details
                note(
                    f"retraining run {runs[0].id} {runs[0].status}: "
                    + ", ".join(
                        f"{k} {details[k]}"
                        for k in (
                            "reference_rows",
                            "logged_rows",
                            "holdout_rows",
                            "reason",
                            "error",
                        )
                        if k in details
                    )
                )
            return "run" in outcome and (
                outcome["run"].status != "succeeded" or new_rollout() is not None
            )

        _wait("a retraining run", retrained, 120, say)
        rollout = new_rollout() if outcome.get("run") is not None else None
        if rollout:
            note(
                f"v{rollout['candidate_version']} registered and deployed as {rollout['strategy']}"
            )
            if _wait(
                "the canary phase",
                lambda: (new_rollout() or {}).get("strategy") == "canary",
                40,
                say,
            ):
                note("shadow phase passed: canary begins")

            def finished() -> dict[str, Any] | None:
                status: dict[str, Any] = admin.get("/v1/deployments/house-prices/status").json()
                return None if status.get("rollout") else status

            final = _wait("the canary's verdict", finished, 150, say)
            if final:
                recent = (final.get("recent") or [{}])[0]
                made = [h["decision"] for h in recent.get("history", []) if "decision" in h]
                evidence = f" (decided on {made[-1]['evidence']})" if made else ""
                note(
                    f"canary {recent.get('status')}{evidence}: {recent.get('reason')}; "
                    f"serving v{final['version']}"
                )

        stage(
            "8. People in the loop",
            "The deployment runs at partial automation: houses "
            "unlike any it was trained on wait for a person. A reviewer decides a few.",
        )
        decided = 0
        for review_id, price in list(traffic.truth.items())[:5]:
            response = admin.post(f"/v1/reviews/{review_id}/decision", json={"value": price})
            decided += response.status_code == 200
        queue = admin.get("/v1/reviews").json()["stats"]
        note(
            f"{traffic.deferred} predictions deferred to people; {decided} decided now, "
            f"{queue['pending']} waiting"
        )
    finally:
        traffic.finish()
        admin.close()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    summary = [
        ("Online", f"{traffic.sent:,} requests, {traffic.failed} failed"),
        ("Timeline", "\n".join(f"t+{t:5.1f}s {text}" for t, text in events)),
    ]
    return summary
