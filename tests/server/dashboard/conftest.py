"""Fixtures of the dashboard tests: one live server with a canary running and traffic flowing,
shared by the API and the browser tests (starting a server costs seconds), and one headless
Chromium per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pandas as pd
import pytest
from browser_helpers import start_browser
from dashboard_helpers import Dashboard, Traffic, build_dashboard_project

from live_server import (
    ADMIN_TOKEN,
    DEPLOYMENT,
    ONE_OPENMP_THREAD,
    REVIEW_TOKEN,
    LiveServer,
    auth,
    live_server,
    poll,
)

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

# What every chart of the dashboard draws, with a label set that must have points.
CHARTED = {
    "latency_p99_ms": {},
    "request_rate": {},
    "error_rate": {},
    "client_error_rate": {},
    "drift_score": {"feature": "size_sqft"},
    "key_metric": {"metric": "mae"},
}


def _charted(server: LiveServer) -> bool:
    """Whether every charted metric has at least two points (a line, not a dot)."""
    payload = server.get(
        "/v1/metrics/series", name=",".join(CHARTED), deployment=DEPLOYMENT, since=600
    )
    for name, labels in CHARTED.items():
        counts = [
            len(s["points"])
            for s in payload["series"]
            if s["name"] == name and all(s["labels"].get(k) == v for k, v in labels.items())
        ]
        if not counts or max(counts) < 2:
            return False
    return True


@pytest.fixture(scope="session")
def dashboard(
    tmp_path_factory: pytest.TempPathFactory,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    house_model_file: Path,
) -> Iterator[Dashboard]:
    """The server, once every chart has data: v1 serving, a canary of v2 at step 1, traffic
    with invalid requests, drifted inputs and labels flowing until the session ends."""
    train, holdout = house_data
    directory = build_dashboard_project(
        tmp_path_factory.mktemp("dashboard") / "project", train, holdout, house_model_file
    )
    env = {**ONE_OPENMP_THREAD, "MODELPILOT_REVIEW_TOKEN": REVIEW_TOKEN}
    with live_server(directory, env=env) as server:
        deployed = httpx.post(
            f"{server.url}/v1/deployments/{DEPLOYMENT}/deploy",
            json={"version": 2, "strategy": "canary", "reason": "dashboard test"},
            headers=auth(ADMIN_TOKEN),
            timeout=60.0,
        )
        assert deployed.status_code == 200, deployed.text
        with Traffic(server.url) as traffic:
            poll(
                lambda: _charted(server),
                what="points of every charted metric",
                timeout=60.0,
                every=0.1,
            )
            yield Dashboard(server, traffic, directory)
        assert not traffic.failures, traffic.failures[:3]


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium, one for the session (starting one costs seconds on a busy machine);
    each test opens its screen with its own token and screen size (``open_screen``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not download anything
        driver = start_browser(tmp_path_factory.mktemp("chromium"))
        try:
            yield driver
        finally:
            driver.quit()
