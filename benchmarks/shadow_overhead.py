"""Shadow traffic's cost to the primary: its latency without and with a shadow rollout.

Run: ``.venv/bin/python benchmarks/shadow_overhead.py [--rate 40] [--threads 8] [--duration 20]
[--warmup 3] [--rounds 2]``

One ``modelpilot serve`` pinned to core 0 (``taskset -c 0``, ``OMP_NUM_THREADS=1``) serves the
demo's house-price model (one-hot categories and gradient-boosted trees, saved with skops),
with the project file's defaults: prediction logging and monitoring on, adaptive
micro-batching. Client threads, pinned to core 1, send one-row predictions at a fixed total
rate, each request at its scheduled time (a moderate load, not the server's maximum).

The conditions alternate round by round, so that the slow drift of a shared machine hits both
alike: *none* (no rollout) and *shadow* (``deploy --strategy shadow`` of v2, an identical copy
of the model: the primary answers every request, then v2 scores a copy, logged with
``source="shadow"``). Latency is the client's, from sending a request to its answer; the
server's own (``latency_ms`` of the primary's rows in the prediction log) is printed beside it.

Goal (issue 5): with a shadow rollout the primary's latency grows by at most 5%.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
SERVER_CORE, LOAD_CORE = "0", "1"
PREDICT_TOKEN, ADMIN_TOKEN = "bench-predict", "bench-admin"
NAME = "houses"


# ---- the project ------------------------------------------------------------------------------
def build_project(directory: Path) -> list[dict[str, Any]]:
    """Train the model, write the project, register it twice (v1 at @production, v2 a copy);
    returns request records from the holdout."""
    import skops.io as sio
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from modelpilot.cli._app import main
    from modelpilot.datasets import HOUSE_FEATURES, house_prices
    from modelpilot.spec import render_project

    frame = house_prices(3000, seed=7)
    train, holdout = frame.iloc[:2400], frame.iloc[2400:].reset_index(drop=True)
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
        remainder="passthrough",
    )
    model = make_pipeline(encode, HistGradientBoostingRegressor(max_iter=60, random_state=0))
    model.fit(train.drop(columns="price"), train["price"])
    sio.dump(model, directory / "house.skops")
    holdout.to_parquet(directory / "holdout.parquet")
    (directory / "modelpilot.yaml").write_text(
        render_project(project=NAME, task="regression", target="price", features=HOUSE_FEATURES),
        encoding="utf-8",
    )
    for alias in (["--alias", "production"], []):
        args = ["-p", str(directory), "register", str(directory / "house.skops")]
        args += ["--eval", str(directory / "holdout.parquet"), *alias]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(args)
        if code != 0:
            sys.exit(f"register failed ({code}): {out.getvalue()}")
    features = holdout.drop(columns="price")
    records: list[dict[str, Any]] = (
        features.astype(object).where(features.notna(), None).to_dict("records")
    )
    return records


# ---- the server -------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]

    def request(self, method: str, path: str, body: Any = None, token: str = ADMIN_TOKEN) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            data = response.read()
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: HTTP {response.status} {data[:300]!r}")
            return json.loads(data)
        finally:
            connection.close()


def start_server(directory: Path, log: Path) -> Server:
    port = free_port()
    command = [
        str(VENV / "bin" / "modelpilot"),
        "-p",
        str(directory),
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    if hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) > 1:
        command = ["taskset", "-c", SERVER_CORE, *command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELPILOT_")}
    env.update(
        MODELPILOT_PREDICT_TOKEN=PREDICT_TOKEN,
        MODELPILOT_ADMIN_TOKEN=ADMIN_TOKEN,
        OMP_NUM_THREADS="1",
    )
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(port, process)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                connection.close()
                return server
        time.sleep(0.2)  # the pause between readiness polls
    process.kill()
    sys.exit(f"the server was not ready after 180 s:\n{log.read_text()[-2000:]}")


def stop_server(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(60)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(30)


# ---- the load ---------------------------------------------------------------------------------
@dataclass
class Measurement:
    condition: str
    started: float
    ended: float
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0


def run_load(
    server: Server,
    records: list[dict[str, Any]],
    *,
    rate: float,
    threads: int,
    seconds: float,
    condition: str,
) -> Measurement:
    """``threads`` clients, together ``rate`` requests a second, each at its scheduled time."""
    measurement = Measurement(condition, time.time(), 0.0)
    lock = threading.Lock()
    interval = threads / rate
    begin = time.perf_counter() + 0.05
    path = f"/v1/deployments/{NAME}/predict"
    headers = {"Authorization": f"Bearer {PREDICT_TOKEN}", "Content-Type": "application/json"}

    def client(index: int) -> None:
        rng = np.random.default_rng(index)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        # Spread the threads' schedules evenly over one interval.
        next_at = begin + interval * index / threads
        latencies, failures = [], 0
        while next_at < begin + seconds:
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)  # open-loop pacing of the fixed rate
            body = json.dumps({"instances": [records[rng.integers(len(records))]]})
            sent = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            if ok:
                latencies.append((time.perf_counter() - sent) * 1000)
            else:
                failures += 1
            next_at += interval
        connection.close()
        with lock:
            measurement.latencies_ms.extend(latencies)
            measurement.failures += failures

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    measurement.ended = time.time()
    return measurement


def server_latencies(directory: Path, measurements: list[Measurement]) -> dict[str, list[float]]:
    """The primary's own latencies (prediction log, online rows of v1) per condition."""
    from modelpilot.project import Project

    project = Project.open(directory, environ={})
    try:
        out: dict[str, list[float]] = {}
        for m in measurements:
            rows = project.prediction_log.window(model=NAME, start=m.started, end=m.ended)
            primary = rows[(rows["source"] == "online") & (rows["version"] == 1)]
            out.setdefault(m.condition, []).extend(primary["latency_ms"].dropna().tolist())
            if m.condition == "shadow":
                mirrored = int(((rows["source"] == "shadow") & (rows["version"] == 2)).sum())
                out.setdefault("mirrored", []).append(mirrored / max(len(primary), 1))
        return out
    finally:
        project.engine.dispose()


# ---- the report -------------------------------------------------------------------------------
def percentiles(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    return float(np.percentile(array, 50)), float(np.percentile(array, 99))


def report(
    measurements: list[Measurement], server_side: dict[str, list[float]], args: argparse.Namespace
) -> bool:
    print(
        f"\nprimary latency at {args.rate:g} requests/s ({args.threads} client threads), "
        f"{args.rounds} round(s) of {args.duration:g} s per condition"
    )
    print(
        f"{'round':>5}  {'condition':<9} {'requests':>8} {'failed':>6} {'p50 ms':>8} {'p99 ms':>8}"
    )
    for index, m in enumerate(measurements):
        p50, p99 = percentiles(m.latencies_ms)
        print(
            f"{index // 2 + 1:>5}  {m.condition:<9} {len(m.latencies_ms):>8} {m.failures:>6} "
            f"{p50:>8.2f} {p99:>8.2f}"
        )
    pooled = {
        c: [x for m in measurements if m.condition == c for x in m.latencies_ms]
        for c in ("none", "shadow")
    }
    (n50, n99), (s50, s99) = percentiles(pooled["none"]), percentiles(pooled["shadow"])
    print("\nall rounds      p50 ms   p99 ms   (client: send to answer)")
    print(f"  none        {n50:>8.2f} {n99:>8.2f}")
    print(f"  shadow      {s50:>8.2f} {s99:>8.2f}")
    print(f"  ratio       {s50 / n50:>8.3f} {s99 / n99:>8.3f}   goal: <= 1.05")
    if server_side.get("none") and server_side.get("shadow"):
        (a50, a99), (b50, b99) = (
            percentiles(server_side["none"]),
            percentiles(server_side["shadow"]),
        )
        print("\nserver side     p50 ms   p99 ms   (the primary's latency_ms in the log)")
        print(f"  none        {a50:>8.2f} {a99:>8.2f}")
        print(f"  shadow      {b50:>8.2f} {b99:>8.2f}")
        print(f"  ratio       {b50 / a50:>8.3f} {b99 / a99:>8.3f}")
    if server_side.get("mirrored"):
        share = float(np.mean(server_side["mirrored"]))
        print(f"\nshadow rows logged per answered request: {share:.3f}")
    failed = sum(m.failures for m in measurements)
    print(f"failed requests: {failed}")
    return s50 / n50 <= 1.05 and s99 / n99 <= 1.05


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second, in all")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per measurement")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="shadow-overhead-") as tmp:
        directory = Path(tmp)
        print("training and registering the model ...", flush=True)
        records = build_project(directory)
        server = start_server(directory, directory / "server.log")
        if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
            os.sched_setaffinity(0, {int(LOAD_CORE)})  # the clients stay off the server's core
        measurements: list[Measurement] = []
        try:
            for _ in range(args.rounds):
                for condition in ("none", "shadow"):
                    if condition == "shadow":
                        server.request(
                            "POST",
                            f"/v1/deployments/{NAME}/deploy",
                            {"version": 2, "strategy": "shadow"},
                        )
                    run_load(
                        server,
                        records,
                        rate=args.rate,
                        threads=args.threads,
                        seconds=args.warmup,
                        condition="warmup",
                    )
                    print(f"measuring {condition} ...", flush=True)
                    measurements.append(
                        run_load(
                            server,
                            records,
                            rate=args.rate,
                            threads=args.threads,
                            seconds=args.duration,
                            condition=condition,
                        )
                    )
                    if condition == "shadow":
                        server.request(
                            "POST",
                            f"/v1/deployments/{NAME}/abort",
                            {"reason": "benchmark round over"},
                        )
            time.sleep(1.0)  # the log writer commits every 50 ms: let the last rows land
            server_side = server_latencies(directory, measurements)
        finally:
            stop_server(server)
    return 0 if report(measurements, server_side, args) else 1


if __name__ == "__main__":
    sys.exit(main())
