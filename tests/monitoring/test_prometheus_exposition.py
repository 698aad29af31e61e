"""``GET /metrics`` of the real server: valid for Prometheus, and exact.

- After mixed traffic (answers, client errors, a failing pipeline step, feedback) and once the
  monitor has set its drift and key-metric gauges, ``promtool check metrics`` accepts the
  exposition (names, types, units, ``_total`` counters).
- The reliability clause of the monitoring issue: 10,000 instances with 1% bad values, sent as
  single records and as batches by concurrent clients; the per-feature missing, out-of-range
  and unseen-category counters grow by exactly what was sent.
"""

from __future__ import annotations

import random
import subprocess
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pandas as pd
import pytest
from monitoring_helpers import CLEANED, promtool, scrape, value

from live_server import DEPLOYMENT, LiveServer, auth, poll
from modelpilot.datasets import HOUSE_FEATURES
from project_helpers import as_instances

PREDICT = f"/v1/deployments/{DEPLOYMENT}/predict"
FEATURES = [f.name for f in HOUSE_FEATURES]
N_INSTANCES = 10_000
N_SINGLES = 200  # requests of one bare record; the rest go 200 to a request
BATCH = 200


@pytest.fixture(scope="module")
def holdout(house_data: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return house_data[1]


def _requests_total(http: httpx.Client, outcome: str, deployment: str = DEPLOYMENT) -> float:
    samples = scrape(http)
    return sum(
        v
        for (name, labels), v in samples.items()
        if name == "modelpilot_requests_total"
        and ("deployment", deployment) in labels
        and ("outcome", outcome) in labels
    )


def test_the_exposition_passes_promtool_after_mixed_traffic(
    monitored_server: LiveServer, http: httpx.Client, holdout: pd.DataFrame
) -> None:
    tool = promtool()
    records = as_instances(holdout.iloc[:60])
    before = {o: _requests_total(http, o) for o in ("ok", "client_error")}
    answered = http.post(PREDICT, json={"instances": records})
    assert answered.status_code == 200
    assert http.post(PREDICT, json=records[0]).status_code == 200  # one bare record
    bad = {**records[0], "size_sqft": -5}
    assert http.post(PREDICT, json={"instances": [bad]}).status_code == 422
    assert http.post(PREDICT, content=b"{not json").status_code == 400
    assert http.post("/v1/deployments/nope/predict", json=records[0]).status_code == 404
    unauthorized = http.post(PREDICT, json=records[0], headers={"Authorization": ""})
    assert unauthorized.status_code == 401
    impossible = {**records[0], "bedrooms": 12, "size_sqft": 300}  # the step's bug
    assert http.post(f"/v1/deployments/{CLEANED}/predict", json=impossible).status_code == 500
    ids = [p["id"] for p in answered.json()["predictions"]]
    labels = [
        {"prediction_id": i, "label": float(p)}
        for i, p in zip(ids, holdout["price"].iloc[:60], strict=True)
    ]
    assert http.post("/v1/feedback", json={"items": labels}).status_code == 200

    # The control loop's monitor turns the log and the labels into gauges within seconds.
    def gauges_set() -> bool:
        samples = scrape(http)
        return (
            "modelpilot_drift_share_ratio",
            frozenset({("deployment", DEPLOYMENT)}),
        ) in samples and value(
            samples, "modelpilot_key_metric", deployment=DEPLOYMENT, metric="mae"
        ) > 0

    poll(gauges_set, what="the monitor's drift and key-metric gauges", timeout=60)
    assert _requests_total(http, "ok") - before["ok"] == 2
    # 422 and 400 are counted for the deployment; 401 and 404 before one is known.
    assert _requests_total(http, "client_error") - before["client_error"] == 2
    assert _requests_total(http, "client_error", "(unknown)") >= 2
    assert _requests_total(http, "model_error", CLEANED) >= 1
    exposition = http.get("/metrics")
    assert exposition.headers["content-type"].startswith("text/plain; version=0.0.4")
    checked = subprocess.run(
        [tool, "check", "metrics"],
        input=exposition.content,
        capture_output=True,
        timeout=60,
        check=False,
    )
    problems = (checked.stdout + checked.stderr).decode()
    assert checked.returncode == 0 and not problems.strip(), problems
    samples = scrape(http)
    assert value(samples, "modelpilot_requests_in_flight", deployment=DEPLOYMENT) == 0
    assert value(samples, "modelpilot_feedback_total", kind="label") >= len(labels)
    assert value(samples, "modelpilot_log_rows_total") > 0


def _bad_value(kind: str, record: dict[str, Any]) -> tuple[str, str]:
    """Spoil one value of ``record`` in place; returns (counter, feature) it must raise."""
    spoil: dict[str, tuple[str, str, Any]] = {
        "absent": ("missing", "bedrooms", ...),
        "null": ("missing", "age_years", None),
        "null-nullable": ("missing", "lot_acres", None),  # allowed, and still missing
        "absent-category": ("missing", "location", ...),
        "too-small": ("out_of_range", "size_sqft", -5.0),
        "too-many": ("out_of_range", "bedrooms", 99),
        "too-far": ("out_of_range", "distance_km", 500.0),
        "too-old": ("out_of_range", "age_years", 250),
        "unseen": ("unseen", "location", "downtown"),
        "unseen-condition": ("unseen", "condition", "derelict"),
    }
    counter, feature, new = spoil[kind]
    if new is ...:
        del record[feature]
    else:
        record[feature] = new
    return counter, feature


def _payloads(holdout: pd.DataFrame, seed: int = 0) -> tuple[list[Any], Counter[tuple[str, str]]]:
    """10,000 instances, 1% of them with one bad value, as 200 bare records and 49 batches;
    and how many missing / out-of-range / unseen values of each feature they hold."""
    rng = random.Random(seed)
    clean = holdout.drop(columns="price").assign(lot_acres=holdout["lot_acres"].fillna(0.5))
    base = as_instances(clean)
    instances = [dict(base[i % len(base)]) for i in range(N_INSTANCES)]
    kinds = [
        "absent",
        "null",
        "null-nullable",
        "absent-category",
        "too-small",
        "too-many",
        "too-far",
        "too-old",
        "unseen",
        "unseen-condition",
    ]
    sent: Counter[tuple[str, str]] = Counter()
    for n, index in enumerate(rng.sample(range(N_INSTANCES), N_INSTANCES // 100)):
        sent[_bad_value(kinds[n % len(kinds)], instances[index])] += 1
    payloads: list[Any] = list(instances[:N_SINGLES])  # a bare record is one instance
    for start in range(N_SINGLES, N_INSTANCES, BATCH):
        payloads.append({"instances": instances[start : start + BATCH]})
    rng.shuffle(payloads)
    return payloads, sent


def test_input_counters_match_what_was_sent_exactly(
    monitored_server: LiveServer, http: httpx.Client, holdout: pd.DataFrame
) -> None:
    payloads, sent = _payloads(holdout)
    assert sum(sent.values()) == N_INSTANCES // 100
    before = scrape(http)

    def send(chunk: list[Any]) -> Counter[int]:
        statuses: Counter[int] = Counter()
        with httpx.Client(base_url=monitored_server.url, headers=auth(), timeout=60) as client:
            for payload in chunk:
                statuses[client.post(PREDICT, json=payload).status_code] += 1
        return statuses

    with ThreadPoolExecutor(4) as pool:
        statuses = sum(pool.map(send, [payloads[i::4] for i in range(4)]), Counter[int]())
    after = scrape(http)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert set(statuses) <= {200, 422}, statuses
    assert sum(statuses.values()) == len(payloads)
    assert (
        delta("modelpilot_requests_total", deployment=DEPLOYMENT, version="1", outcome="ok")
        == (statuses[200])
    )
    # A rejected request is counted before its version is known.
    rejected = delta(
        "modelpilot_requests_total", deployment=DEPLOYMENT, version="", outcome="client_error"
    )
    assert rejected == statuses[422]
    for feature in FEATURES:
        values = delta("modelpilot_input_values_total", deployment=DEPLOYMENT, feature=feature)
        assert values == N_INSTANCES, feature
        for counter in ("missing", "out_of_range", "unseen"):
            name = "unseen_category" if counter == "unseen" else counter
            got = delta(f"modelpilot_input_{name}_total", deployment=DEPLOYMENT, feature=feature)
            assert got == sent[(counter, feature)], (counter, feature)
            assert got / values == sent[(counter, feature)] / N_INSTANCES  # the rate, exactly
