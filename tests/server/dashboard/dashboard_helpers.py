"""Helpers of the dashboard tests: a project with short monitoring intervals, and a client
thread that sends predictions (some invalid) and their labels until stopped. The real server
comes from :mod:`live_server`.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from live_server import DEPLOYMENT, LiveServer, auth
from modelpilot.datasets import house_prices
from project_helpers import build_project, register

#: A second deployment of the model, at assist automation: every prediction it answers waits
#: for a person in the review queue (the reviewers' tests send it a few).
REVIEWED = "houses-review"
# Measurements every second and drift checks every two, so a test sees charts fill in seconds.
SETTINGS: dict[str, Any] = {
    "deployments": [{"name": DEPLOYMENT}, {"name": REVIEWED, "automation": "assist"}],
    "monitoring": {
        "interval_s": 1,
        "label_window": 50,
        # A share of 0.2: the larger houses drift enough features for the drift_share alert.
        "drift": {"interval_s": 2, "min_rows": 50, "window_s": 600, "dataset_threshold": 0.2},
    },
    "rollout": {"steps": [25.0, 50.0, 100.0], "analysis_interval_s": 2, "step_interval_s": 900},
}


def build_dashboard_project(
    directory: Path,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    model_file: Path,
    *,
    settings: Mapping[str, Any] = SETTINGS,
) -> Path:
    """The house-price project: v1 in production (with a reference profile, so drift is
    checked, and its features' importance), and v2, a copy, registered for a canary."""
    build_project(directory, holdout, model_file, train=train, settings=settings)
    # The candidate needs no reference profile: drift is v1's.
    register(directory, model_file, production=False)
    return directory


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    features = frame.drop(columns="price")
    records: list[dict[str, Any]] = (
        features.astype(object).where(features.notna(), None).to_dict("records")
    )
    return records


@dataclass
class Traffic:
    """One client thread: predictions at about ``rate`` requests a second until stopped.

    The houses are 30% larger than in training (the seed's data drift), every tenth request is
    invalid (a negative size: 422), and each answered prediction gets its true price as a
    label, sent in batches to ``POST /v1/feedback``.
    """

    url: str
    rate: float = 40.0
    seed: int = 11
    sent: int = field(default=0, init=False)
    rejected: int = field(default=0, init=False)
    labeled: int = field(default=0, init=False)
    failures: list[str] = field(default_factory=list, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def __enter__(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, name="dashboard-traffic", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        houses = house_prices(4000, seed=self.seed, size_shift=0.3)
        records = _records(houses)
        prices = houses["price"].tolist()
        pending: list[dict[str, Any]] = []
        index = 0
        with httpx.Client(base_url=self.url, headers=auth(), timeout=30.0) as client:
            while not self._stop.is_set():
                try:
                    if self.sent % 10 == 9:
                        bad = dict(records[index % len(records)], size_sqft=-5)
                        response = client.post(f"/v1/deployments/{DEPLOYMENT}/predict", json=bad)
                        self.rejected += response.status_code == 422
                    else:
                        count = 1 + self.sent % 3
                        rows = [(index + i) % len(records) for i in range(count)]
                        response = client.post(
                            f"/v1/deployments/{DEPLOYMENT}/predict",
                            json={"instances": [records[i] for i in rows]},
                        )
                        if response.status_code == 200:
                            for row, item in zip(rows, response.json()["predictions"], strict=True):
                                pending.append({"prediction_id": item["id"], "label": prices[row]})
                        index += count
                    self.sent += 1
                    if len(pending) >= 20:
                        answer = client.post("/v1/feedback", json={"items": pending})
                        self.labeled += int(answer.json().get("accepted", 0))
                        pending = []
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self._stop.wait(1.0 / self.rate)


@dataclass
class Dashboard:
    """The session's live server, the traffic it gets, and its project directory."""

    server: LiveServer
    traffic: Traffic
    directory: Path
