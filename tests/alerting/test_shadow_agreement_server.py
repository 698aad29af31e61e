"""The real server on 127.0.0.1 in a shadow rollout: a candidate that answers like production
raises no ``shadow_agreement`` alert, one that answers the mean price whatever the house fires
it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import skops.io as sio
from alerting_helpers import update_project
from sklearn.dummy import DummyRegressor

from live_server import DEPLOYMENT, LiveServer, auth, live_server, poll
from project_helpers import register

MIN_COMPARED = 20
RULE = {
    "name": "shadow_disagrees",
    "metric": "shadow_agreement",
    "comparison": "<",
    "threshold": 0.9,
    "aggregate": "last",
    "window_s": 5,
    "severity": "critical",
}


def predict(server: LiveServer, holdout: pd.DataFrame, rows: int) -> None:
    """``rows`` houses, ten per request: each is mirrored to the shadow."""
    features = holdout.drop(columns="price").head(rows)
    instances = features.astype(object).where(features.notna(), None).to_dict("records")
    with httpx.Client(base_url=server.url, headers=auth(), timeout=60.0) as client:
        for start in range(0, rows, 10):
            answered = client.post(
                f"/v1/deployments/{DEPLOYMENT}/predict",
                json={"instances": instances[start : start + 10]},
            )
            assert answered.status_code == 200, answered.text


def agreement_points(server: LiveServer, version: int) -> list[float]:
    body = server.get("/v1/metrics/series", name="shadow_agreement", labels=f"version={version}")
    return [p["value"] for series in body["series"] for p in series["points"]]


def shadow_alerts(server: LiveServer) -> list[dict[str, Any]]:
    body = server.get("/v1/alerts")
    return [a for a in body["active"] + body["recent"] if a["rule"] == RULE["name"]]


def test_a_disagreeing_shadow_fires_the_agreement_alert_and_an_agreeing_one_does_not(
    versions_project: Path,
    tmp_path: Path,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
    clean_environ: None,
) -> None:
    train, holdout = house_data
    mean_price = tmp_path / "mean_price.skops"  # v3: the mean price, whatever the house
    sio.dump(DummyRegressor().fit(train.drop(columns="price"), train["price"]), mean_price)
    register(versions_project, mean_price, production=False)
    update_project(
        versions_project,
        {
            "monitoring": {"interval_s": 1},
            "rollout": {
                "analysis_interval_s": 0.5,
                "gates": [{"metric": "agreement", "threshold": 0.8, "min_samples": MIN_COMPARED}],
            },
            "alerts": {"defaults": False, "rules": [RULE]},
        },
    )
    with live_server(versions_project) as server:
        # v2 is the production model again: it agrees on every mirrored request.
        assert server.admin("deploy", version=2, strategy="shadow").status_code == 200
        predict(server, holdout, 2 * MIN_COMPARED)

        # Two points: the engine has evaluated the first (it runs after each write).
        def two_points() -> list[float] | None:
            found = agreement_points(server, 2)
            return found if len(found) >= 2 else None

        points = poll(two_points, what="two shadow_agreement points of v2")
        assert set(points) == {1.0}
        assert shadow_alerts(server) == []
        assert server.admin("abort", reason="v2 agrees").status_code == 200

        assert server.admin("deploy", version=3, strategy="shadow", force=True).status_code == 200
        predict(server, holdout, 2 * MIN_COMPARED)
        (alert,) = poll(
            lambda: [a for a in shadow_alerts(server) if a["state"] == "firing"],
            what="the shadow_disagrees alert to fire",
        )
        assert (alert["deployment"], alert["labels"], alert["severity"]) == (
            DEPLOYMENT,
            {"version": "3"},
            "critical",
        )
        assert alert["value"] < 0.9 and alert["threshold"] == 0.9
        assert all(a["labels"] == {"version": "3"} for a in shadow_alerts(server))

        # Once every mirrored request is compared, the alert's value is the rollout's figure.
        def all_compared() -> dict[str, Any] | None:
            report: dict[str, Any] = server.status()["rollout"]["shadow"]
            return report if report["compared"] == 2 * MIN_COMPARED else None

        shadow = poll(all_compared, what="every mirrored request compared")
        poll(
            lambda: [a["value"] for a in shadow_alerts(server)] == [shadow["agreement"]],
            what=f"the alert's value at {shadow['agreement']}",
        )
    assert "alert shadow_disagrees firing on houses" in server.log
