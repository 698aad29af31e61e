"""``modelpilot cluster demo``: start a local cluster, serve traffic, kill the leader, restart
every replica one at a time, and show that nothing answered was lost."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelpilot.cluster._cluster import LocalCluster
from modelpilot.cluster._load import Load, LoadResult
from modelpilot.cluster._process import wait_until
from modelpilot.cluster._prometheus import query

__all__ = ["DemoReport", "run_demo"]


@dataclass
class DemoReport:
    """What the demo measured (``modelpilot cluster demo --json`` prints it)."""

    answered: int
    failed: int
    failures: dict[str, int]
    logged: int
    answered_not_logged: int
    counted: int
    handover_s: float
    killed: str
    new_leader: str
    drained_exit_codes: list[int | None]
    prometheus_requests: float | None

    @property
    def ok(self) -> bool:
        return self.answered_not_logged == 0 and all(c == 0 for c in self.drained_exit_codes)


def run_demo(
    say: Callable[[str], None],
    *,
    replicas: int = 3,
    database_url: str | None = None,
    directory: Path | None = None,
    seconds: float = 5.0,
) -> DemoReport:
    with tempfile.TemporaryDirectory(prefix="modelpilot-cluster-") as scratch:
        root = directory or Path(scratch)
        cluster = LocalCluster(root, replicas=replicas, database_url=database_url)
        say(f"starting PostgreSQL, {replicas} replicas, HAProxy and Prometheus in {root}")
        with cluster:
            say(
                f"HAProxy on {cluster.url}, Prometheus on {cluster.prometheus_url}; replicas on "
                + ", ".join(r.url for r in cluster.replicas)
            )
            load = Load(cluster.url, threads=4).start()
            time.sleep(seconds)  # traffic for a while: the demo's pace, not a wait for a state
            leader = cluster.leader()
            if leader is None:
                wait_until(cluster.leader, what="waiting for a leader", timeout=30)
                leader = cluster.leader() or ""
            victim = cluster.replica_of(leader)
            say(
                f"kill -9 {victim.name} (pid {victim.process.pid if victim.process else '?'}),"
                " which leads the rollout controller"
            )
            killed_at = time.monotonic()
            victim.kill()
            wait_until(
                lambda: cluster.leader() not in (None, leader),
                what="waiting for another replica to lead",
                timeout=60,
            )
            handover = time.monotonic() - killed_at
            new_leader = cluster.leader() or ""
            say(f"{cluster.replica_of(new_leader).name} leads after {handover:.1f} s")
            victim.start().wait_ready()
            say(f"{victim.name} started again; now a rolling restart of every replica, under load")
            codes = cluster.rolling_restart()
            time.sleep(seconds / 2)
            result: LoadResult = load.stop()
            interval = float(cluster.settings.get("monitoring", {}).get("interval_s", 2))
            time.sleep(2 * interval + 1)  # the last intervals reported and summed
            logged = set(cluster.logged_ids())
            missing = [i for i in result.ids if i not in logged]
            counted = int(sum(p["value"] or 0 for p in cluster.series("request_count")))
            prom = query(cluster.prometheus_url, "sum(modelpilot_requests_total)")
            report = DemoReport(
                answered=result.answered,
                failed=result.failed,
                failures=dict(result.failures),
                logged=len(logged),
                answered_not_logged=len(missing),
                counted=counted,
                handover_s=handover,
                killed=victim.name,
                new_leader=new_leader,
                drained_exit_codes=codes,
                prometheus_requests=float(prom[0]["value"][1]) if prom else None,
            )
            say(
                f"clients: {report.answered} answered, {report.failed} failed "
                f"({report.failures or 'none'}); prediction log: {report.logged} rows, "
                f"{report.answered_not_logged} answered predictions missing; dashboard's "
                f"request count: {report.counted}; rolling restart exit codes: {codes}"
            )
        say("stopped every process the demo started")
        return report
