"""``/metrics`` of each worker process on a port of its own (``serve --workers N``).

modelpilot counts requests, latencies and inputs in plain numbers that collectors turn into
metrics at scrape time (``monitoring/_metrics.py``); Prometheus' multiprocess mode does not
cover custom collectors. So each process is scraped on its own: with one worker per server
(a Kubernetes pod, a replica behind HAProxy) that is the server's port; with ``--workers N`` on
one port, a scrape reaches whichever worker accepts the connection. ``serving.metrics_port: P``
gives every worker a metrics port of its own too: the first of P, P+1, ... still free, so N
workers take P to P+N-1 (a worker that restarts takes the port its predecessor left), and
Prometheus lists those N targets.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import start_http_server

from modelpilot.monitoring import ServingMetrics

__all__ = ["serve_metrics"]

logger = logging.getLogger("modelpilot.server")
_MAX_WORKERS = 64  # serving.workers' limit


def serve_metrics(metrics: ServingMetrics, host: str, first_port: int) -> tuple[Any, int] | None:
    """Serve ``metrics`` on the first free port from ``first_port``; (server, port), or None
    when all of them are taken."""
    for port in range(first_port, first_port + _MAX_WORKERS):
        try:
            server, _ = start_http_server(port, addr=host, registry=metrics.registry)
        except OSError:
            continue
        logger.info("this worker's metrics: http://%s:%d/metrics", host, port)
        return server, port
    logger.warning("no free metrics port from %d to %d", first_port, first_port + _MAX_WORKERS)
    return None
