"""The OpenAPI document is the contract: schemathesis checks the live server against it.

With a predict token and with an admin token, every operation of ``/openapi.json`` gets
schemathesis's phases (examples, coverage, fuzzing, and stateful sequences that follow the
document's links from ``GET /v1/deployments`` to V2 inference), a fixed seed and a few
examples each (``schemathesis.toml`` beside this file, which also says where a schema-valid
request may still be refused for what it names). Any failure fails the test, with
schemathesis's report of it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from live_server import ADMIN_TOKEN, PREDICT_TOKEN, LiveServer

HERE = Path(__file__).parent
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def _run(server: LiveServer, token: str, report: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{server.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--no-color",
            "--report",
            "ndjson",
            "--report-ndjson-path",
            str(report),
        ],
        cwd=HERE,  # schemathesis.toml
        capture_output=True,
        text=True,
        timeout=300,
    )


def _stateful_calls(report: Path) -> set[tuple[str, str]]:
    """The operations the stateful phase reached by following a link."""
    calls = set()
    for line in report.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        finished = event.get("ScenarioFinished")
        if not finished or finished.get("phase") != "stateful":
            continue
        for case in (finished.get("recorder") or {}).get("cases", {}).values():
            if case.get("is_transition_applied"):
                calls.add((case["value"]["method"], case["value"]["path"]))
    return calls


@pytest.mark.parametrize("token", [PREDICT_TOKEN, ADMIN_TOKEN], ids=["predict", "admin"])
def test_the_server_keeps_to_its_openapi_document(
    server: LiveServer, tmp_path: Path, token: str
) -> None:
    report = tmp_path / "events.ndjson"
    result = _run(server, token, report)
    assert result.returncode == 0, result.stdout[-20_000:] + result.stderr[-5_000:]
    assert "Seed: 15" in result.stdout  # the fixed seed of schemathesis.toml
    assert ("POST", "/v2/models/{name}/infer") in _stateful_calls(report), result.stdout[-5000:]
    assert "Traceback" not in server.log
