"""The Open Inference Protocol codec, checked against Triton's own client encoding.

Requests are built by ``tritonclient.http`` (JSON tensors, or binary ones after the JSON header
as it sends by default) and responses are parsed by it, so the codec speaks what real V2
clients speak rather than what these tests imagine.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
import tritonclient.http as triton
from tritonclient.utils import serialize_byte_tensor

from modelpilot.datasets import HOUSE_FEATURES, house_prices
from modelpilot.errors import ModelpilotError, ValidationFailed
from modelpilot.server._v2 import (
    V2Error,
    V2Request,
    decode_request,
    encode_response,
    header_length,
    model_metadata,
)

NUMERIC = ["size_sqft", "bedrooms", "bathrooms", "age_years", "lot_acres", "distance_km"]
NAMES = [f.name for f in HOUSE_FEATURES]


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    frame = house_prices(50, seed=3, missing_lot_rate=0.0).drop(columns="price")
    return frame.iloc[:4].reset_index(drop=True)


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return rows.astype(object).to_dict("records")


def _inputs(rows: pd.DataFrame, *, binary: bool, numeric: str = "FP64") -> list[triton.InferInput]:
    dtype = {"FP64": np.float64, "FP32": np.float32, "INT64": np.int64}[numeric]
    tensors = [(n, rows[n].to_numpy(dtype), numeric) for n in NUMERIC]
    tensors += [(n, rows[n].to_numpy(object), "BYTES") for n in ["location", "condition"]]
    tensors.append(("has_garage", rows["has_garage"].to_numpy(bool), "BOOL"))
    inputs = []
    for name, values, datatype in tensors:
        tensor = triton.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


def _request(inputs: list[triton.InferInput], **options: Any) -> tuple[bytes, int | None]:
    body, json_size = triton.InferenceServerClient.generate_request_body(inputs, **options)
    return body, json_size


# ---- requests ---------------------------------------------------------------------------------
@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_one_tensor_per_feature_becomes_one_record_per_row(
    rows: pd.DataFrame, binary: bool
) -> None:
    body, json_size = _request(_inputs(rows, binary=binary), request_id="req-7")
    assert (json_size is None) == (not binary)
    request = decode_request(body, json_size, HOUSE_FEATURES)
    assert request.records == _records(rows)
    assert request.id == "req-7"
    assert (request.outputs, request.binary_default) == (None, True)  # tritonclient's default


@pytest.mark.parametrize("numeric", ["FP32", "INT64"])
def test_other_numeric_datatypes_decode_to_their_values(rows: pd.DataFrame, numeric: str) -> None:
    whole = rows.assign(lot_acres=1.0, distance_km=rows["distance_km"].round())
    whole = whole.assign(**{n: whole[n].round() for n in NUMERIC})  # exact in FP32 and INT64
    body, json_size = _request(_inputs(whole, binary=True, numeric=numeric))
    request = decode_request(body, json_size, HOUSE_FEATURES)
    assert [r["size_sqft"] for r in request.records] == whole["size_sqft"].tolist()
    assert [r["has_garage"] for r in request.records] == whole["has_garage"].tolist()


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_one_matrix_tensor_follows_the_schemas_column_order(
    rows: pd.DataFrame, binary: bool
) -> None:
    matrix = rows[NAMES].astype(str).to_numpy(object)
    tensor = triton.InferInput("houses", list(matrix.shape), "BYTES")
    tensor.set_data_from_numpy(matrix, binary_data=binary)
    request = decode_request(*_request([tensor]), HOUSE_FEATURES)
    assert request.records == [{n: str(v) for n, v in r.items()} for r in _records(rows)]


def test_binary_bytes_are_what_serialize_byte_tensor_writes() -> None:
    values = np.array(["urban", "rural", "ünïcode"], dtype=object)
    raw: bytes = serialize_byte_tensor(values).item()  # a 0-d array holding the bytes
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "location",
                    "shape": [3],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    )
    features = [f for f in HOUSE_FEATURES if f.name == "location"]
    request = decode_request(head + raw, len(head), features)
    assert [r["location"] for r in request.records] == ["urban", "rural", "ünïcode"]


def test_missing_and_unknown_inputs_are_listed_together(rows: pd.DataFrame) -> None:
    inputs = [i for i in _inputs(rows, binary=False) if i.name() not in ("bedrooms", "lot_acres")]
    extra = triton.InferInput("colour", [4], "BYTES")
    extra.set_data_from_numpy(np.array(["red"] * 4, dtype=object), binary_data=False)
    with pytest.raises(ValidationFailed) as caught:
        decode_request(*_request([*inputs, extra]), HOUSE_FEATURES)
    assert caught.value.problems == [  # lot_acres is nullable: it may be left out
        {"field": "colour", "expected": "a feature of the model", "got": "unknown input"},
        {"field": "bedrooms", "expected": "an input tensor", "got": "(missing)"},
    ]
    assert caught.value.http_status == 422


def test_inputs_of_different_lengths_are_refused(rows: pd.DataFrame) -> None:
    inputs = _inputs(rows, binary=False)
    short = triton.InferInput("bedrooms", [2], "FP64")
    short.set_data_from_numpy(np.array([1.0, 2.0]), binary_data=False)
    inputs = [short if i.name() == "bedrooms" else i for i in inputs]
    with pytest.raises(ValidationFailed) as caught:
        decode_request(*_request(inputs), HOUSE_FEATURES)
    assert {
        "field": "bedrooms",
        "expected": "the same length as the other inputs",
        "got": "2 values",
    } in caught.value.problems


def test_a_matrix_of_the_wrong_width_says_which_columns_it_needs() -> None:
    tensor = triton.InferInput("x", [1, 3], "FP64")
    tensor.set_data_from_numpy(np.zeros((1, 3)), binary_data=False)
    with pytest.raises(ValidationFailed, match=r"shape \[n, 9\] with columns size_sqft, bedrooms"):
        decode_request(*_request([tensor]), HOUSE_FEATURES)


def _binary_body(raw: bytes, *, datatype: str = "FP64", size: int | None = None) -> bytes:
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "bedrooms",
                    "shape": [1],
                    "datatype": datatype,
                    "parameters": {"binary_data_size": size or len(raw)},
                }
            ]
        }
    )
    return head + raw


@pytest.mark.parametrize(
    ("body", "header_length", "message"),
    [
        (b"{not json", None, "not valid JSON"),
        (b'{"outputs": []}', None, "an 'inputs' list of tensors"),
        (b'{"inputs": [{"name": "bedrooms"}]}', None, "each input tensor needs 'name', 'shape'"),
        (
            b'{"inputs": [{"name": "bedrooms", "shape": [1], "datatype": "FP64"}]}',
            None,
            "neither 'data' nor binary",
        ),
        (b"{}", 100, "Inference-Header-Content-Length is 100, but the body has only 2 bytes"),
        (_binary_body(b"\x00" * 4, size=8), "head", "declares 8 bytes of binary data"),
        (_binary_body(b"\x05\x00", datatype="BYTES"), "head", "4-byte length prefix is cut off"),
    ],
    ids=[
        "not-json",
        "no-inputs",
        "no-shape",
        "no-data",
        "header-too-long",
        "short-binary",
        "truncated-bytes",
    ],
)
def test_malformed_requests_are_400_with_what_is_wrong(
    body: bytes, header_length: int | str | None, message: str
) -> None:
    if header_length == "head":
        header_length = body.index(b"}]}") + 3
    with pytest.raises(ModelpilotError, match=message) as caught:
        decode_request(body, header_length, HOUSE_FEATURES)  # type: ignore[arg-type]
    assert (caught.value.http_status, caught.value.kind) == (400, "bad_request")


def _matrix(shape: Any, data: Any = None, **fields: Any) -> bytes:
    tensor = {"name": "x", "shape": shape, "datatype": "FP64", **fields}
    if data is not None:
        tensor["data"] = data
    return orjson.dumps({"inputs": [tensor]})


def _binary_matrix(raw: bytes, datatype: str, size: Any, shape: Any = None) -> tuple[bytes, int]:
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": shape or [1, 9],
                    "datatype": datatype,
                    "parameters": {"binary_data_size": size},
                }
            ]
        }
    )
    return head + raw, len(head)


ROW = [1500.0, 3, 2, 10, 0.2, 5.0, "urban", "good", True]
NESTED = ROW
for _ in range(100):
    NESTED = [NESTED]


@pytest.mark.parametrize(
    ("request_body", "status", "message"),
    [
        ((_matrix([2, 9], ROW), None), 422, r"x: expected 18 values \(shape \[2, 9\]\)"),
        ((_matrix([1e9, 9], ROW), None), 422, "x: expected a shape of 1 to 4 whole numbers"),
        ((_matrix(["a", 9], ROW), None), 422, "x: expected a shape"),
        ((_matrix(5, ROW), None), 422, "x: expected a shape"),
        ((_matrix([1e30, 9], ROW), None), 422, "x: expected a shape"),
        ((_matrix([1, 9], ROW * 2), None), 422, "x: expected 9 values .* got .18 values in"),
        ((_matrix([1, 9], NESTED), None), 422, "x: expected data nested at most 2 deep"),
        ((_matrix([1, 9], [{"a": 1}] * 9), None), 422, "x: expected data of numbers"),
        ((_matrix([1, 9], ROW, datatype="WHATEVER"), None), 422, "x: expected a datatype"),
        ((_matrix([1, 9], ROW, parameters=[1]), None), 400, "'parameters' of input 'x'"),
        (
            (orjson.dumps({"inputs": [], "parameters": [1]}), None),
            400,
            "'parameters' of the request must be a JSON object",
        ),
        (
            (
                orjson.dumps(
                    {"inputs": orjson.loads(_matrix([1, 9], ROW))["inputs"], "outputs": [5]}
                ),
                None,
            ),
            400,
            "'outputs' must be a list of objects",
        ),
        (_binary_matrix(b"\0" * 8, "FP64", -8), 422, "binary_data_size: a whole number"),
        (
            _binary_matrix(b"\0" * 80, "FP64", 77),
            422,
            "x: expected 72 bytes.*got 'binary_data_size 77'",
        ),
        (_binary_matrix(b"\0" * 8, "FP64", "abc"), 422, "binary_data_size: a whole number"),
        (_binary_matrix(b"\0" * 8, "FP64", 1.5), 422, "binary_data_size: a whole number"),
        (
            _binary_matrix(np.zeros(9).tobytes(), "FP32", 72),
            422,
            r"x: expected 36 bytes: shape \[1, 9\] of FP32",
        ),
        (
            _binary_matrix(b"\x10\0\0\0ab", "BYTES", 6, shape=[1]),
            422,
            "4-byte length prefixes stay within binary_data_size",
        ),
        (_binary_matrix(np.zeros(9).tobytes() + b"\0", "FP64", 72), 400, "1 bytes after"),
    ],
    ids=[
        "shape-2x9-with-9-values",
        "shape-1e9",
        "shape-string",
        "shape-scalar",
        "shape-1e30",
        "extra-values",
        "nested-100-deep",
        "objects-in-data",
        "unknown-datatype",
        "tensor-parameters-list",
        "request-parameters-list",
        "outputs-not-objects",
        "negative-size",
        "size-not-the-shapes",
        "size-string",
        "size-fraction",
        "fp64-bytes-as-fp32",
        "bytes-prefix-past-the-end",
        "bytes-after-the-tensors",
    ],
)
def test_a_tensor_whose_parts_disagree_is_refused_never_guessed(
    request_body: tuple[bytes, int | None], status: int, message: str
) -> None:
    with pytest.raises(ModelpilotError, match=message) as caught:
        decode_request(*request_body, HOUSE_FEATURES)
    assert caught.value.http_status == status


def test_a_feature_tensor_of_another_shape_than_its_data_is_refused(rows: pd.DataFrame) -> None:
    inputs = _inputs(rows.iloc[:1], binary=False)
    head = orjson.loads(_request(inputs)[0])
    head["inputs"][0]["shape"] = [99]
    with pytest.raises(ValidationFailed, match=r"size_sqft: expected 99 values \(shape \[99\]\)"):
        decode_request(orjson.dumps(head), None, HOUSE_FEATURES)
    head["inputs"][0]["shape"] = [1, 3]
    head["inputs"][0]["data"] = [1.0, 2.0, 3.0]
    with pytest.raises(ValidationFailed, match=r"size_sqft: expected shape \[n\] or \[n, 1\]"):
        decode_request(orjson.dumps(head), None, HOUSE_FEATURES)


def test_the_header_length_header_must_be_a_number() -> None:
    with pytest.raises(V2Error, match="Inference-Header-Content-Length must be the JSON header"):
        header_length(b"abc")
    assert header_length(b"17") == 17


# ---- responses --------------------------------------------------------------------------------
def _parse(body: bytes, header_length: int | None) -> triton.InferResult:
    return triton.InferenceServerClient.parse_response_body(body, header_length=header_length)


def _decoded(request_body: tuple[bytes, int | None]) -> V2Request:
    return decode_request(*request_body, HOUSE_FEATURES)


def test_a_binary_response_parses_with_tritonclient(rows: pd.DataFrame) -> None:
    request = _decoded(_request(_inputs(rows, binary=True), request_id="r1"))
    predictions = [301_000.5, 250_000.0, 199_999.25, 420_000.0]
    ids = ["a" * 32, "b" * 32, "c" * 32, "d" * 32]
    body, header_length = encode_response(
        request, model_name="houses", model_version=3, predictions=predictions, proba=None, ids=ids
    )
    assert header_length is not None
    result = _parse(body, header_length)
    assert result.as_numpy("predict").tolist() == predictions
    assert [v.decode() for v in result.as_numpy("prediction_id")] == ids
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == (
        "houses",
        "3",
        "r1",
    )
    assert result.get_output("predict")["datatype"] == "FP64"


def test_requested_outputs_only_and_in_json_when_asked(rows: pd.DataFrame) -> None:
    outputs = [triton.InferRequestedOutput("prediction_id", binary_data=False)]
    request = _decoded(_request(_inputs(rows, binary=True), outputs=outputs))
    body, header_length = encode_response(
        request,
        model_name="houses",
        model_version=1,
        predictions=[1.0] * 4,
        proba=None,
        ids=list("wxyz"),
    )
    assert header_length is None  # nothing binary: plain JSON
    result = _parse(body, header_length)
    assert result.get_output("predict") is None
    assert result.as_numpy("prediction_id").tolist() == ["w", "x", "y", "z"]


def test_a_classifiers_response_has_probabilities(rows: pd.DataFrame) -> None:
    request = _decoded(_request(_inputs(rows.iloc[:2], binary=True)))
    proba = [[0.9, 0.1], [0.25, 0.75]]
    body, header_length = encode_response(
        request,
        model_name="churn",
        model_version=1,
        predictions=["no", "yes"],
        proba=proba,
        ids=["1", "2"],
    )
    result = _parse(body, header_length)
    assert result.as_numpy("predict_proba").tolist() == proba
    assert [v.decode() for v in result.as_numpy("predict")] == ["no", "yes"]
    assert result.get_output("predict")["datatype"] == "BYTES"


@pytest.mark.parametrize(("predictions", "datatype"), [([1, 0], "INT64"), ([True, False], "BOOL")])
def test_integer_and_boolean_predictions_keep_their_type(
    rows: pd.DataFrame, predictions: list[Any], datatype: str
) -> None:
    request = _decoded(_request(_inputs(rows.iloc[:2], binary=True)))
    body, header_length = encode_response(
        request,
        model_name="m",
        model_version=1,
        predictions=predictions,
        proba=None,
        ids=["1", "2"],
    )
    result = _parse(body, header_length)
    assert result.get_output("predict")["datatype"] == datatype
    assert result.as_numpy("predict").tolist() == predictions


def test_an_unknown_requested_output_names_the_known_ones(rows: pd.DataFrame) -> None:
    outputs = [triton.InferRequestedOutput("explanation")]
    request = _decoded(_request(_inputs(rows, binary=False), outputs=outputs))
    with pytest.raises(
        ModelpilotError,
        match=r"unknown output\(s\) explanation; this model has predict, prediction_id",
    ):
        encode_response(
            request,
            model_name="m",
            model_version=1,
            predictions=[1.0] * 4,
            proba=None,
            ids=list("abcd"),
        )


def test_model_metadata_describes_inputs_and_outputs() -> None:
    metadata = model_metadata("houses", [1, 2], HOUSE_FEATURES, flavor="skops", task="regression")
    assert metadata["versions"] == ["1", "2"]
    assert metadata["platform"] == "modelpilot_skops"
    kinds = {i["name"]: i["datatype"] for i in metadata["inputs"]}
    assert (kinds["size_sqft"], kinds["location"], kinds["has_garage"]) == ("FP64", "BYTES", "BOOL")
    assert [o["name"] for o in metadata["outputs"]] == ["predict", "prediction_id"]
    classifier = model_metadata("churn", [1], HOUSE_FEATURES, flavor="onnx", task="binary")
    assert [o["name"] for o in classifier["outputs"]] == [
        "predict",
        "predict_proba",
        "prediction_id",
    ]


@pytest.mark.parametrize(
    ("classes", "datatype"), [([0, 1], "INT64"), (["no", "yes"], "BYTES"), ([False, True], "BOOL")]
)
def test_model_metadata_declares_the_datatype_infer_answers_with(
    rows: pd.DataFrame, classes: list[Any], datatype: str
) -> None:
    metadata = model_metadata(
        "churn", [1], HOUSE_FEATURES, flavor="skops", task="binary", classes=np.array(classes)
    )
    request = _decoded(_request(_inputs(rows.iloc[:2], binary=False)))
    body, head = encode_response(
        request, model_name="m", model_version=1, predictions=classes, proba=None, ids=["1", "2"]
    )
    answered = _parse(body, head).get_output("predict")["datatype"]
    declared = {o["name"]: o["datatype"] for o in metadata["outputs"]}
    assert declared["predict"] == answered == datatype
