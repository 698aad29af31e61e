"""The dashboard's HTTP surface on the live server: the page, its files and the JSON it polls."""

from __future__ import annotations

import re

import httpx
import pytest
from dashboard_helpers import REVIEWED, Dashboard

from live_server import DEPLOYMENT, auth


def test_the_page_is_served_at_the_root_without_a_token(dashboard: Dashboard) -> None:
    response = httpx.get(f"{dashboard.server.url}/", timeout=30.0)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    # It asks for a token before its first request, and may load nothing from elsewhere.
    assert 'data-auth="token"' in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", response.text)


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        *(
            (f"/static/{name}.js", "javascript")
            for name in ("app", "core", "charts", "overview", "reviews", "registry", "history")
        ),
        *((f"/static/{name}.js", "javascript") for name in ("drift", "alerts")),
        ("/static/style.css", "text/css"),
    ],
)
def test_the_script_and_the_style_sheet_come_from_the_package(
    dashboard: Dashboard, path: str, media_type: str
) -> None:
    response = httpx.get(f"{dashboard.server.url}{path}", timeout=30.0)
    assert response.status_code == 200
    assert media_type in response.headers["content-type"]
    assert "https://" not in response.text  # no CDN: the dashboard works offline


def test_metric_names_list_what_the_monitor_records(dashboard: Dashboard) -> None:
    names = dashboard.server.get("/v1/metrics/names")["names"]
    assert {"request_rate", "latency_p99_ms", "drift_score", "key_metric"} <= set(names)


def test_series_are_grouped_by_label_set(dashboard: Dashboard) -> None:
    payload = dashboard.server.get(
        "/v1/metrics/series", name="drift_score", deployment=DEPLOYMENT, since=600
    )
    features = {s["labels"]["feature"] for s in payload["series"]}
    assert {"size_sqft", "location", "(prediction)"} <= features
    for series in payload["series"]:
        assert series["name"] == "drift_score" and series["deployment"] == DEPLOYMENT
        assert series["points"], series
        stamps = [p["ts"] for p in series["points"]]
        assert stamps == sorted(stamps)
        assert all(payload["now"] - 600 <= ts <= payload["now"] for ts in stamps)
        assert all(p["labels"] == series["labels"] for p in series["points"])


def test_a_label_filter_keeps_only_matching_series(dashboard: Dashboard) -> None:
    payload = dashboard.server.get(
        "/v1/metrics/series",
        name="drift_score,drift_detected",
        deployment=DEPLOYMENT,
        labels="feature=size_sqft",
        since=600,
    )
    assert sorted((s["name"], s["labels"]["feature"]) for s in payload["series"]) == [
        ("drift_detected", "size_sqft"),
        ("drift_score", "size_sqft"),
    ]


def test_the_project_endpoint_gives_the_targets_the_charts_draw(dashboard: Dashboard) -> None:
    project = dashboard.server.get("/v1/project")
    assert (project["project"], project["task"]) == ("houses", "regression")
    assert {m["text"] for m in project["key_metrics"]} == {"mae <= 25000", "r2 >= 0.8"}
    assert project["service_objectives"]["latency_p99_ms"] == 100
    assert project["monitoring"]["interval_s"] == 1
    assert project["deployments"] == [DEPLOYMENT, REVIEWED]
    assert isinstance(project["endpoints"]["alerts"], bool)


@pytest.mark.parametrize(
    "path", ["/v1/metrics/names", "/v1/metrics/series?name=request_rate", "/v1/project"]
)
def test_the_data_endpoints_need_a_predict_token(dashboard: Dashboard, path: str) -> None:
    response = httpx.get(f"{dashboard.server.url}{path}", timeout=30.0)
    assert response.status_code == 401
    assert "predict token" in response.json()["message"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("", "name"),
        ("name=request_rate;drop", "name"),
        ("name=request_rate&since=-1", "since"),
        ("name=request_rate&since=soon", "since"),
        ("name=request_rate&labels=feature", "labels"),
        ("name=request_rate&points=1", "points"),
    ],
)
def test_a_malformed_series_query_says_which_parameter_is_wrong(
    dashboard: Dashboard, query: str, parameter: str
) -> None:
    response = httpx.get(
        f"{dashboard.server.url}/v1/metrics/series?{query}", headers=auth(), timeout=30.0
    )
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "bad_request"
    assert f"the query parameter {parameter!r} must be" in body["message"]
