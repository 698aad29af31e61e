"""The real server on 127.0.0.1: the monitor feeds the alert engine, GET /v1/alerts answers,
the firing gauge is exported, a webhook is told, and `modelpilot alerts` sees it too."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from alerting_helpers import CANARY_RULES, HookServer, update_project

from live_server import PREDICT_TOKEN, live_server
from modelpilot.cli._app import main


def poll(client: httpx.Client, *, timeout: float = 60.0) -> dict[str, Any]:
    """GET /v1/alerts until the ``memory`` alert fires."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get("/v1/alerts", headers={"authorization": f"Bearer {PREDICT_TOKEN}"})
        if response.status_code == 200:
            body: dict[str, Any] = response.json()
            if any(a["rule"] == "memory" and a["state"] == "firing" for a in body["active"]):
                return body
        if time.monotonic() > deadline:
            raise AssertionError(f"no firing memory alert after {timeout:.0f}s: {response.text}")
        time.sleep(0.2)


def test_the_server_evaluates_alert_rules_and_reports_them(
    versions_project: Path,
    hooks: HookServer,
    capsys: pytest.CaptureFixture[str],
    clean_environ: None,
) -> None:
    update_project(
        versions_project,
        {
            "monitoring": {"interval_s": 1},
            "alerts": {
                **CANARY_RULES,
                "notifiers": [{"kind": "log"}, {"kind": "webhook", "url": f"{hooks.url}/ok"}],
            },
        },
    )
    with (
        live_server(versions_project, admin_token=None) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert client.get("/v1/alerts").status_code == 401
        body = poll(client)
        (memory,) = [a for a in body["active"] if a["rule"] == "memory"]
        assert (memory["deployment"], memory["labels"], memory["severity"]) == ("", {}, "info")
        assert memory["value"] > 1 and memory["threshold"] == 1
        assert memory["started_at"] <= memory["fired_at"] and memory["resolved_at"] is None
        assert body["recent"] == []
        exposition = client.get("/metrics").text
        assert 'modelpilot_alerts_firing{rule="memory",severity="info"} 1.0' in exposition
        assert 'modelpilot_alerts_firing{rule="latency_p99",severity="warning"} 0.0' in exposition
        (told,) = hooks.wait_for("/ok", 1)
        assert (told.body["rule"], told.body["status"], told.body["project"]) == (
            "memory",
            "firing",
            "houses",
        )
        # The command line reads the same alerts from the database, server or not.
        capsys.readouterr()
        assert main(["-p", str(versions_project), "alerts", "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)["active"]
        assert [(a["rule"], a["state"], a["id"]) for a in listed] == [
            ("memory", "firing", memory["id"])
        ]
    assert "alert memory firing on (process)" in server.log
