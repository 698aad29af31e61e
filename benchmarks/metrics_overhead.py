"""What live metrics cost a request: the same server with monitoring off, metrics only, and on.

Run: ``.venv/bin/python benchmarks/metrics_overhead.py [--duration 10] [--connections 1,8]
[--repeat 2] [--write]``. ``--write`` saves the markdown report to
benchmarks/results/metrics_overhead.md.

The house-price model of the demo (gradient-boosted trees on 9 features, one-hot categories)
is registered once and served by ``modelpilot serve`` three times per round:

- ``off``: ``monitoring: {enabled: false}`` (no metrics, no monitor);
- ``metrics``: live Prometheus metrics on the request path (request counters, latency and size
  histograms, per-feature input counts, output histograms), the monitor idle
  (``monitoring.interval_s`` of a day);
- ``on``: the project's defaults: the metrics, and every 10 s the monitor's time series and
  drift checks on the prediction log.

The order rotates between rounds. Each server is pinned
to core 0 and loaded with ``wrk -t1 -cN`` pinned to core 1 (one JSON record per request), after
a warm-up. With metrics off, ``/metrics`` is empty and the monitor does not run.

On a shared machine wall-clock latency is noisy; the server's CPU time per answered request
(from /proc, over the measured seconds) is the steadier measure of what metrics add, and the
report also times, in this process, the recording of one request's metrics alone.

The claim under test (monitoring issue): metrics are computed live, without slowing requests.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "metrics_overhead.md"
CONSOLE_SCRIPT = Path(sys.executable).with_name("modelpilot")
TOKEN = "bench"
SERVER_CORE, LOAD_CORE = "0", "1"

WRK_SCRIPT = """\
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.body = [==[{body}]==]

done = function(summary, latency, requests)
  io.write(string.format("WRK_RESULT %d %d %d %.1f %.1f\\n", summary.requests,
    summary.duration, summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Result:
    setting: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    cpu_us: float = 0.0  # server CPU time per answered request


def build_project(directory: Path) -> bytes:
    """Register the demo's house model; return one request body of a typical listing."""
    import pandas as pd
    import skops.io as sio
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from modelpilot.cli._app import main
    from modelpilot.datasets import HOUSE_FEATURES, house_prices
    from modelpilot.spec import render_project

    frame = house_prices(3000, seed=7)
    train, holdout = frame.iloc[:2400], frame.iloc[2400:]
    encode = make_column_transformer(
        (OneHotEncoder(handle_unknown="ignore"), ["location", "condition"]),
        remainder="passthrough",
    )
    model = make_pipeline(encode, HistGradientBoostingRegressor(max_iter=60, random_state=0))
    model.fit(train.drop(columns="price"), train["price"])
    sio.dump(model, directory / "house.skops")
    holdout.to_parquet(directory / "holdout.parquet")
    train.to_parquet(directory / "train.parquet")
    (directory / "modelpilot.yaml").write_text(
        render_project(
            project="houses", task="regression", target="price", features=HOUSE_FEATURES
        ),
        encoding="utf-8",
    )
    args = [
        "-p",
        str(directory),
        "register",
        str(directory / "house.skops"),
        "--eval",
        str(directory / "holdout.parquet"),
        "--data",
        str(directory / "train.parquet"),
        "--alias",
        "production",
    ]
    with contextlib.redirect_stdout(sys.stderr):
        if main(args) != 0:
            raise SystemExit("registering the model failed")
    record = holdout.drop(columns="price").iloc[0]
    body: bytes = pd.Series(record).to_json().encode()
    return body


SETTINGS: dict[str, dict[str, object]] = {
    "off": {"enabled": False},
    "metrics": {"enabled": True, "interval_s": 86_400.0},
    "on": {"enabled": True},
}


def set_monitoring(directory: Path, setting: str) -> None:
    import yaml

    path = directory / "modelpilot.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    monitoring = spec.setdefault("monitoring", {})
    monitoring.pop("enabled", None)
    monitoring["interval_s"] = 10
    monitoring.update(SETTINGS[setting])
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


def _pinned(core: str, command: list[str]) -> list[str]:
    return ["taskset", "-c", core, *command] if shutil.which("taskset") else command


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def running_server(directory: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MODELPILOT_")}
    environ["MODELPILOT_PREDICT_TOKEN"] = TOKEN
    command = [
        str(CONSOLE_SCRIPT),
        "-p",
        str(directory),
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with open(directory / "server.log", "ab") as log:
        process = subprocess.Popen(
            _pinned(SERVER_CORE, command), env=environ, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start; see {directory / 'server.log'}")
            time.sleep(0.2)
        yield url, process.pid  # taskset execs the server: the same process
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def run_wrk(url: str, body: bytes, connections: int, seconds: float, script: Path) -> Result:
    script.write_text(WRK_SCRIPT.format(token=TOKEN, body=body.decode()), encoding="utf-8")
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        "-s",
        str(script),
        f"{url}/v1/deployments/houses/predict",
    ]
    out = subprocess.run(
        _pinned(LOAD_CORE, command), capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRK_RESULT"))
    requests, micros, non_2xx, p50, p99 = line.split()[1:]
    rps = (int(requests) - int(non_2xx)) / (int(micros) / 1e6)
    return Result("", connections, rps, float(p50) / 1000, float(p99) / 1000, int(non_2xx))


def measure(
    directory: Path, body: bytes, setting: str, connections: list[int], args: argparse.Namespace
) -> list[Result]:
    set_monitoring(directory, setting)
    results = []
    for n in connections:
        with running_server(directory) as (url, pid):  # a fresh server per connection count
            run_wrk(url, body, n, args.warmup, directory / "wrk.lua")
            before = cpu_seconds(pid)
            result = run_wrk(url, body, n, args.duration, directory / "wrk.lua")
            answered = result.rps * args.duration
            result.cpu_us = (cpu_seconds(pid) - before) / max(answered, 1) * 1e6
        result.setting = setting
        results.append(result)
        print(
            f"  {result.setting:7} c={n:<3} {result.rps:8.0f} req/s  "
            f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms  "
            f"CPU {result.cpu_us:6.0f} us/req",
            file=sys.stderr,
        )
    return results


def report(rounds: list[list[Result]], args: argparse.Namespace, load: str) -> str:
    lines = [
        f"# Live-metrics overhead ({dt.datetime.now():%Y-%m-%d %H:%M})",
        "",
        f"Machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"{platform.system()} {platform.release()}. Load average at start: {load} (other jobs "
        "may share it). Server pinned to core 0, `wrk -t1` to core 1; "
        f"{args.duration:g} s measured after {args.warmup:g} s warm-up, a fresh server per run; "
        "one JSON record per request (the house-price model, 9 features).",
        "",
        "| round | connections | monitoring | req/s | p50 ms | p99 ms | CPU us/req | non-2xx |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for index, results in enumerate(rounds, 1):
        for r in sorted(results, key=lambda r: (r.connections, r.setting)):
            lines.append(
                f"| {index} | {r.connections} | {r.setting} | {r.rps:,.0f} | {r.p50_ms:.2f} | "
                f"{r.p99_ms:.2f} | {r.cpu_us:,.0f} | {r.non_2xx} |"
            )
    lines += ["", "Ratios to `off`: the median of the per-round ratios, and best to best", ""]
    lines += [
        "| connections | monitoring | throughput | p50 latency | CPU per request | best CPU "
        "per request |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for n in sorted({r.connections for rs in rounds for r in rs}):
        runs = [r for results in rounds for r in results if r.connections == n]
        for setting in ("metrics", "on"):

            def ratio(attr: str, n: int = n, setting: str = setting) -> float:
                values = []
                for results in rounds:
                    by = {r.setting: getattr(r, attr) for r in results if r.connections == n}
                    values.append(by[setting] / by["off"] if by.get("off") else float("nan"))
                return float(statistics.median(values))

            # On a shared machine contention only adds CPU time: the least is the closest to
            # what the code itself costs.
            best = min(r.cpu_us for r in runs if r.setting == setting) / min(
                r.cpu_us for r in runs if r.setting == "off"
            )
            lines.append(
                f"| {n} | {setting} | {ratio('rps'):.2f}x | {ratio('p50_ms'):.2f}x | "
                f"{ratio('cpu_us'):.2f}x | {best:.2f}x |"
            )
    recording = recording_cost()
    lines += [
        "",
        f"Recording one request's metrics in-process (request counter, latency and instances "
        f"histograms, in-flight gauge, 9 features' input counts, output counter and value "
        f"histogram): {recording:.1f} us (median of 5 runs of 20,000).",
    ]
    return "\n".join(lines) + "\n"


def recording_cost(n: int = 20_000) -> float:
    """Microseconds to record one single-record request's metrics, as the request path does."""
    import timeit

    from modelpilot.datasets import HOUSE_FEATURES
    from modelpilot.monitoring import ServingMetrics

    metrics = ServingMetrics(process=False)
    features = [f.name for f in HOUSE_FEATURES]

    def one_request() -> None:
        metrics.request_started("houses")
        metrics.observe_inputs("houses", features, 1, {}, {}, {})
        metrics.observe_outputs("houses", "1", [251_000.0], None)
        metrics.observe_request("houses", "1", "ok", 0.004, instances=1, started=True)

    runs = timeit.repeat(one_request, number=n, repeat=5)
    return statistics.median(runs) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", default="1,8")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--write", action="store_true", help=f"save the report to {RESULTS}")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (Debian: apt-get install wrk)")
    connections = [int(c) for c in args.connections.split(",")]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="metrics-overhead-") as tmp:
        directory = Path(tmp)
        body = build_project(directory)
        rounds = []
        for index in range(args.repeat):
            names = list(SETTINGS)
            order = names[index % 3 :] + names[: index % 3]
            print(f"round {index + 1}", file=sys.stderr)
            rounds.append(
                [
                    r
                    for setting in order
                    for r in measure(directory, body, setting, connections, args)
                ]
            )
    text = report(rounds, args, load)
    print(text)
    if args.write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
