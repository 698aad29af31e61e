"""Hostile input against the live server: oversized bodies and fields, unbounded queries,
malformed V2 requests. Each gets a 4xx that says what the limit is, never a 500, never a
traceback per request in the server log, and the server keeps answering predictions."""

from __future__ import annotations

import struct
import time
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from live_server import ADMIN_TOKEN, DEPLOYMENT, LiveServer, auth
from project_helpers import as_instances

PREDICT = f"/v1/deployments/{DEPLOYMENT}/predict"
INFER = f"/v2/models/{DEPLOYMENT}/infer"
FEATURES = 9  # the house-price schema's width


@pytest.fixture(scope="module")
def row(house_data: tuple[pd.DataFrame, pd.DataFrame]) -> dict[str, Any]:
    return as_instances(house_data[1].iloc[:1])[0]


def _tracebacks(server: LiveServer) -> int:
    return server.log.count("Traceback (most recent call last)")


# ---- bodies and fields ------------------------------------------------------------------------
def test_an_oversized_feedback_body_is_refused_at_once_without_reading_it(
    http: httpx.Client,
) -> None:
    started = time.monotonic()
    response = http.post(
        "/v1/feedback",
        content=b'{"items": [' + b" " * (3 << 20) + b"]}",
        headers={**auth(), "content-type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert "serving.max_feedback_body_bytes" in response.json()["message"]
    assert time.monotonic() - started < 10  # the probe's 47 MB body took 81 s


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/deployments/{DEPLOYMENT}/automation",
        f"/v1/deployments/{DEPLOYMENT}/rollback",
        "/v1/retrain",
        "/v1/reviews/r1/decision",
    ],
)
def test_every_other_route_has_a_body_limit(http: httpx.Client, path: str) -> None:
    body = orjson.dumps({"reason": "x" * 100_000})
    response = http.post(path, content=body, headers=auth(ADMIN_TOKEN))
    assert response.status_code == 413, response.text
    assert "65,536 bytes (serving.max_other_body_bytes)" in response.json()["message"]


def test_a_device_upload_has_the_prediction_routes_limit(http: httpx.Client) -> None:
    # 500 records of a device's log are ~200 KB, past the 64 KB of small admin bodies: read
    # and checked (each record's problem named), not refused unread.
    record = {"id": "r", "ts": 1.0, "model": "nope", "version": 1, "inputs": {"x": "y" * 300}}
    upload = f"/v1/edge/{DEPLOYMENT}/predictions"
    body = {"device": "pos-1", "records": [{**record, "id": f"r{i}"} for i in range(500)]}
    response = http.post(upload, json=body, headers=auth())
    assert response.status_code == 422, response.text
    assert "model" in response.json()["message"]
    huge = {"device": "pos-1", "records": [{**record, "inputs": {"x": "y" * 3000}}] * 400}
    refused = http.post(upload, json=huge, headers=auth())
    assert refused.status_code == 413, refused.text
    assert "(serving.max_body_bytes); upload the device's log" in refused.json()["message"]


def test_a_body_without_content_length_is_cut_at_the_limit(http: httpx.Client) -> None:
    def chunks() -> Any:
        for _ in range(200):  # 2 MB in chunks, no content-length: counted as it arrives
            yield b" " * 10_000

    response = http.post(
        f"/v1/deployments/{DEPLOYMENT}/automation", content=chunks(), headers=auth(ADMIN_TOKEN)
    )
    assert response.status_code == 413, response.text


def test_free_text_fields_have_a_length_cap(http: httpx.Client) -> None:
    response = http.post(
        f"/v1/deployments/{DEPLOYMENT}/automation",
        json={"degree": "full", "reason": "r" * 2001},
        headers=auth(ADMIN_TOKEN),
    )
    assert response.status_code == 422, response.text
    assert response.json()["problems"] == [
        {"field": "reason", "expected": "at most 2,000 characters", "got": "2,001 characters"}
    ]


# ---- queries ----------------------------------------------------------------------------------
def test_a_series_query_repeating_one_name_thousands_of_times_is_one_series(
    http: httpx.Client,
) -> None:
    names = ",".join(["latency_p99_ms"] * 2000)  # a 30 KB URL
    response = http.get(
        "/v1/metrics/series", params={"name": names, "points": 10_000}, headers=auth()
    )
    assert response.status_code == 200, response.text
    assert {s["name"] for s in response.json()["series"]} <= {"latency_p99_ms"}


def test_a_series_query_past_its_limits_is_422_naming_them(http: httpx.Client) -> None:
    names = ",".join(f"metric_{i}" for i in range(21))
    response = http.get("/v1/metrics/series", params={"name": names}, headers=auth())
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert "21 different metric names (limits: 20 names, 50,000 points answered" in message


# ---- the Open Inference Protocol ---------------------------------------------------------------
def _tensor(shape: Any, data: Any = None, **fields: Any) -> dict[str, Any]:
    tensor: dict[str, Any] = {"name": "x", "shape": shape, "datatype": "FP64", **fields}
    if data is not None:
        tensor["data"] = data
    return tensor


def _binary(raw: bytes, datatype: str, size: Any, shape: Any = None) -> tuple[bytes, int]:
    tensor = {
        "name": "x",
        "shape": shape or [1, FEATURES],
        "datatype": datatype,
        "parameters": {"binary_data_size": size},
    }
    head = orjson.dumps({"inputs": [tensor]})
    return head + raw, len(head)


class _Nested:
    """A JSON array nested ``depth`` deep (written as text: too deep for a JSON encoder)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth


def _dumps(body: Any) -> bytes:
    nested = [t for t in body.get("inputs", []) if isinstance(t.get("data"), _Nested)]
    if not nested:
        return orjson.dumps(body)
    depth = nested[0]["data"].depth
    nested[0]["data"] = "@DATA@"
    inner = "[" * depth + ",".join(["1.0"] * FEATURES) + "]" * depth
    return orjson.dumps(body).replace(b'"@DATA@"', inner.encode())


def _malformed(row: dict[str, Any]) -> list[tuple[str, bytes, dict[str, str]]]:
    values = list(row.values())
    cases: list[tuple[str, Any, dict[str, str]]] = [
        ("shape [2,9] with 9 values", {"inputs": [_tensor([2, FEATURES], values)]}, {}),
        ("shape [1e9,9]", {"inputs": [_tensor([1e9, FEATURES], values)]}, {}),
        ('shape ["a",9]', {"inputs": [_tensor(["a", FEATURES], values)]}, {}),
        ("shape 5", {"inputs": [_tensor(5, values)]}, {}),
        ("shape [1e30,9]", {"inputs": [_tensor([1e30, FEATURES], values)]}, {}),
        ("outputs [5]", {"inputs": [_tensor([1, FEATURES], values)], "outputs": [5]}, {}),
        ("parameters [1]", {"inputs": [_tensor([1, FEATURES], values)], "parameters": [1]}, {}),
        ("tensor parameters [1]", {"inputs": [_tensor([1, FEATURES], values, parameters=[1])]}, {}),
        ("data nested 100 deep", {"inputs": [_tensor([1, FEATURES], _Nested(100))]}, {}),
        ("data nested 900 deep", {"inputs": [_tensor([1, FEATURES], _Nested(900))]}, {}),
        ("shape [1,9] with 18 values", {"inputs": [_tensor([1, FEATURES], values * 2)]}, {}),
        (
            "datatype WHATEVER",
            {"inputs": [_tensor([1, FEATURES], values, datatype="WHATEVER")]},
            {},
        ),
        (
            "per-feature shape [99]",
            {
                "inputs": [
                    {
                        "name": k,
                        "shape": [99],
                        "datatype": "BYTES" if isinstance(v, str) else "FP64",
                        "data": [v],
                    }
                    for k, v in row.items()
                ]
            },
            {},
        ),
    ]
    encoded = [(what, _dumps(body), headers) for what, body, headers in cases]
    for what, size in (("size -8", -8), ("size 77", 77), ('size "abc"', "abc"), ("size 1.5", 1.5)):
        body, head = _binary(np.zeros(FEATURES).tobytes(), "FP64", size)
        encoded.append((what, body, {"inference-header-content-length": str(head)}))
    body, head = _binary(np.zeros(FEATURES).tobytes(), "FP32", 8 * FEATURES)
    encoded.append(
        ("FP64 bytes declared FP32", body, {"inference-header-content-length": str(head)})
    )
    prefix = struct.pack("<I", 1000) + b"abc"
    body, head = _binary(prefix, "BYTES", len(prefix), shape=[1])
    encoded.append(
        ("BYTES prefix past the end", body, {"inference-header-content-length": str(head)})
    )
    encoded.append(
        (
            "header length abc",
            orjson.dumps({"inputs": []}),
            {"inference-header-content-length": "abc"},
        )
    )
    return encoded


def test_every_malformed_v2_request_is_a_4xx_never_a_500_nor_a_guess(
    server: LiveServer, http: httpx.Client, row: dict[str, Any]
) -> None:
    before = _tracebacks(server)
    answers = {}
    for what, body, headers in _malformed(row):
        response = http.post(INFER, content=body, headers={**auth(), **headers})
        answers[what] = (response.status_code, response.text[:200])
    wrong = {what: answer for what, answer in answers.items() if not 400 <= answer[0] < 500}
    assert wrong == {}, wrong
    assert _tracebacks(server) == before, server.log[-3000:]
    # ... and the server still answers a well-formed request.
    good = {"inputs": [_tensor([1, FEATURES], list(row.values()), datatype="BYTES")]}
    assert http.post(INFER, json=good, headers=auth()).status_code in (200, 422)
    assert http.post(PREDICT, json={"instances": [row]}, headers=auth()).status_code == 200
