"""The Open Inference Protocol (KServe V2) codec, with the binary tensor data extension.

Requests carry named input tensors: one per feature (shape ``[n]`` or ``[n, 1]``), or a single
``[n, n_features]`` tensor whose columns follow the schema's order. Tensor data comes as JSON
or, with the ``Inference-Header-Content-Length`` header, as raw bytes after the JSON header
(what ``tritonclient`` sends by default). Outputs: ``predict``, ``predict_proba`` (classifiers)
and ``prediction_id``; in binary when the request asks for it (``binary_data_output`` or an
output's ``binary_data``), as tritonclient does unless told otherwise.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from modelpilot.errors import ModelpilotError, ValidationFailed
from modelpilot.spec import FeatureSpec

__all__ = ["V2Request", "decode_request", "encode_response", "model_metadata"]

_NUMPY = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


class V2Error(ModelpilotError):
    kind = "bad_request"


@dataclass
class V2Request:
    id: str | None
    records: list[dict[str, Any]]
    outputs: list[str] | None
    binary_outputs: set[str]
    binary_default: bool


def _bytes_tensor(raw: bytes) -> list[str]:
    items, offset = [], 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise V2Error("a BYTES tensor is truncated: its 4-byte length prefix is cut off")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        items.append(raw[offset : offset + length].decode("utf-8", errors="replace"))
        offset += length
    return items


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list) and data and isinstance(data[0], list):
        return [v for row in data for v in _flatten(row)]
    return data if isinstance(data, list) else [data]


def _tensor_values(
    tensor: dict[str, Any], binary: memoryview | None, offset: int
) -> tuple[list[Any], int]:
    name = tensor.get("name", "?")
    datatype = str(tensor.get("datatype", "")).upper()
    params = tensor.get("parameters") or {}
    size = params.get("binary_data_size")
    if size is not None:
        if binary is None or offset + int(size) > len(binary):
            raise V2Error(
                f"input {name!r} declares {size} bytes of binary data, but the body "
                "does not hold them"
            )
        raw = bytes(binary[offset : offset + int(size)])
        offset += int(size)
        if datatype == "BYTES":
            return _bytes_tensor(raw), offset
        if datatype not in _NUMPY:
            raise V2Error(
                f"input {name!r} has datatype {datatype!r}; expected one of "
                f"{', '.join([*_NUMPY, 'BYTES'])}"
            )
        return np.frombuffer(raw, dtype=_NUMPY[datatype]).tolist(), offset
    if "data" not in tensor:
        raise V2Error(f"input {name!r} has neither 'data' nor binary_data_size")
    return _flatten(tensor["data"]), offset


def decode_request(
    body: bytes, header_length: int | None, features: Sequence[FeatureSpec]
) -> V2Request:
    """Turn a V2 inference request into one record per row."""
    if header_length is not None:
        if header_length > len(body):
            raise V2Error(
                f"Inference-Header-Content-Length is {header_length}, but the body "
                f"has only {len(body)} bytes"
            )
        head, binary = body[:header_length], memoryview(body)[header_length:]
    else:
        head, binary = body, None
    try:
        request = orjson.loads(head)
    except orjson.JSONDecodeError as exc:
        raise V2Error(f"the request body is not valid JSON ({exc})") from None
    if not isinstance(request, dict) or not isinstance(request.get("inputs"), list):
        raise V2Error("a V2 inference request is a JSON object with an 'inputs' list of tensors")
    names = [f.name for f in features]
    tensors: dict[str, tuple[list[Any], list[int]]] = {}
    offset = 0
    for tensor in request["inputs"]:
        if not isinstance(tensor, dict) or "name" not in tensor or "shape" not in tensor:
            raise V2Error("each input tensor needs 'name', 'shape', 'datatype' and 'data'")
        values, offset = _tensor_values(tensor, binary, offset)
        tensors[str(tensor["name"])] = (values, [int(s) for s in tensor["shape"]])
    records: list[dict[str, Any]]
    if len(tensors) == 1 and next(iter(tensors)) not in names:
        ((values, shape),) = tensors.values()
        if len(shape) != 2 or shape[1] != len(names):
            raise ValidationFailed(
                [
                    {
                        "field": next(iter(tensors)),
                        "expected": f"shape [n, {len(names)}] with columns "
                        f"{', '.join(names)}, or one tensor per feature",
                        "got": f"shape {shape}",
                    }
                ]
            )
        width = len(names)
        records = [
            dict(zip(names, values[i * width : (i + 1) * width], strict=True))
            for i in range(shape[0])
        ]
    else:
        unknown = [n for n in tensors if n not in names]
        missing = [n for n in names if n not in tensors]
        problems = [
            {"field": n, "expected": "a feature of the model", "got": "unknown input"}
            for n in unknown
        ]
        problems += [
            {"field": n, "expected": "an input tensor", "got": "(missing)"}
            for n in missing
            if not any(f.name == n and f.nullable for f in features)
        ]
        if problems:
            raise ValidationFailed(problems)
        lengths = {n: len(v) for n, (v, _) in tensors.items()}
        if len(set(lengths.values())) > 1:
            raise ValidationFailed(
                [
                    {
                        "field": n,
                        "expected": "the same length as the other inputs",
                        "got": f"{size} values",
                    }
                    for n, size in lengths.items()
                ]
            )
        n_rows = next(iter(lengths.values())) if lengths else 0
        records = [{n: tensors[n][0][i] for n in tensors} for i in range(n_rows)]
    wanted = request.get("outputs")
    outputs = None
    binary_outputs: set[str] = set()
    if isinstance(wanted, list):
        outputs = []
        for item in wanted:
            outputs.append(str(item.get("name")))
            if (item.get("parameters") or {}).get("binary_data"):
                binary_outputs.add(str(item.get("name")))
    binary_default = bool((request.get("parameters") or {}).get("binary_data_output"))
    request_id = request.get("id")
    return V2Request(
        str(request_id) if request_id is not None else None,
        records,
        outputs,
        binary_outputs,
        binary_default,
    )


def _datatype(values: np.ndarray) -> str:
    if values.dtype.kind == "b":
        return "BOOL"
    if values.dtype.kind in "iu":
        return "INT64"
    if values.dtype.kind == "f":
        return "FP64"
    return "BYTES"


def _encode_bytes(values: Sequence[Any]) -> bytes:
    parts = []
    for value in values:
        raw = str(value).encode()
        parts.append(struct.pack("<I", len(raw)) + raw)
    return b"".join(parts)


def encode_response(
    request: V2Request,
    *,
    model_name: str,
    model_version: int,
    predictions: list[Any],
    proba: list[list[float]] | None,
    ids: list[str],
) -> tuple[bytes, int | None]:
    """The response body and, when tensors are in binary, the JSON header's length."""
    n = len(predictions)
    pred_array = np.asarray(predictions)
    tensors: list[tuple[str, str, list[int], np.ndarray | list[Any]]] = [
        ("predict", _datatype(pred_array), [n], pred_array),
    ]
    if proba is not None:
        tensors.append(
            (
                "predict_proba",
                "FP64",
                [n, len(proba[0]) if proba else 0],
                np.asarray(proba, dtype=np.float64),
            )
        )
    tensors.append(("prediction_id", "BYTES", [n], ids))
    if request.outputs is not None:
        known = {t[0] for t in tensors}
        unknown = [o for o in request.outputs if o not in known]
        if unknown:
            raise V2Error(
                f"unknown output(s) {', '.join(unknown)}; this model has {', '.join(sorted(known))}"
            )
        tensors = [t for t in tensors if t[0] in request.outputs]
    outputs, blobs = [], []
    for name, datatype, shape, values in tensors:
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": shape}
        binary = name in request.binary_outputs or (
            request.outputs is None and request.binary_default
        )
        if binary:
            if datatype == "BYTES":
                raw = _encode_bytes(values.tolist() if isinstance(values, np.ndarray) else values)
            else:
                dtype = {"FP64": np.float64, "INT64": np.int64, "BOOL": np.bool_}[datatype]
                raw = np.ascontiguousarray(np.asarray(values, dtype=dtype)).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            data = values.reshape(-1).tolist() if isinstance(values, np.ndarray) else list(values)
            entry["data"] = [str(v) for v in data] if datatype == "BYTES" else data
        outputs.append(entry)
    response: dict[str, Any] = {
        "model_name": model_name,
        "model_version": str(model_version),
        "outputs": outputs,
    }
    if request.id is not None:
        response["id"] = request.id
    head = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def model_metadata(
    name: str,
    versions: Sequence[int],
    features: Sequence[FeatureSpec],
    *,
    flavor: str,
    task: str | None,
) -> dict[str, Any]:
    kinds = {"numeric": "FP64", "boolean": "BOOL", "categorical": "BYTES", "text": "BYTES"}
    outputs = [
        {"name": "predict", "datatype": "FP64" if task == "regression" else "BYTES", "shape": [-1]}
    ]
    if task in ("binary", "multiclass"):
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, -1]})
    outputs.append({"name": "prediction_id", "datatype": "BYTES", "shape": [-1]})
    return {
        "name": name,
        "versions": [str(v) for v in versions],
        "platform": f"modelpilot_{flavor}",
        "inputs": [{"name": f.name, "datatype": kinds[f.type], "shape": [-1]} for f in features],
        "outputs": outputs,
    }
