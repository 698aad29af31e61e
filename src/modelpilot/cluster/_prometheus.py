"""Prometheus scraping every replica on its own (``/metrics`` is one process's), with the
alert rules modelpilot ships (``docs/prometheus/alerts.yml``)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from modelpilot.cluster._process import ChildProcess, ClusterError

__all__ = ["prometheus_config", "query", "start_prometheus"]


def prometheus_config(
    replicas: Sequence[int], *, rules: Path | None, scrape_s: float = 1.0
) -> dict[str, Any]:
    """Scrape ``127.0.0.1:PORT/metrics`` of each replica (the ``instance`` label tells them
    apart); PromQL's ``sum`` adds them up, as ``alerts.yml``'s rules do.

    Examples
    --------
    >>> prometheus_config([8001, 8002], rules=None)["scrape_configs"][0]["static_configs"]
    [{'targets': ['127.0.0.1:8001', '127.0.0.1:8002'], 'labels': {'service': 'modelpilot'}}]
    """
    config: dict[str, Any] = {
        "global": {"scrape_interval": f"{scrape_s:g}s", "evaluation_interval": f"{scrape_s:g}s"},
        "scrape_configs": [
            {
                "job_name": "modelpilot",
                "metrics_path": "/metrics",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{p}" for p in replicas],
                        "labels": {"service": "modelpilot"},
                    }
                ],
            }
        ],
    }
    if rules is not None:
        config["rule_files"] = [str(rules)]
    return config


def start_prometheus(
    directory: Path, port: int, replicas: Sequence[int], *, rules: Path | None
) -> ChildProcess:
    program = shutil.which("prometheus")
    if program is None:
        raise ClusterError("prometheus was not found; install it (`apt-get install prometheus`)")
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(replicas, rules=rules)), encoding="utf-8")
    return ChildProcess(
        "prometheus",
        [
            program,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        directory / "prometheus.log",
    ).start()


def query(url: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector (``/api/v1/query``)."""
    response = httpx.get(f"{url}/api/v1/query", params={"query": promql}, timeout=10.0)
    response.raise_for_status()
    body = response.json()
    if body.get("status") != "success":
        raise ClusterError(f"Prometheus refused {promql!r}: {body}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result
