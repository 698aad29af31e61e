"""``docs/prometheus`` and ``docs/monitoring.md`` hold what the server really exposes.

The scrape config and the alert rules pass promtool (rules also pass their unit tests), and
every metric name the Grafana dashboard and the rules query is one ``GET /metrics`` exposes;
``docs/monitoring.md`` explains every metric family and every time series.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from monitoring_helpers import exposed_names, promtool
from prometheus_client.parser import text_string_to_metric_families

from live_server import LiveServer
from modelpilot.spec import ALERT_METRICS

DOCS = Path(__file__).resolve().parents[2] / "docs"
PROMETHEUS = DOCS / "prometheus"
METRIC_NAME = re.compile(r"\bmodelpilot_[a-z0-9_]+")


@pytest.fixture(scope="module")
def exposition(monitored_server: LiveServer) -> str:
    """What the monitored server exposes (families without samples show their type too)."""
    return httpx.get(f"{monitored_server.url}/metrics", timeout=60).text


def _promtool(*args: str) -> str:
    checked = subprocess.run(
        [promtool(), *args],
        cwd=PROMETHEUS,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = checked.stdout + checked.stderr
    assert checked.returncode == 0, output
    return output


def test_the_scrape_config_and_the_alert_rules_pass_promtool() -> None:
    assert "SUCCESS" in _promtool("check", "config", "prometheus.yml")
    assert "SUCCESS: 11 rules found" in _promtool("check", "rules", "alerts.yml")
    assert "SUCCESS" in _promtool("test", "rules", "alerts.test.yml")
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text(encoding="utf-8"))
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["127.0.0.1:8000"]


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(
        (PROMETHEUS / "grafana-dashboard.json").read_text(encoding="utf-8")
    )
    return dashboard


def test_the_grafana_dashboard_is_a_valid_dashboard() -> None:
    dashboard = _dashboard()
    assert {"title", "uid", "schemaVersion", "panels", "templating"} <= set(dashboard)
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
    titles = " ".join(p["title"] for p in panels).lower()
    for topic in ("latency", "error", "missing", "out-of-range", "drift", "key metric", "step"):
        assert topic in titles, topic


def test_dashboard_and_rules_query_only_metrics_the_server_exposes(exposition: str) -> None:
    dashboard = _dashboard()
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    queries += [v["definition"] for v in dashboard["templating"]["list"]]
    rules = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))
    queries += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for query in queries for name in METRIC_NAME.findall(query)}
    assert len(used) >= 25
    assert used - exposed_names(exposition) == set()


def test_the_monitoring_guide_explains_every_metric_and_series(exposition: str) -> None:
    guide = (DOCS / "monitoring.md").read_text(encoding="utf-8")
    for family in text_string_to_metric_families(exposition):
        if family.name.endswith("_created"):
            continue  # prometheus-client's creation times of counters and histograms
        name = family.name + ("_total" if family.type == "counter" else "")
        assert f"`{name}`" in guide, name
    for series in ALERT_METRICS:
        assert f"`{series}`" in guide, series
