"""Scaling out on one machine: 1, 2 and 3 replicas behind HAProxy, on one PostgreSQL.

Run: ``.venv/bin/python benchmarks/replicas.py [--seconds 20] [--clients-per-replica 4]
[--writers 1,2,4] [--handovers 3]``. Needs the Debian packages postgresql and haproxy
(``.ci/run`` installs them).

Three figures, side by side:

1. **Throughput** through HAProxy with 1, 2 and 3 replicas (``modelpilot serve``, one worker
   each, the cluster's settings: durable logging), with the same number of concurrent
   clients per replica (each replica then batches alike: the same clients spread over more
   replicas would give each fewer requests to share a model call and a log commit). On a
   2-core machine the cores, not modelpilot, cap it: the figure to watch is **CPU per
   request** (replicas, PostgreSQL and HAProxy, from the kernel's accounting), which should
   stay flat as replicas are added: no replica does work for the others.
2. **PostgreSQL log append rate** with N concurrent writers (processes appending what one
   server's log writer commits: batches of ``--batch-rows`` rows), rows per second in total.
3. **Leader hand-over** after kill -9 of the replica leading the rollout controller: seconds
   until another replica holds the lease (bounded by the lease, 5 s, plus a tick, 1 s).

The machine is shared with other engineers: wall-clock figures (requests/s, rows/s) move
with their load; CPU per request moves less (contention still raises it). The load average is
printed beside the figures.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from modelpilot.cluster import Load, LocalCluster, TemporaryPostgres
from modelpilot.datasets import house_prices


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def throughput(
    postgres: TemporaryPostgres, replicas: int, *, seconds: float, clients: int, root: Path
) -> dict[str, float]:
    url = postgres.create_database(f"throughput_{replicas}_{os.urandom(3).hex()}")
    with LocalCluster(
        root / f"n{replicas}", replicas=replicas, database_url=url, prometheus=False
    ) as cluster:
        Load(cluster.url, threads=clients, total=200).start().wait()  # warm up
        pids = [r.process.pid for r in cluster.replicas if r.process is not None]
        balancer = [cluster.balancer.pid] if cluster.balancer is not None else []

        def cpu() -> dict[str, float]:
            return {
                "replicas": _cpu(pids),
                "postgres": _cpu(postgres.pids()),
                "haproxy": _cpu(balancer),
            }

        # Idle first: what the replicas cost with no request (heartbeats, leases, the
        # control loop, health checks), to tell it from what each request costs.
        idle_s = min(seconds, 10.0)
        before = cpu()
        time.sleep(idle_s)
        idle = {k: (v - before[k]) / idle_s for k, v in cpu().items()}
        before = cpu()
        load = Load(cluster.url, threads=clients).start()
        time.sleep(seconds)  # the measured span
        result = load.stop()
        after = cpu()
    n = max(result.answered, 1)
    used = {k: (after[k] - before[k]) / n * 1000 for k in before}
    busy = sum(after[k] - before[k] - idle[k] * result.seconds for k in before)
    return {
        "replicas": replicas,
        "requests_s": result.answered / result.seconds,
        "failed": result.failed,
        "cpu_ms_replicas": used["replicas"],
        "cpu_ms_postgres": used["postgres"],
        "cpu_ms_haproxy": used["haproxy"],
        "cpu_ms_total": sum(used.values()),
        "cpu_ms_above_idle": busy / n * 1000,
        "idle_cores": sum(idle.values()),
    }


def _writer(url: str, seconds: float, batch_rows: int, out: multiprocessing.Queue[int]) -> None:
    from modelpilot.store import PredictionBatch, PredictionLog, create_database, new_ids

    frame = house_prices(batch_rows, seed=os.getpid() % 1000)
    inputs = frame.drop(columns="price")
    outputs = pd.DataFrame({"prediction": frame["price"]})
    log = PredictionLog(create_database(url))
    written = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        written += log.append(
            PredictionBatch(
                model="houses",
                version=1,
                ids=new_ids(batch_rows),
                ts=np.full(batch_rows, time.time()),
                inputs=inputs,
                outputs=outputs,
            )
        )
    out.put(written)


def append_rate(
    postgres: TemporaryPostgres, writers: int, *, seconds: float, batch_rows: int
) -> dict[str, float]:
    url = postgres.create_database(f"append_{writers}")
    from modelpilot.store import create_database

    create_database(url).dispose()  # the schema, before the writers race to create it
    context = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[int] = context.Queue()
    processes = [
        context.Process(target=_writer, args=(url, seconds, batch_rows, queue))
        for _ in range(writers)
    ]
    for process in processes:
        process.start()
    rows = sum(queue.get(timeout=seconds + 120) for _ in processes)
    for process in processes:
        process.join(60)
    return {"writers": writers, "rows_s": rows / seconds, "commits_s": rows / batch_rows / seconds}


def handovers(postgres: TemporaryPostgres, count: int, *, root: Path) -> list[float]:
    url = postgres.create_database("handover")
    times: list[float] = []
    with LocalCluster(root / "handover", replicas=3, database_url=url, prometheus=False) as cluster:
        for _ in range(count):
            deadline = time.monotonic() + 60
            while cluster.leader() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            leader = cluster.leader()
            victim = cluster.replica_of(leader or "")
            killed = time.monotonic()
            victim.kill()
            while cluster.leader() in (None, leader):
                time.sleep(0.05)  # polling the lease table, 20 times a second
            times.append(time.monotonic() - killed)
            victim.start().wait_ready()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients-per-replica", type=int, default=4)
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--writers", default="1,2,4")
    parser.add_argument("--batch-rows", type=int, default=20)
    parser.add_argument("--handovers", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modelpilot-bench-") as tmp:
        postgres = TemporaryPostgres().start()
        try:
            print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            print(
                "\n| replicas | requests/s | failed | CPU ms/request: replicas | PostgreSQL |"
                " HAProxy | total | total above idle | idle CPU (cores) |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            for n in (int(x) for x in args.replicas.split(",") if x):
                r = throughput(
                    postgres,
                    n,
                    seconds=args.seconds,
                    clients=args.clients_per_replica * n,
                    root=Path(tmp),
                )
                print(
                    f"| {n} | {r['requests_s']:.0f} | {r['failed']:.0f} | "
                    f"{r['cpu_ms_replicas']:.2f} | {r['cpu_ms_postgres']:.2f} | "
                    f"{r['cpu_ms_haproxy']:.2f} | {r['cpu_ms_total']:.2f} | "
                    f"{r['cpu_ms_above_idle']:.2f} | {r['idle_cores']:.3f} |"
                )
            print(f"\n| writers | log rows/s ({args.batch_rows}-row commits) | commits/s |")
            print("|---|---|---|")
            for n in (int(x) for x in args.writers.split(",") if x):
                r = append_rate(postgres, n, seconds=args.seconds, batch_rows=args.batch_rows)
                print(f"| {n} | {r['rows_s']:.0f} | {r['commits_s']:.0f} |")
            if args.handovers:
                times = handovers(postgres, args.handovers, root=Path(tmp))
                print(
                    "\nleader hand-over after kill -9: "
                    + ", ".join(f"{t:.1f} s" for t in times)
                    + " (lease 5 s + tick 1 s)"
                )
            print(f"load average at end: {os.getloadavg()[0]:.1f}")
        finally:
            postgres.stop()


if __name__ == "__main__":
    main()
