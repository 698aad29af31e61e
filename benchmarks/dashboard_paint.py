"""The dashboard with 30 days of series: points drawn, first paint, and what a poll costs.

Run: ``.venv/bin/python benchmarks/dashboard_paint.py [--project DIR] [--days 30]``. Without
``--project`` it runs ``modelpilot demo`` first (about 80 s). The demo's project is copied,
and its metric series are extended backwards to ``--days`` days as a production server would
have recorded them (``monitoring.interval_s`` = 10 s, drift checks every 60 s: the defaults),
values replayed from what the demo measured. Then a real server serves the copy and:

- the overview's query (9 metrics, the selected deployment, 300 points a series) three ways,
  side by side: every row read then averaged in Python (how it was answered before,
  ``_rows_then_thin`` below), averaged in the database from the points, and from the 10-minute
  roll-ups the monitor keeps (``TimeSeriesStore.roll_up``; catching up 30 days is timed too);
- the poll on the real server (``GET /v1/metrics/series``): wall time and server CPU time;
- headless Chromium opens the overview with a 30-day and a 15-minute window: first
  contentful paint, the time the charts held data (``performance.mark`` of the page), the
  points drawn, the bytes of the poll.

Timings on a shared machine are noisy: the CPU times and the ratio of one run are the figures
to compare.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from modelpilot.monitoring import Point, TimeSeriesStore
from modelpilot.store import create_database

TOKEN = "bench-admin-token"
NAMES = (
    "latency_p50_ms,latency_p95_ms,latency_p99_ms,request_rate,error_rate,client_error_rate,"
    "drift_score,drift_detected,key_metric"
)
INTERVAL_S = 10.0
DRIFT_INTERVAL_S = 60.0


def _demo(directory: Path) -> Path:
    command = [str(Path(sys.executable).with_name("modelpilot")), "demo", "--dir", str(directory)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return directory


def _database(project: Path) -> Path:
    found = sorted(project.glob(".modelpilot/*.db")) + sorted(project.glob("*.db"))
    if not found:
        raise SystemExit(f"no SQLite database in {project}/.modelpilot")
    return found[0]


def backfill(database: Path, days: float, now: float) -> tuple[int, int]:
    """Extend every recorded series back to ``days`` days; returns (series, rows added)."""
    connection = sqlite3.connect(database)
    series = connection.execute(
        "SELECT name, deployment, labels, MIN(ts) FROM metric_points GROUP BY 1, 2, 3"
    ).fetchall()
    start = now - days * 86400
    added = 0
    for name, deployment, labels, first in series:
        values = [
            v
            for (v,) in connection.execute(
                "SELECT value FROM metric_points WHERE name = ? AND deployment = ? AND labels = ?"
                " ORDER BY ts",
                (name, deployment, labels),
            )
        ] or [None]
        step = DRIFT_INTERVAL_S if "drift" in name else INTERVAL_S
        rows = []
        ts = start
        index = 0
        while ts < first:
            value = values[index % len(values)]
            rows.append((ts, name, deployment, labels, value))
            ts += step
            index += 1
        connection.executemany(
            "INSERT INTO metric_points (ts, name, deployment, labels, value) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        added += len(rows)
    connection.commit()
    connection.close()
    return len(series), added


def _rows_then_thin(store: TimeSeriesStore, deployment: str, since: float, now: float) -> int:
    """The series endpoint as it was before: every row of the window read, grouped and
    averaged into 300 buckets in Python (the peer of ``TimeSeriesStore.bucketed``)."""
    start = now - since
    width = since / 300
    kept = 0
    for name in NAMES.split(","):
        groups: dict[str, list[Point]] = {}
        for point in store.query(name, deployment=deployment, start=start, limit=10**9):
            groups.setdefault(point.labels, []).append(point)
        for points in groups.values():
            buckets: dict[int, list[float]] = {}
            for p in points:
                if p.value is not None and math.isfinite(p.value):
                    buckets.setdefault(int((p.ts - start) / width), []).append(p.value)
            kept += len(buckets)
    return kept


def _catch_up(store: TimeSeriesStore, now: float) -> list[float | None]:
    """``roll_up`` as the monitor calls it, until every finished span is folded."""
    ends: list[float | None] = []
    while True:
        ends.append(store.roll_up(now))
        if ends[-1] is None or ends[-1] >= now - 600 or (len(ends) > 1 and ends[-1] == ends[-2]):
            return ends


def _serve(project: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = 8700 + os.getpid() % 200
    environ = {**os.environ, "MODELPILOT_ADMIN_TOKEN": TOKEN}
    command = [str(Path(sys.executable).with_name("modelpilot")), "-p", str(project), "serve"]
    process = subprocess.Popen(
        [*command, "--port", str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    raise SystemExit("the server did not get ready in 120 s")


def _poll(url: str, deployment: str, since: float, server: psutil.Process) -> dict[str, float]:
    walls, cpus, size, points = [], [], 0, 0
    for _ in range(5):
        cpu = server.cpu_times()
        started = time.perf_counter()
        response = httpx.get(
            f"{url}/v1/metrics/series",
            params={"name": NAMES, "deployment": deployment, "since": since, "points": 300},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=120,
        )
        walls.append(time.perf_counter() - started)
        after = server.cpu_times()
        cpus.append(after.user + after.system - cpu.user - cpu.system)
        size = len(response.content)
        points = sum(len(s["points"]) for s in response.json()["series"])
    return {
        "wall_s": statistics.median(walls),
        "cpu_s": statistics.median(cpus),
        "bytes": size,
        "points": points,
    }


def _browser(url: str, since: int, profile: Path) -> dict[str, float]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(f"{url}/?token={TOKEN}#/overview")
        driver.execute_script(f"sessionStorage.setItem('modelpilot.window', '{since}')")
        driver.refresh()  # a fresh load, the token and the window kept
        WebDriverWait(driver, 120, poll_frequency=0.05).until(
            lambda d: d.execute_script("return document.body.dataset.pointsDrawn")
        )
        timings: dict[str, float] = driver.execute_script(
            """
            const paint = performance.getEntriesByName("first-contentful-paint")[0];
            const drawn = performance.getEntriesByName("modelpilot:charts-drawn")[0];
            return {first_paint_ms: paint ? paint.startTime : -1,
                    charts_ms: drawn ? drawn.startTime : -1,
                    points: Number(document.body.dataset.pointsDrawn)};
            """
        )
        return timings
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", type=Path, default=None)
    parser.add_argument("--days", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = args.project or _demo(Path(tmp) / "demo")
        project = Path(tmp) / "project"
        shutil.copytree(source, project, ignore=shutil.ignore_patterns("server-*.log"))
        database = _database(project)
        now = time.time()
        started = time.perf_counter()
        n_series, added = backfill(database, args.days, now)
        print(
            f"backfilled {n_series} series with {added:,} points ({args.days:g} days at "
            f"{INTERVAL_S:g} s, drift at {DRIFT_INTERVAL_S:g} s) in "
            f"{time.perf_counter() - started:.0f} s"
        )
        engine = create_database(f"sqlite:///{database}")
        store = TimeSeriesStore(engine)
        deployment = (
            sqlite3.connect(database)
            .execute("SELECT deployment FROM metric_points WHERE name = 'request_rate' LIMIT 1")
            .fetchone()[0]
        )
        since = args.days * 86400
        names = NAMES.split(",")

        def timed(call: Any) -> dict[str, float]:
            cpu, wall = time.process_time(), time.perf_counter()
            call()
            return {"wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}

        def bucketed() -> None:
            store.bucketed(names, deployment=deployment, start=now - since, end=now, buckets=300)

        rows = timed(lambda: _rows_then_thin(store, deployment, since, now))
        points = timed(bucketed)
        steps: list[float | None] = []
        catch_up = timed(lambda: steps.extend(_catch_up(store, now)))
        rolled = timed(bucketed)
        engine.dispose()
        print(f"\nthe overview's query over {args.days:g} days, in process (SQLite):")
        print(f"  {'':34}{'wall s':>9}{'CPU s':>9}{'ratio':>8}")
        for label, figures in (
            ("every row read, then thinned", rows),
            ("averaged in the database", points),
            ("from the roll-ups (hours, 10 min)", rolled),
        ):
            ratio = rows["cpu_s"] / max(figures["cpu_s"], 1e-9)
            print(f"  {label:34}{figures['wall_s']:>9.2f}{figures['cpu_s']:>9.2f}{ratio:>7.0f}x")
        print(
            f"  (folding {args.days:g} days into roll-ups the first time: {len(steps)} calls, "
            f"{catch_up['wall_s']:.0f} s wall, {catch_up['cpu_s']:.0f} s CPU; then one span "
            "every 10 minutes)"
        )

        process, url = _serve(project)
        try:
            server = psutil.Process(process.pid)
            print(f"\nGET /v1/metrics/series on the server (median of 5), deployment {deployment}:")
            print(f"  {'window':10}{'wall s':>9}{'server CPU s':>14}{'points':>9}{'bytes':>11}")
            for label, window in (("15 min", 900), ("24 hours", 86400), ("30 days", since)):
                polled = _poll(url, deployment, window, server)
                print(
                    f"  {label:10}{polled['wall_s']:>9.2f}{polled['cpu_s']:>14.2f}"
                    f"{polled['points']:>9,}{polled['bytes']:>11,}"
                )
            print("\nheadless Chromium, the overview at 1280 px:")
            print(f"  {'window':10}{'first paint ms':>16}{'charts drawn ms':>17}{'points':>9}")
            for label, window in (("15 min", 900), ("30 days", int(since))):
                seen = _browser(url, window, Path(tmp) / f"chromium-{window}")
                print(
                    f"  {label:10}{seen['first_paint_ms']:>16.0f}{seen['charts_ms']:>17.0f}"
                    f"{seen['points']:>9,.0f}"
                )
        finally:
            process.terminate()
            process.wait(60)


if __name__ == "__main__":
    main()
