"""``modelpilot cluster demo``: start a local cluster, serve traffic, kill the leader, restart
every replica one at a time, and show that nothing answered was lost."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelpilot.cluster._cluster import LocalCluster
from modelpilot.cluster._load import Load, LoadResult
from modelpilot.cluster._process import wait_until

__all__ = ["DemoReport", "run_demo"]


@dataclass
class DemoReport:
    """What the demo measured (``modelpilot cluster demo --json`` prints it).

    ``kill``: the phase in which the leading replica is killed (-9) and started again;
    ``rolling``: the phase in which every replica is restarted, one at a time (drained).
    """

    kill: dict[str, Any]
    rolling: dict[str, Any]
    handover_s: float
    logged: int
    answered_not_logged: int

    @property
    def ok(self) -> bool:
        return (
            self.answered_not_logged == 0
            and self.rolling["failed"] == 0
            and all(code == 0 for code in self.rolling["exit_codes"])
            and self.rolling["counted"] == self.rolling["answered"]
        )


def _phase(result: LoadResult) -> dict[str, Any]:
    return {
        "answered": result.answered,
        "failed": result.failed,
        "failures": dict(result.failures),
    }


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
            kill = kill_the_leader(cluster, say)
            victim = cluster.replicas[kill["replica"]]
            victim.start().wait_ready()
            first = load.stop()
            cluster.settle()
            since = cluster.series_now()
            say(f"{victim.name} started again. Now a rolling restart of every replica, under load")
            load = Load(cluster.url, threads=4).start()
            codes = cluster.rolling_restart()
            time.sleep(seconds / 2)
            second = load.stop()
            cluster.settle()
            logged = set(cluster.logged_ids())
            missing = [i for i in first.ids + second.ids if i not in logged]
            counted = int(
                sum(p["value"] or 0 for p in cluster.series("request_count", after=since))
            )
            report = DemoReport(
                kill=_phase(first) | {"replica": victim.name},
                rolling=_phase(second) | {"exit_codes": codes, "counted": counted},
                handover_s=float(kill["handover_s"]),
                logged=len(logged),
                answered_not_logged=len(missing),
            )
            say(
                f"kill -9 phase: {first.answered} answered, {first.failed} failed "
                f"({dict(first.failures) or 'none'}: requests in flight on the killed replica)"
            )
            say(
                f"rolling restart: {second.answered} answered, {second.failed} failed; exit codes "
                f"{codes} (0: drained); the dashboard counted {counted} requests"
            )
            say(
                f"prediction log: {len(logged)} rows; answered predictions missing from it: "
                f"{len(missing)}"
            )
        say("stopped every process the demo started")
        return report


def kill_the_leader(cluster: LocalCluster, say: Callable[[str], None]) -> dict[str, Any]:
    """kill -9 the replica leading the rollout controller; wait for another to lead. Its
    index and the seconds the hand-over took."""
    wait_until(cluster.leader, what="waiting for a leader", timeout=30)
    leader = cluster.leader() or ""
    victim = cluster.replica_of(leader)
    say(f"kill -9 {victim.name}, which leads the rollout controller")
    killed_at = time.monotonic()
    victim.kill()
    wait_until(
        lambda: cluster.leader() not in (None, leader),
        what="waiting for another replica to lead",
        timeout=60,
    )
    handover = time.monotonic() - killed_at
    say(f"{cluster.replica_of(cluster.leader() or '').name} leads after {handover:.1f} s")
    return {"replica": victim.index, "handover_s": handover}
