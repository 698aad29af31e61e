"""Helpers of the monitoring tests: projects, a server in this process, and reading
``/metrics``.

The real server, a subprocess, comes from :mod:`live_server`; :func:`in_process_server` runs
the same ASGI app under uvicorn in a thread of the test process, for the tests that hand the
server an object of their own (``build_state``'s ``metrics``). :func:`scrape` parses the
exposition with prometheus-client's own parser.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from live_server import free_port, wait_for_readyz
from modelpilot.server import ServingApp

CLEANED = "cleaned"  # the house model behind a preprocessing function (conftest.py)
CHAINED = "chained"  # the house model, then a second model on its estimate
PROMTOOL = "promtool"


def promtool() -> str:
    """The promtool binary; fails on CI (which installs it), skips elsewhere."""
    path = shutil.which(PROMTOOL)
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail(
            "promtool is not installed, and CI must check the exposition and the alert rules "
            "with it; install Prometheus (Debian: apt-get install prometheus)",
            pytrace=False,
        )
    pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")


# ---- projects ---------------------------------------------------------------------------------


# ---- a server in this process ------------------------------------------------------------------
@contextlib.contextmanager
def in_process_server(app: ServingApp) -> Iterator[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1 in a thread of this process; yields its URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_readyz(
            url, alive=thread.is_alive, describe=lambda: "uvicorn in a thread of the tests"
        )
        yield url
    finally:
        server.should_exit = True
        thread.join(60)


# ---- /metrics ---------------------------------------------------------------------------------
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(http: httpx.Client) -> Samples:
    """Every sample of ``GET /metrics``: (sample name, labels) -> value."""
    response = http.get("/metrics")
    assert response.status_code == 200, response.text
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def exposed_names(text: str) -> set[str]:
    """Every name a PromQL query may use for the families of an exposition: sample names,
    and for each family the names its type defines (so a family without samples counts too)."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count"),
        "gauge": ("",),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names
