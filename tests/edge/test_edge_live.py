"""Devices against a real server: assignments and bundles, the server's answers and errors,
syncs that lose an answer and resume, labels by id, per-device series, a fleet canary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from lossy_proxy import lossy_proxy

from live_server import ADMIN_TOKEN, PREDICT_TOKEN, LiveServer, auth, live_server, poll
from modelpilot.edge import EdgeRollout, in_canary
from modelpilot_edge import EdgeDevice, SyncFailed, UpdateFailed, ValidationFailed, generate_keys
from project_helpers import as_instances, open_prediction_log


@pytest.fixture(scope="module")
def server(edge_project: Path) -> Iterator[LiveServer]:
    with live_server(edge_project) as running:
        yield running


def _device(root: Path, name: str, key: str) -> EdgeDevice:
    return EdgeDevice(root / name, public_key=key, device_id=name, deployment="houses")


def _strip(answers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in a.items() if k != "id"} for a in answers]


def test_a_device_runs_its_assigned_bundle_and_answers_as_the_server(
    server: LiveServer,
    tmp_path: Path,
    public_key: str,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    records = as_instances(house_data[1].head(40))
    with _device(tmp_path, "pos-a", public_key) as device:
        report = device.update(server.url, PREDICT_TOKEN)
        assert (report.status, report.version) == ("updated", 1)
        assert device.update(server.url, PREDICT_TOKEN).status == "current"
        edge = device.predict(records)
        online = httpx.post(
            f"{server.url}/v1/deployments/houses/predict",
            headers=auth(),
            json={"instances": records},
            timeout=60,
        ).json()["predictions"]
        assert _strip(edge) == _strip(online)
        invalid: list[Any] = [
            [{**records[0], "size_sqft": "huge", "location": 3}, {"bedrooms": 2}],
            [],
            ["not a record"],
            [{**records[0], "has_garage": "maybe", "lot_acres": -1}],
        ]
        for instances in invalid:
            refused = httpx.post(
                f"{server.url}/v1/deployments/houses/predict",
                headers=auth(),
                json={"instances": instances},
                timeout=60,
            )
            assert refused.status_code == 422
            with pytest.raises(ValidationFailed) as caught:
                device.predict(instances)
            assert caught.value.to_dict() == refused.json()


def test_an_assignment_signed_with_another_key_is_ignored(
    server: LiveServer, tmp_path: Path
) -> None:
    stranger = generate_keys().public
    with _device(tmp_path, "pos-x", stranger) as device:
        with pytest.raises(UpdateFailed, match="not signed with this device's public key"):
            device.update(server.url, PREDICT_TOKEN)
        assert device.bundle is None


def test_syncs_that_lose_answers_store_each_prediction_once_and_resume(
    server: LiveServer,
    tmp_path: Path,
    public_key: str,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    records = as_instances(house_data[1].head(120))
    with _device(tmp_path, "pos-s", public_key) as device:
        device.update(server.url, PREDICT_TOKEN)
        answered = [a["id"] for record in records for a in [device.predict(record)]]
        # The second batch's answer is lost: committed on the server, unknown to the device.
        with lossy_proxy(server.url, lose={2}) as (url, proxy):
            with pytest.raises(SyncFailed, match="70 wait for the next sync"):
                device.sync(url, PREDICT_TOKEN, batch_size=50, retries=0)
            assert proxy.lost == 1
        assert device.log.pending_count() == 70
        # Resumed, with a retry in the middle: the first attempt's answer is lost too.
        with lossy_proxy(server.url, lose={1}) as (url, proxy):
            report = device.sync(
                url, PREDICT_TOKEN, batch_size=50, retries=2, sleep=lambda seconds: None
            )
        assert (report.retries, report.sent) == (1, 70)
        assert report.accepted == 20 and report.duplicates == 50
        assert device.log.pending_count() == 0
    with open_prediction_log(server.directory) as log:
        stored = log.get(answered)
        assert len(stored) == 120 and set(stored["device"]) == {"pos-s"}
        assert log.count(source="edge") >= 120
    label = httpx.post(
        f"{server.url}/v1/feedback",
        headers=auth(),
        json={"prediction_id": answered[0], "label": 350000},
        timeout=30,
    )
    assert label.status_code == 200, label.text
    with open_prediction_log(server.directory) as log:
        labeled = log.labeled(model="houses", source="edge")
    assert labeled.loc[labeled["id"] == answered[0], "label"].tolist() == [350000]
    series = server.get(
        "/v1/metrics/series",
        name="edge_predictions,edge_drift_share",
        deployment="houses",
        since="3600",
    )
    devices = {s["labels"].get("device") for s in series["series"]}
    assert "pos-s" in devices, series
    fleet = {d["device"]: d for d in server.get("/v1/edge/houses/devices")["devices"]}
    # The server saw the second batch three times: stored once, then two duplicates (the
    # resumed sync's lost first attempt, and its retry).
    assert fleet["pos-s"]["uploaded"] == 120 and fleet["pos-s"]["duplicates"] == 100
    assert 0.0 <= fleet["pos-s"]["drift_share"] <= 1.0  # the dashboard's edge panel shows it


def test_a_fleet_canary_moves_half_the_devices_and_its_gates_promote_it(
    server: LiveServer,
    tmp_path: Path,
    public_key: str,
    house_data: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    # The project's first edge rollout gets id 1: choose five devices inside its 50% and five
    # outside, so that exactly half move.
    first = EdgeRollout(1, "houses", "houses", 1, 2, 50.0, "running", 0.0, "admin")
    pool = [f"shop-{i}" for i in range(100)]
    chosen = [d for d in pool if in_canary(first, d)][:5] + [
        d for d in pool if not in_canary(first, d)
    ][:5]
    devices = [_device(tmp_path, name, public_key) for name in chosen]
    records = as_instances(house_data[1].head(30))
    try:
        assert {d.update(server.url, PREDICT_TOKEN).version for d in devices} == {1}
        started = httpx.post(
            f"{server.url}/v1/edge/houses/rollout",
            headers=auth(ADMIN_TOKEN),
            json={"version": 2, "share": 50},
            timeout=60,
        )
        assert started.status_code == 200, started.text
        assert started.json()["rollout"]["id"] == 1
        moved = [
            d.device_id for d in devices if d.update(server.url, PREDICT_TOKEN).status == "updated"
        ]
        assert moved == chosen[:5]
        for device in devices:
            device.predict(records)
            device.sync(server.url, PREDICT_TOKEN)

        def promoted() -> dict[str, Any] | None:
            status = server.get("/v1/edge/houses/rollout")
            return status if status["rollout"]["state"] != "running" else None

        status = poll(promoted, what="the edge canary's verdict", timeout=60)
        assert status["rollout"]["state"] == "promoted", status["rollout"]
        assert status["version"] == 2
        assert {g["metric"]: g["status"] for g in status["rollout"]["gates"]} == {
            "error_rate": "pass",
            "prediction_shift": "pass",
        }
        assigned = {d["device"]: d["assigned_version"] for d in status["devices"]}
        assert [assigned[name] for name in chosen] == [2] * 5 + [1] * 5
        after = [d.update(server.url, PREDICT_TOKEN) for d in devices]
        assert [r.status for r in after] == ["current"] * 5 + ["updated"] * 5
        assert {d.bundle.version for d in devices if d.bundle is not None} == {2}
    finally:
        for device in devices:
            device.close()
