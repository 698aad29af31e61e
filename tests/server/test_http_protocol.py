"""The server's HTTP protocol: uvicorn's, with a direct path for predictions, spoken to raw.

``modelpilot serve`` answers a ``POST`` to a prediction route on an idle HTTP/1.1 connection
without ASGI, and leaves everything else (other routes, pipelined requests behind a busy one,
``Expect: 100-continue``, HTTP/1.0) to uvicorn. These tests write HTTP/1.1 byte by byte on
sockets to the real server, so keep-alive, pipelining, the body limit, chunked bodies and
closing are exercised as a client meets them; and they check that the direct path answers
exactly what the ASGI application answers for the same request.

The server's second deployment, ``held``, serves :class:`held_model.HeldRegressor`: it raises on
one house size, and holds large houses in the model thread until the test opens their gate,
so a request is provably in flight when a client goes away or the server is stopped. A third,
``held-reviewed``, serves the same model version (so its requests share micro-batches with
``held``'s) with every answer going to a person for review.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import signal
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import joblib
import orjson
import pandas as pd
import pytest
from flaky_model import CURSED_SIZE
from held_model import GATES_VARIABLE, HELD_FROM, Gate, HeldRegressor
from server_helpers import importable_tests_env, model_predictions

from live_server import (
    ADMIN_TOKEN,
    DEPLOYMENT,
    PREDICT_TOKEN,
    LiveServer,
    auth,
    live_server,
    poll,
)
from modelpilot.project import Project
from modelpilot.server import ServingApp, build_state, create_app
from project_helpers import as_instances, build_project, open_prediction_log, register

MAX_BODY_BYTES = 4096
HELD = "held"
#: A third deployment of the held model, whose answers a person reviews (automation: assist).
REVIEWED = "held-reviewed"
PREDICT = f"/v1/deployments/{DEPLOYMENT}/predict"
HELD_PREDICT = f"/v1/deployments/{HELD}/predict"
INFER = f"/v2/models/{DEPLOYMENT}/infer"
TIMEOUT = 30.0  # the longest any answer may take here; a bound, never a pause


# ---- HTTP/1.1 by hand -----------------------------------------------------------------------
@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((v for n, v in self.headers if n == name), None)

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class RawConnection:
    """One TCP connection to the server; responses are read exactly as far as they go."""

    url: str
    sock: socket.socket = field(init=False)
    buffer: bytes = b""

    def __post_init__(self) -> None:
        address = httpx.URL(self.url)
        self.sock = socket.create_connection((address.host, address.port), timeout=TIMEOUT)

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _more(self, what: str) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError(
                f"the server closed the connection before {what}: {self.buffer!r}"
            )
        self.buffer += chunk

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._more(f"{marker!r}")
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._more(f"the {n} bytes of a body")
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def response(self) -> RawResponse:
        """The next response (an interim 1xx one too), with its whole body."""
        status_line, *lines = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        version, status, _ = status_line.split(" ", 2)
        assert version == "HTTP/1.1", status_line
        headers = []
        for line in lines:
            name, _, value = line.partition(":")
            headers.append((name.strip().lower(), value.strip()))
        names = [name for name, _ in headers]
        assert len(set(names)) == len(names), f"a header sent twice: {headers}"
        response = RawResponse(int(status), headers)
        if response.status < 200:
            return response
        if response.header("transfer-encoding") == "chunked":
            while size := int(self._until(b"\r\n"), 16):
                response.body += self._exactly(size)
                self._exactly(2)
            self._exactly(2)
        else:
            length = response.header("content-length")
            assert length is not None, f"a response without a length: {headers}"
            response.body = self._exactly(int(length))
        return response

    def closed_by_server(self, timeout: float = TIMEOUT) -> bool:
        """Whether the server closes the connection (within ``timeout``) without sending more."""
        self.sock.settimeout(timeout)
        try:
            while chunk := self.sock.recv(65536):
                self.buffer += chunk
        except ConnectionResetError:
            pass
        except TimeoutError:
            return False
        return self.buffer == b""


def http_request(
    method: str,
    path: str,
    body: bytes = b"",
    *,
    headers: Sequence[tuple[str, str]] = (),
    version: str = "1.1",
    token: str | None = PREDICT_TOKEN,
) -> bytes:
    """A request's bytes; a Content-Length is added unless ``headers`` frame the body."""
    lines = [f"{method} {path} HTTP/{version}", "Host: 127.0.0.1"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    framed = {n.lower() for n, _ in headers} & {"content-length", "transfer-encoding"}
    if method == "POST":
        lines.append("Content-Type: application/json")
        if not framed:
            lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def predict_request(
    records: list[dict[str, Any]],
    *,
    path: str = PREDICT,
    headers: Sequence[tuple[str, str]] = (),
    version: str = "1.1",
) -> bytes:
    body = orjson.dumps({"instances": records})
    return http_request("POST", path, body, headers=headers, version=version)


def chunks(*parts: bytes, last: bool = True) -> bytes:
    """A chunked body (without its terminating chunk unless ``last``)."""
    encoded = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts)
    return encoded + (b"0\r\n\r\n" if last else b"")


# ---- the project and its server -------------------------------------------------------------
@pytest.fixture(scope="module")
def holdout(house_data: tuple[pd.DataFrame, pd.DataFrame]) -> pd.DataFrame:
    return house_data[1]


@pytest.fixture(scope="module")
def held_model_file(
    tmp_path_factory: pytest.TempPathFactory, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> Path:
    train = house_data[0]
    path = tmp_path_factory.mktemp("held") / "held.joblib"
    joblib.dump(HeldRegressor().fit(train.drop(columns="price"), train["price"]), path)
    return path


def _project(directory: Path, holdout: pd.DataFrame, house_model: Path, held_model: Path) -> Path:
    settings = {
        # One model thread: while it holds a request, the others queue into one micro-batch.
        "serving": {"max_body_bytes": MAX_BODY_BYTES, "model_threads": 1},
        "deployments": [
            {"name": DEPLOYMENT},
            {"name": HELD, "model": HELD},
            {"name": REVIEWED, "model": HELD, "automation": "assist"},
        ],
    }
    # No key metrics: the held model predicts the mean and would be registered as rejected.
    build_project(directory, holdout, house_model, settings=settings, key_metrics=[])
    register(directory, held_model, name=HELD, production=True, trust=True)
    return directory


def _serve(directory: Path, gates: Path) -> Any:
    environ = {**importable_tests_env(), GATES_VARIABLE: str(gates)}
    return live_server(directory, trust=True, env=environ)


@pytest.fixture(scope="module")
def served_project(
    tmp_path_factory: pytest.TempPathFactory,
    holdout: pd.DataFrame,
    house_model_file: Path,
    held_model_file: Path,
) -> Path:
    return _project(tmp_path_factory.mktemp("protocol"), holdout, house_model_file, held_model_file)


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gates")


@pytest.fixture(scope="module")
def server(served_project: Path, gates: Path) -> Iterator[LiveServer]:
    with _serve(served_project, gates) as running:
        yield running


def _instances(holdout: pd.DataFrame, *positions: int) -> list[dict[str, Any]]:
    return as_instances(holdout.iloc[list(positions)])


def _prediction(response: RawResponse) -> float:
    assert response.status == 200, response.body
    [prediction] = response.json()["predictions"]
    return float(prediction["prediction"])


def _held_record(holdout: pd.DataFrame, size: float) -> dict[str, Any]:
    return {**_instances(holdout, 0)[0], "size_sqft": size}


# ---- keep-alive and pipelining --------------------------------------------------------------
def test_keep_alive_answers_each_prediction_in_turn_on_one_connection(
    server: LiveServer, holdout: pd.DataFrame, house_model_file: Path
) -> None:
    expected = model_predictions(house_model_file, holdout.iloc[:4])
    with RawConnection(server.url) as connection:
        for index in range(4):
            connection.send(predict_request(_instances(holdout, index)))
            response = connection.response()
            assert _prediction(response) == pytest.approx(expected[index], rel=1e-9)
            assert response.header("content-type") == "application/json"
            assert response.header("content-length") == str(len(response.body))
            assert response.header("server") == "uvicorn"
            date = response.header("date")
            assert date is not None and email.utils.parsedate_to_datetime(date).year >= 2024
            assert response.header("connection") is None  # kept open


PIPELINES = {
    "predict-healthz-predict": ["predict", "healthz", "predict"],
    "healthz-predict-predict": ["healthz", "predict", "predict"],
    "predict-predict-predict": ["predict", "predict", "predict"],
}


@pytest.mark.parametrize("order", list(PIPELINES.values()), ids=list(PIPELINES))
def test_pipelined_requests_are_answered_in_order_each_complete(
    server: LiveServer, holdout: pd.DataFrame, house_model_file: Path, order: list[str]
) -> None:
    expected = model_predictions(house_model_file, holdout.iloc[:4])
    requests = [
        predict_request(_instances(holdout, index))
        if kind == "predict"
        else http_request("GET", "/healthz")
        for index, kind in enumerate(order)
    ]
    with RawConnection(server.url) as connection:
        connection.send(b"".join(requests))  # one write: the server reads them together
        for index, kind in enumerate(order):
            response = connection.response()
            assert response.header("content-length") == str(len(response.body))
            if kind == "predict":
                assert _prediction(response) == pytest.approx(expected[index], rel=1e-9)
            else:
                assert (response.status, response.json()) == (200, {"status": "live"})
        assert connection.buffer == b""  # nothing more than the three answers
        connection.send(predict_request(_instances(holdout, 3)))  # and the connection lives on
        assert _prediction(connection.response()) == pytest.approx(expected[3], rel=1e-9)


def test_requests_pipelined_behind_a_slow_prediction_wait_for_its_answer(
    server: LiveServer,
    holdout: pd.DataFrame,
    gates: Path,
    house_model_file: Path,
    held_model_file: Path,
) -> None:
    # The first request is held in its model; the two behind it could be answered at once,
    # but HTTP/1.1 answers in the order of the requests.
    size = HELD_FROM + 3
    gate = Gate(gates, size)
    [expected] = model_predictions(house_model_file, holdout.iloc[[9]])
    with RawConnection(server.url) as connection:
        connection.send(
            predict_request([_held_record(holdout, size)], path=HELD_PREDICT)
            + http_request("GET", "/healthz")
            + predict_request(_instances(holdout, 9))
        )
        poll(gate.arrived, what="the first request to reach its model")
        gate.open()
        first = connection.response()
        assert _prediction(first) == pytest.approx(joblib.load(held_model_file).mean_)
        second = connection.response()
        assert (second.status, second.json()) == (200, {"status": "live"})
        assert _prediction(connection.response()) == pytest.approx(expected, rel=1e-9)


# ---- the body limit, chunked bodies ---------------------------------------------------------
@pytest.mark.parametrize("path", [PREDICT, INFER])
def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(
    server: LiveServer, path: str
) -> None:
    with RawConnection(server.url) as connection:
        # Only the headers: the server must answer without waiting for the body.
        connection.send(
            http_request("POST", path, headers=[("Content-Length", str(MAX_BODY_BYTES + 1))])
        )
        response = connection.response()
        assert response.status == 413
        assert response.json()["kind" if path == INFER else "error"] == "body_too_large"
        assert response.header("connection") == "close"
        assert connection.closed_by_server()  # what would follow is no next request


def test_a_chunked_body_growing_past_the_limit_is_refused(server: LiveServer) -> None:
    with RawConnection(server.url) as connection:
        head = http_request("POST", PREDICT, headers=[("Transfer-Encoding", "chunked")])
        filler = [b'{"instances": [' + b" " * 1009] + [b" " * 1024] * 3  # 4,096 bytes
        connection.send(head + chunks(*filler, b" ", last=False))  # one byte over, unfinished
        response = connection.response()
        assert response.status == 413
        assert response.json()["error"] == "body_too_large"
        assert connection.closed_by_server()


def test_a_chunked_body_within_the_limit_is_answered(
    server: LiveServer, holdout: pd.DataFrame, house_model_file: Path
) -> None:
    expected = model_predictions(house_model_file, holdout.iloc[:2])
    body = orjson.dumps({"instances": _instances(holdout, 0)})
    with RawConnection(server.url) as connection:
        head = http_request("POST", PREDICT, headers=[("Transfer-Encoding", "chunked")])
        connection.send(head + chunks(body[:10], body[10:40], body[40:]))
        assert _prediction(connection.response()) == pytest.approx(expected[0], rel=1e-9)
        connection.send(predict_request(_instances(holdout, 1)))  # kept alive after it
        assert _prediction(connection.response()) == pytest.approx(expected[1], rel=1e-9)


# ---- closing, HTTP/1.0, Expect: 100-continue ------------------------------------------------
def test_connection_close_is_honoured(
    server: LiveServer, holdout: pd.DataFrame, house_model_file: Path
) -> None:
    [expected] = model_predictions(house_model_file, holdout.iloc[[5]])
    with RawConnection(server.url) as connection:
        connection.send(predict_request(_instances(holdout, 5), headers=[("Connection", "close")]))
        response = connection.response()
        assert _prediction(response) == pytest.approx(expected, rel=1e-9)
        assert response.header("connection") == "close"
        assert connection.closed_by_server()


def test_an_http_1_0_request_is_answered_and_its_connection_closed(
    server: LiveServer, holdout: pd.DataFrame, house_model_file: Path
) -> None:
    [expected] = model_predictions(house_model_file, holdout.iloc[[6]])
    with RawConnection(server.url) as connection:
        connection.send(predict_request(_instances(holdout, 6), version="1.0"))
        assert _prediction(connection.response()) == pytest.approx(expected, rel=1e-9)
        assert connection.closed_by_server()


def test_expect_100_continue_gets_the_interim_answer_then_the_prediction(
    server: LiveServer, holdout: pd.DataFrame, house_model_file: Path
) -> None:
    [expected] = model_predictions(house_model_file, holdout.iloc[[7]])
    body = orjson.dumps({"instances": _instances(holdout, 7)})
    with RawConnection(server.url) as connection:
        headers = [("Content-Length", str(len(body))), ("Expect", "100-continue")]
        connection.send(http_request("POST", PREDICT, headers=headers))
        assert connection.response().status == 100  # the body is welcome: send it
        connection.send(body)
        assert _prediction(connection.response()) == pytest.approx(expected, rel=1e-9)


# ---- a client that goes away ----------------------------------------------------------------
def _logged_rows(directory: Path, size: float) -> list[dict[str, Any]]:
    """The rows of the held deployment's log for houses of ``size``."""
    with open_prediction_log(directory) as log:
        frame = log.window(model=HELD)
    if frame.empty:
        return []
    return frame[frame["size_sqft"] == size].to_dict("records")


def test_a_client_gone_before_its_answer_leaves_the_server_serving_and_is_logged(
    server: LiveServer,
    holdout: pd.DataFrame,
    gates: Path,
    house_model_file: Path,
    held_model_file: Path,
) -> None:
    size = HELD_FROM + 1
    gate = Gate(gates, size)
    log_before = len(server.log)
    connection = RawConnection(server.url)
    connection.send(predict_request([_held_record(holdout, size)], path=HELD_PREDICT))
    poll(gate.arrived, what="the request to reach the model")
    connection.close()  # gone, while the model still holds its request
    gate.open()
    logged = poll(
        lambda: _logged_rows(server.directory, size), what="the prediction in the log", every=0.2
    )
    assert len(logged) == 1
    assert logged[0]["prediction"] == pytest.approx(joblib.load(held_model_file).mean_)
    [expected] = model_predictions(house_model_file, holdout.iloc[[8]])
    with RawConnection(server.url) as fresh:
        fresh.send(predict_request(_instances(holdout, 8)))
        assert _prediction(fresh.response()) == pytest.approx(expected, rel=1e-9)
    assert server.alive()
    assert "Traceback" not in server.log[log_before:]


# ---- one micro-batch, two deployments --------------------------------------------------------
def test_a_reviewed_deployment_sharing_a_micro_batch_still_sends_its_answers_for_review(
    server: LiveServer, holdout: pd.DataFrame, gates: Path
) -> None:
    # While the model holds one request, a request of each deployment of that model queues;
    # then both go to the model in one micro-batch. The reviewed deployment's answer must
    # still wait for a person (and be logged), whatever its neighbour in the batch does.
    size = HELD_FROM + 4
    gate = Gate(gates, size)
    reviewed_predict = f"/v1/deployments/{REVIEWED}/predict"
    with RawConnection(server.url) as alone:  # in a micro-batch of its own, it is reviewed
        alone.send(predict_request(_instances(holdout, 12), path=reviewed_predict))
        [item] = alone.response().json()["predictions"]
        assert item.get("status") == "pending_review", item
    with (
        RawConnection(server.url) as held,
        RawConnection(server.url) as plain,
        RawConnection(server.url) as reviewed,
    ):
        held.send(predict_request([_held_record(holdout, size)], path=HELD_PREDICT))
        poll(gate.arrived, what="the first request to reach the model")
        plain.send(predict_request(_instances(holdout, 10), path=HELD_PREDICT))
        reviewed.send(predict_request(_instances(holdout, 11), path=reviewed_predict))
        poll(
            lambda: _in_flight(server.url, HELD) == 2 and _in_flight(server.url, REVIEWED) == 1,
            what="both requests queued behind the held one",
        )
        gate.open()
        for connection in (held, plain):
            assert connection.response().status == 200
        answer = reviewed.response()
    assert answer.status == 200, answer.body
    [item] = answer.json()["predictions"]
    assert item.get("status") == "pending_review", item
    assert "review_id" in item and "suggestion" in item
    with open_prediction_log(server.directory) as log:
        # Logged by the request after its deferral (the writer commits within its interval).
        poll(
            lambda: log.exists([item["id"]]) == {item["id"]},
            what="the reviewed prediction in the log",
            timeout=10,
        )


# ---- the direct path answers what the ASGI application answers ------------------------------
@pytest.fixture(scope="module")
def asgi_app(served_project: Path) -> Iterator[ServingApp]:
    """The application ``modelpilot serve`` runs, in this process, with its deployments loaded.

    Its log writer is not started: the rows of its predictions stay in memory, since the live
    server owns the project's database.
    """
    environ = {"MODELPILOT_PREDICT_TOKEN": PREDICT_TOKEN, "MODELPILOT_ADMIN_TOKEN": ADMIN_TOKEN}
    project = Project.open(served_project, environ=environ)
    state = build_state(project, trust=True)
    state.manager.load_all()
    try:
        yield create_app(state)
    finally:
        state.manager.close()
        project.engine.dispose()


def _v2_body(record: dict[str, Any]) -> bytes:
    def tensor(name: str, value: Any) -> dict[str, Any]:
        kind = "BOOL" if isinstance(value, bool) else "BYTES" if isinstance(value, str) else "FP64"
        return {"name": name, "shape": [1], "datatype": kind, "data": [value]}

    return orjson.dumps({"inputs": [tensor(n, v) for n, v in record.items() if v is not None]})


def _cases(holdout: pd.DataFrame) -> dict[str, tuple[str, bytes, dict[str, str]]]:
    rows = _instances(holdout, 0, 1)
    body = orjson.dumps({"instances": rows})
    return {
        "v1-answer": (PREDICT, body, auth()),
        "v2-answer": (INFER, _v2_body(rows[0]), auth()),
        "v1-422": (PREDICT, orjson.dumps({"instances": [{**rows[0], "size_sqft": -5}]}), auth()),
        "v2-422": (INFER, _v2_body({**rows[0], "bedrooms": 99.0}), auth()),
        "v1-401": (PREDICT, body, {}),
        "v2-401": (INFER, _v2_body(rows[0]), {"Authorization": "Bearer wrong"}),
        "v1-404": ("/v1/deployments/nowhere/predict", body, auth()),
        "v2-404": ("/v2/models/nowhere/infer", _v2_body(rows[0]), auth()),
        "v1-400": (PREDICT, b"{not json", auth()),
        "v1-413": (PREDICT, body + b" " * MAX_BODY_BYTES, auth()),
        "v1-500": (
            HELD_PREDICT,
            orjson.dumps({"instances": [{**rows[0], "size_sqft": CURSED_SIZE}]}),
            auth(),
        ),
    }


CASE_NAMES = [
    "v1-answer",
    "v2-answer",
    "v1-422",
    "v2-422",
    "v1-401",
    "v2-401",
    "v1-404",
    "v2-404",
    "v1-400",
    "v1-413",
    "v1-500",
]
_ID = re.compile(r"\b[0-9a-f]{32}\b")


def _without_ids(value: Any) -> Any:
    """The body with every prediction id replaced: they differ from one request to the next."""
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    if isinstance(value, str):
        return _ID.sub("<id>", value)
    return value


def _through_asgi(app: ServingApp, path: str, body: bytes, headers: dict[str, str]) -> Any:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, content=body, headers=headers)

    return asyncio.run(call())


@pytest.mark.parametrize("case", CASE_NAMES)
def test_the_direct_path_answers_what_the_asgi_application_answers(
    server: LiveServer, asgi_app: ServingApp, holdout: pd.DataFrame, case: str
) -> None:
    path, body, headers = _cases(holdout)[case]
    direct = httpx.post(f"{server.url}{path}", content=body, headers=headers, timeout=TIMEOUT)
    asgi = _through_asgi(asgi_app, path, body, headers)
    assert direct.status_code == asgi.status_code, (direct.text, asgi.text)
    assert direct.headers["content-type"] == asgi.headers["content-type"] == "application/json"
    for response in (direct, asgi):
        assert response.headers["content-length"] == str(len(response.content))
    assert _without_ids(direct.json()) == _without_ids(asgi.json())
    expected_status = int(case.rsplit("-", 1)[1]) if case[-1].isdigit() else 200
    assert direct.status_code == expected_status, direct.text


# ---- graceful stop --------------------------------------------------------------------------
def _in_flight(url: str, deployment: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=TIMEOUT).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "modelpilot_requests_in_flight" and sample.labels == {
                "deployment": deployment
            }:
                return sample.value
    return 0.0


def test_a_stop_closes_idle_connections_at_once_and_answers_and_logs_those_in_flight(
    tmp_path: Path, holdout: pd.DataFrame, house_model_file: Path, held_model_file: Path
) -> None:
    directory = _project(tmp_path / "project", holdout, house_model_file, held_model_file)
    gates = tmp_path / "gates"
    gates.mkdir()
    held_size = HELD_FROM + 2
    gate = Gate(gates, held_size)
    answered: list[str] = []
    with _serve(directory, gates) as server:
        # Keep-alive connections that each had a prediction, now idle.
        idle = [RawConnection(server.url) for _ in range(3)]
        for index, connection in enumerate(idle):
            connection.send(predict_request(_instances(holdout, index)))
            response = connection.response()
            assert response.status == 200, response.body
            answered += [p["id"] for p in response.json()["predictions"]]
        # Two requests in flight on the direct path: one held in the model, one queued behind.
        held = RawConnection(server.url)
        held.send(predict_request([_held_record(holdout, held_size)], path=HELD_PREDICT))
        poll(gate.arrived, what="the held request to reach the model")
        queued = RawConnection(server.url)
        queued.send(predict_request(_instances(holdout, 4, 5), path=HELD_PREDICT))
        poll(lambda: _in_flight(server.url, HELD) == 2, what="both requests in flight")

        server.process.send_signal(signal.SIGTERM)
        for connection in idle:  # closed while the held request is still in the model
            assert connection.closed_by_server(timeout=10.0), "an idle connection stayed open"
            connection.close()
        assert server.alive()
        gate.open()
        opened = time.monotonic()
        for connection, n in [(held, 1), (queued, 2)]:
            response = connection.response()
            assert response.status == 200, response.body
            assert response.header("connection") == "close"  # the server is going away
            ids = [p["id"] for p in response.json()["predictions"]]
            assert len(ids) == n
            answered += ids
            assert connection.closed_by_server()
            connection.close()
        code = server.process.wait(TIMEOUT)
        stopped_in = time.monotonic() - opened
    assert code == 0, server.log
    assert stopped_in < 10.0, f"the server took {stopped_in:.1f} s to exit after its last answer"
    with open_prediction_log(directory) as log:
        assert log.exists(answered) == set(answered)
        assert log.count() == len(answered) == 6
