"""The JSON behind the dashboard's screens, on the live server: who a token is, the review
queue for a review token, the registry, a deployment's history and drift, handling alerts."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from dashboard_helpers import REVIEWED, Dashboard

from live_server import ADMIN_TOKEN, DEPLOYMENT, PREDICT_TOKEN, REVIEW_TOKEN, auth, poll
from modelpilot.datasets import house_prices
from project_helpers import as_instances, open_prediction_log


def _get(dashboard: Dashboard, path: str, token: str = PREDICT_TOKEN, **params: Any) -> Any:
    return httpx.get(
        f"{dashboard.server.url}{path}", params=params, headers=auth(token), timeout=30.0
    )


def _post(dashboard: Dashboard, path: str, body: Any, token: str = ADMIN_TOKEN) -> Any:
    return httpx.post(f"{dashboard.server.url}{path}", json=body, headers=auth(token), timeout=30)


@pytest.mark.parametrize(
    ("token", "who"),
    [
        (PREDICT_TOKEN, {"name": "env:predict", "role": "predict"}),
        (REVIEW_TOKEN, {"name": "env:review", "role": "review"}),
        (ADMIN_TOKEN, {"name": "env:admin", "role": "admin"}),
    ],
)
def test_a_token_learns_its_role(dashboard: Dashboard, token: str, who: dict[str, str]) -> None:
    assert _get(dashboard, "/v1/whoami", token).json() == who


def test_a_review_token_works_the_queue_and_nothing_else(dashboard: Dashboard) -> None:
    answer = _post(
        dashboard,
        f"/v1/deployments/{REVIEWED}/predict",
        {"instances": as_instances(house_prices(1, seed=8))},
        token=PREDICT_TOKEN,
    ).json()
    [prediction] = answer["predictions"]
    assert prediction["status"] == "pending_review"
    listing = _get(dashboard, "/v1/reviews", REVIEW_TOKEN, deployment=REVIEWED).json()
    [item] = [r for r in listing["reviews"] if r["id"] == prediction["review_id"]]
    assert item["why"].startswith("assist automation: a person confirms every prediction")
    assert listing["answer"] == {"kind": "number", "classes": []}

    refused = _get(dashboard, "/v1/reviews", PREDICT_TOKEN)
    assert refused.status_code == 403
    assert "needs a review token" in refused.json()["message"]
    for path in ("/v1/deployments", "/v1/alerts", "/v1/models"):
        assert _get(dashboard, path, REVIEW_TOKEN).status_code == 403, path
    predicted = _post(dashboard, f"/v1/deployments/{DEPLOYMENT}/predict", {}, REVIEW_TOKEN)
    assert predicted.status_code == 403

    with open_prediction_log(dashboard.directory) as log:
        poll(lambda: log.exists([prediction["id"]]), what="the prediction in the log")
    url = f"/v1/reviews/{item['id']}/decision"
    empty = _post(dashboard, url, {"value": None}, REVIEW_TOKEN)
    assert empty.status_code == 422 and "the decision (a label)" in empty.json()["message"]
    first = _post(dashboard, url, {"value": 300000}, REVIEW_TOKEN)
    assert first.status_code == 200 and first.json()["decided_by"] == "env:review"
    second = _post(dashboard, url, {"value": 310000}, REVIEW_TOKEN)
    assert second.status_code == 409
    assert second.json()["message"] == (
        f"review {item['id']} was already decided by env:review; the first decision stands "
        "(to correct it, send the prediction's label with replace: true, `modelpilot feedback "
        "PREDICTION_ID VALUE --replace`)"
    )
    agreement = _get(dashboard, "/v1/reviews/agreement", REVIEW_TOKEN, since=3600, bucket=60)
    buckets = agreement.json()["buckets"]
    assert buckets and all(0 <= b["rate"] <= 1 and b["cases"] >= 1 for b in buckets)


def test_the_registry_tells_versions_checks_aliases_lineage_and_rollouts(
    dashboard: Dashboard,
) -> None:
    assert [m["name"] for m in _get(dashboard, "/v1/models").json()["models"]] == [DEPLOYMENT]
    model = _get(dashboard, f"/v1/models/{DEPLOYMENT}").json()
    assert [v["version"] for v in model["versions"]] == [2, 1]  # newest first
    v2, v1 = model["versions"]
    assert v1["aliases"] == ["production"] and set(v1["serving"]) == {DEPLOYMENT, REVIEWED}
    assert v1["profiled"] and not v2["profiled"]  # v2 was registered without --data
    assert {c["metric"] for c in v1["checks"]} == {"mae", "r2"}
    assert model["aliases"] == {"production": 1}
    assert model["alias_history"][0]["alias"] == "production"

    detail = _get(dashboard, f"/v1/models/{DEPLOYMENT}/versions/1").json()
    assert detail["lineage"]["data_rows"] == detail["profile"]["rows"] > 0
    assert detail["profile"]["features"]["size_sqft"]["type"] == "numeric"
    assert detail["profile"]["target"]["name"] == "price"
    [rollout] = _get(dashboard, f"/v1/models/{DEPLOYMENT}/versions/2").json()["rollouts"]
    assert rollout["strategy"] == "canary" and rollout["candidate_version"] == 2

    missing = _get(dashboard, f"/v1/models/{DEPLOYMENT}/versions/9")
    assert missing.status_code == 404 and "houses has versions 1, 2" in missing.json()["message"]
    unknown = _get(dashboard, "/v1/models/flats")
    assert unknown.status_code == 404 and "registered models: houses" in unknown.json()["message"]


def test_the_history_of_a_deployment_tells_rollouts_steps_and_the_audit_log(
    dashboard: Dashboard,
) -> None:
    def analysed() -> list[dict[str, Any]] | None:
        entries = _history(dashboard)
        return entries if any(e["kind"] == "rollout" and e["steps"] for e in entries) else None

    history = poll(analysed, what="the canary's first analysis")
    [rollout] = [e for e in history if e["kind"] == "rollout"]
    assert rollout["by"] == "env:admin"
    # Running, it says why it started; rolled back, why it ended: the gate that failed (the
    # traffic's labels miss the key-metric target; on a busy machine the latency gate may fail
    # first). The deploy's audit entry keeps why it started.
    if rollout["status"] == "running":
        assert rollout["reason"] == "dashboard test"
    else:
        assert rollout["status"] == "rolled_back"
        assert rollout["reason"].startswith("gates failed: ")
        gates = {g["metric"] for s in rollout["steps"] for g in s["gates"]}
        assert any(f"{metric} failed" in rollout["reason"] for metric in gates), rollout
    step = rollout["steps"][0]
    assert step["weight"] == 25.0 and {g["metric"] for g in step["gates"]}
    [deployed] = [e for e in history if e.get("action") == "deploy.canary"]
    assert deployed["details"]["reason"] == "dashboard test"
    assert deployed["details"]["rollout"] == rollout["id"]
    actions = [e["action"] for e in history if e["kind"] == "audit"]
    assert "register" in actions and "alias.set" in actions
    times = [e["at"] for e in history]
    assert times == sorted(times, reverse=True)

    # An alert that fired (the drifted inputs) is told at the time it fired, as the alerts'
    # own list has it.
    fired = poll(
        lambda: [e for e in _history(dashboard) if e["kind"] == "alert" and e["fired_at"]],
        what="a fired alert in the history",
    )
    alerts = dashboard.server.get("/v1/alerts")
    listed = {a["id"]: a for a in alerts["active"] + alerts["recent"]}
    assert fired[0]["at"] == fired[0]["fired_at"] == listed[fired[0]["id"]]["fired_at"]
    assert fired[0]["rule"] == listed[fired[0]["id"]]["rule"]

    # An automation change, by whom and why (the review deployment stays at assist).
    change = {"degree": "assist", "reason": "kept at assist by the history test"}
    assert _post(dashboard, f"/v1/deployments/{REVIEWED}/automation", change).status_code == 200
    reviewed = _get(dashboard, f"/v1/deployments/{REVIEWED}/history", since=3600).json()
    [automation] = [e for e in reviewed["entries"] if e.get("action") == "automation.set"]
    assert automation["by"] == "env:admin" and automation["target"] == REVIEWED
    assert automation["details"] == {"from": "assist", "to": "assist", "reason": change["reason"]}

    bad = _get(dashboard, f"/v1/deployments/{DEPLOYMENT}/history", since="soon")
    assert bad.status_code == 400 and "'since' must be a whole number" in bad.json()["message"]
    assert _get(dashboard, "/v1/deployments/flats/history").status_code == 404


def _history(dashboard: Dashboard) -> list[dict[str, Any]]:
    body = _get(dashboard, f"/v1/deployments/{DEPLOYMENT}/history", since=3600).json()
    entries: list[dict[str, Any]] = body["entries"]
    return entries


def test_drift_detail_has_both_distributions_of_every_feature(dashboard: Dashboard) -> None:
    drift = _get(dashboard, f"/v1/deployments/{DEPLOYMENT}/drift").json()
    assert drift["version"] == 1 and drift["rows"] >= 50 and drift["message"] == ""
    size = next(f for f in drift["features"] if f["name"] == "size_sqft")
    assert size["drifted"] and size["summary"]["kind"] == "histogram"
    summary = size["summary"]
    assert len(summary["reference"]) == len(summary["current"]) == len(summary["edges"]) - 1
    assert sum(summary["reference"]) == pytest.approx(1.0, abs=1e-3)
    assert size["threshold_on"] in ("p_value", "statistic")
    # Registered with a holdout: each feature's share of the importance, size the largest.
    assert drift["importance_known"] is True and drift["importance_metric"] == "mae"
    importance = {f["name"]: f["importance"] for f in drift["features"]}
    assert max(importance, key=importance.__getitem__) == "size_sqft"
    location = next(f for f in drift["features"] if f["name"] == "location")
    assert location["summary"]["kind"] == "categories"
    assert drift["prediction"]["name"] == "prediction"
    assert _get(dashboard, "/v1/deployments/flats/drift").status_code == 404


def test_handling_an_alert_needs_an_admin_and_a_sound_request(dashboard: Dashboard) -> None:
    active = poll(lambda: dashboard.server.get("/v1/alerts")["active"], what="an active alert")
    alert_id = active[0]["id"]
    refused = _post(dashboard, f"/v1/alerts/{alert_id}/acknowledge", {}, PREDICT_TOKEN)
    assert refused.status_code == 403
    unknown = _post(dashboard, "/v1/alerts/99999/acknowledge", {})
    assert unknown.status_code == 404 and "alert '99999' was not found" in unknown.json()["message"]
    bad = _post(dashboard, f"/v1/alerts/{alert_id}/silence", {"duration_s": "1h"})
    assert bad.status_code == 422 and "duration_s" in bad.json()["message"]
    long = _post(dashboard, f"/v1/alerts/{alert_id}/silence", {"duration_s": 90 * 86400})
    assert long.status_code == 400 and "30 days" in long.json()["message"]
