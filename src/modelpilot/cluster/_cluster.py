"""A real multi-replica setup on one machine: PostgreSQL, N replicas, HAProxy, Prometheus.

Everything listens on 127.0.0.1 only and lives in one directory; :meth:`LocalCluster.stop`
ends every process it started (and only those) and removes the throwaway database.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from modelpilot.cluster._balancer import start_haproxy
from modelpilot.cluster._postgres import TemporaryPostgres, free_port
from modelpilot.cluster._process import ChildProcess, ClusterError, wait_until
from modelpilot.cluster._project import CLUSTER_SETTINGS, DEPLOYMENT, build_project
from modelpilot.cluster._prometheus import start_prometheus
from modelpilot.cluster._replicas import Replica

__all__ = ["LocalCluster", "shipped_rules"]

#: HAProxy's health checks: every 500 ms, up after 2 good ones.
_BALANCER_UP_S = 1.5


def shipped_rules() -> Path | None:
    """``docs/prometheus/alerts.yml`` of this checkout, when modelpilot runs from one."""
    path = Path(__file__).resolve().parents[3] / "docs" / "prometheus" / "alerts.yml"
    return path if path.is_file() else None


class LocalCluster:
    """``replicas`` replicas of a house-price project behind HAProxy, with Prometheus.

    ``database_url``: an existing (empty) database to use; by default a throwaway PostgreSQL
    server in ``directory``. ``settings`` are merged into the project file.
    """

    def __init__(
        self,
        directory: Path,
        *,
        replicas: int = 3,
        database_url: str | None = None,
        prometheus: bool = True,
        rules: Path | None = None,
        settings: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        if replicas < 1:
            raise ClusterError(f"a cluster needs at least one replica, got {replicas}")
        self.directory = directory
        self.n_replicas = replicas
        self.postgres: TemporaryPostgres | None = None
        self.database_url = database_url
        self.with_prometheus = prometheus
        self.rules = rules if rules is not None else shipped_rules()
        self.settings = settings or {}
        self.env = env or {}
        self.replicas: list[Replica] = []
        self.balancer: ChildProcess | None = None
        self.prometheus: ChildProcess | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prometheus_url = ""
        self.project_dir = directory / "project"

    # ---- start and stop -------------------------------------------------------------------
    def start(self) -> LocalCluster:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.database_url is None:
            self.postgres = TemporaryPostgres().start()
            self.database_url = self.postgres.url
        build_project(self.project_dir, self.database_url, settings=self.settings)
        logs = self.directory / "logs"
        self.replicas = [
            Replica(i, self.project_dir, self.database_url, logs, self.env)
            for i in range(self.n_replicas)
        ]
        for replica in self.replicas:
            replica.start()
        for replica in self.replicas:
            replica.wait_ready()
        self.balancer = start_haproxy(self.directory, self.port, [r.port for r in self.replicas])
        wait_until(
            lambda: httpx.get(f"{self.url}/readyz", timeout=2.0).status_code == 200,
            what="waiting for HAProxy",
            timeout=30,
            alive=self.balancer,
        )
        time.sleep(_BALANCER_UP_S)  # every replica's checks passed, not just the first one's
        if self.with_prometheus:
            port = free_port()
            self.prometheus_url = f"http://127.0.0.1:{port}"
            self.prometheus = start_prometheus(
                self.directory / "prometheus",
                port,
                [r.port for r in self.replicas],
                rules=self.rules,
            )
            wait_until(
                lambda: httpx.get(f"{self.prometheus_url}/-/ready", timeout=2.0).status_code == 200,
                what="waiting for Prometheus",
                timeout=60,
                alive=self.prometheus,
            )

    def stop(self) -> dict[str, int | None]:
        """Stop everything this cluster started; each replica's exit code (0: drained)."""
        codes: dict[str, int | None] = {}
        if self.prometheus is not None:
            self.prometheus.stop(timeout=30)
        for replica in self.replicas:
            if replica.alive():
                codes[replica.name] = replica.stop()
        if self.balancer is not None:
            self.balancer.stop(timeout=10)
        if self.postgres is not None:
            self.postgres.stop()
        return codes

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- what can happen to a replica -----------------------------------------------------
    def restart(self, replica: Replica) -> int | None:
        """Drain and stop ``replica``, start it again on its port, wait until the balancer
        sends it requests again; the stopped process's exit code."""
        code = replica.stop()
        replica.start().wait_ready()
        time.sleep(_BALANCER_UP_S)
        return code

    def rolling_restart(self) -> list[int | None]:
        """Restart every replica, one at a time."""
        return [self.restart(replica) for replica in self.replicas]

    # ---- reading the shared state ---------------------------------------------------------
    def engine(self) -> Any:
        from modelpilot.store import create_database

        if self.database_url is None:
            raise ClusterError("the cluster has not started")
        return create_database(self.database_url)

    def leader(self, lease: str = "rollout-controller") -> str | None:
        """The replica process (worker id) that holds ``lease`` now."""
        from modelpilot.store import LeaseTable

        engine = self.engine()
        try:
            held = LeaseTable(engine).holder(lease)
        finally:
            engine.dispose()
        return held.holder if held is not None else None

    def replica_of(self, worker_id: str) -> Replica:
        """The replica whose process is ``worker_id`` (hostname-PID-random)."""
        for replica in self.replicas:
            if replica.process is not None and f"-{replica.process.pid}-" in worker_id:
                return replica
        raise ClusterError(f"no running replica is {worker_id}")

    def logged_ids(self) -> list[str]:
        """Every prediction id in the shared prediction log."""
        from modelpilot.store._tables import prediction_ids

        engine = self.engine()
        try:
            with engine.connect() as connection:
                return [str(i) for i in connection.execute(select(prediction_ids.c.id)).scalars()]
        finally:
            engine.dispose()

    def series(self, name: str, *, after: float = 0.0) -> list[dict[str, Any]]:
        """The dashboard's points of series ``name`` (``GET /v1/metrics/series``, the last
        hour) later than ``after`` (a time of :meth:`series_now`)."""
        response = httpx.get(
            f"{self.url}/v1/metrics/series",
            params={"name": name, "deployment": DEPLOYMENT, "since": 3600, "points": 10000},
            timeout=30.0,
        )
        response.raise_for_status()
        points: list[dict[str, Any]] = []
        for item in response.json()["series"]:
            points += [p for p in item["points"] if p["ts"] > after]
        return points

    def series_now(self) -> float:
        """The dashboard's clock (the replica's that answers)."""
        response = httpx.get(
            f"{self.url}/v1/metrics/series", params={"name": "request_count"}, timeout=30.0
        )
        response.raise_for_status()
        return float(response.json()["now"])

    @property
    def interval_s(self) -> float:
        """``monitoring.interval_s``: how often replicas report their traffic."""
        monitoring = {**CLUSTER_SETTINGS["monitoring"], **self.settings.get("monitoring", {})}
        return float(monitoring["interval_s"])

    def settle(self) -> None:
        """Wait until every interval with traffic so far was reported and summed: two
        intervals (a replica writes its interval, the leader sums it) and a tick."""
        time.sleep(2 * self.interval_s + 1.5)

    def replicas_alive(self) -> Iterator[Replica]:
        return (r for r in self.replicas if r.alive())
