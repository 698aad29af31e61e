"""``serve --workers 2`` with ``serving.metrics_port``: each worker process is scraped on its
own port, so Prometheus sees every process's requests, not one process at a time."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from live_server import DEPLOYMENT, auth, free_port, live_server, poll
from project_helpers import as_instances, build_project

PREDICT = f"/v1/deployments/{DEPLOYMENT}/predict"


def _requests(text: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "modelpilot_requests"
        for sample in family.samples
        if sample.name == "modelpilot_requests_total"
    )


def _metrics_ports(first: int, n: int) -> list[int] | None:
    """The first ``n`` ports from ``first`` that answer ``/metrics``, once that many do."""
    found = []
    for port in range(first, first + n + 2):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).is_success:
                found.append(port)
        except httpx.TransportError:
            continue
    return found[:n] if len(found) >= n else None


def test_every_worker_has_its_own_metrics_port(
    tmp_path: Path, house_data: tuple[pd.DataFrame, pd.DataFrame], house_model_file: Path
) -> None:
    first = free_port()
    settings = {"serving": {"metrics_port": first}}
    directory = build_project(
        tmp_path / "project", house_data[1], house_model_file, settings=settings
    )
    body = {"instances": as_instances(house_data[1].head(1))}
    with live_server(directory, workers=2) as server:
        # /readyz answered from one worker; the other may still be starting (its metrics port
        # opens in its start-up). Each takes the first free port from `first`: normally `first`
        # and `first + 1`, further on if another process holds one of them meanwhile.
        ports = poll(
            lambda: _metrics_ports(first, 2),
            what="both workers' metrics ports",
            timeout=120,
        )
        with httpx.Client(base_url=server.url, headers=auth(), timeout=30.0) as client:
            for _ in range(40):  # new connections: the kernel spreads them over both workers
                assert client.post(PREDICT, json=body, headers={"Connection": "close"}).is_success
        scraped = [httpx.get(f"http://127.0.0.1:{p}/metrics", timeout=10).text for p in ports]
    counts = [_requests(text) for text in scraped]
    assert sum(counts) == 40, counts  # every process's requests, each counted once
