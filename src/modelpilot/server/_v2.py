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

from modelpilot.errors import ValidationFailed
from modelpilot.server._v2_tensors import V2Error, tensor_parameters, tensor_values
from modelpilot.spec import FeatureSpec

__all__ = [
    "V2Error",
    "V2Request",
    "decode_request",
    "encode_response",
    "header_length",
    "model_metadata",
]


def header_length(raw: bytes | None) -> int | None:
    """The JSON header's length from ``Inference-Header-Content-Length`` (None: absent).

    Examples
    --------
    >>> header_length(b"120"), header_length(None)
    (120, None)
    >>> header_length(b"abc")
    Traceback (most recent call last):
    ...
    modelpilot.server._v2_tensors.V2Error: Inference-Header-Content-Length must be ...
    """
    if raw is None:
        return None
    if not (raw.isdigit() and len(raw) <= 12):
        raise V2Error(
            "Inference-Header-Content-Length must be the JSON header's length in bytes (a "
            f"whole number), got {raw.decode('latin-1')[:40]!r}"
        )
    return int(raw)


@dataclass
class V2Request:
    id: str | None
    records: list[dict[str, Any]]
    outputs: list[str] | None
    binary_outputs: set[str]
    binary_default: bool


def _records(
    tensors: dict[str, tuple[list[Any], list[int]]], features: Sequence[FeatureSpec]
) -> list[dict[str, Any]]:
    names = [f.name for f in features]
    if len(tensors) == 1 and next(iter(tensors)) not in names:
        ((name, (values, shape)),) = tensors.items()
        if len(shape) != 2 or shape[1] != len(names):
            raise ValidationFailed(
                [
                    {
                        "field": name,
                        "expected": f"shape [n, {len(names)}] with columns "
                        f"{', '.join(names)}, or one tensor per feature",
                        "got": f"shape {shape}",
                    }
                ]
            )
        width = len(names)
        return [
            dict(zip(names, values[i * width : (i + 1) * width], strict=True))
            for i in range(shape[0])
        ]
    unknown = [n for n in tensors if n not in names]
    missing = [n for n in names if n not in tensors]
    problems = [
        {"field": n, "expected": "a feature of the model", "got": "unknown input"} for n in unknown
    ]
    problems += [
        {"field": n, "expected": "an input tensor", "got": "(missing)"}
        for n in missing
        if not any(f.name == n and f.nullable for f in features)
    ]
    problems += [
        {"field": n, "expected": "shape [n] or [n, 1] (one feature)", "got": f"shape {shape}"}
        for n, (_, shape) in tensors.items()
        if n in names and not (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1))
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
    return [{n: tensors[n][0][i] for n in tensors} for i in range(n_rows)]


def _outputs(request: dict[str, Any]) -> tuple[list[str] | None, set[str]]:
    wanted = request.get("outputs")
    if wanted is None:
        return None, set()
    example = 'a list of objects such as [{"name": "predict"}]'
    if not isinstance(wanted, list):
        raise V2Error(f"'outputs' must be {example}, got {wanted!r}"[:300])
    outputs: list[str] = []
    binary: set[str] = set()
    for item in wanted:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise V2Error(f"'outputs' must be {example}, got an item {item!r}"[:300])
        outputs.append(item["name"])
        if tensor_parameters(item, f"output {item['name']!r}").get("binary_data"):
            binary.add(item["name"])
    return outputs, binary


def decode_request(
    body: bytes, header_length: int | None, features: Sequence[FeatureSpec]
) -> V2Request:
    """Turn a V2 inference request into one record per row (see ``_v2_tensors`` for what a
    tensor must be)."""
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
    parameters = tensor_parameters(request, "the request")
    tensors: dict[str, tuple[list[Any], list[int]]] = {}
    offset = 0
    for tensor in request["inputs"]:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise V2Error("each input tensor needs 'name', 'shape', 'datatype' and 'data'")
        if "shape" not in tensor:
            raise V2Error("each input tensor needs 'name', 'shape', 'datatype' and 'data'")
        if tensor["name"] in tensors:
            raise ValidationFailed(
                [{"field": tensor["name"], "expected": "one tensor per name", "got": "two"}]
            )
        values, shape, offset = tensor_values(tensor, binary, offset)
        tensors[tensor["name"]] = (values, shape)
    if binary is not None and offset != len(binary):
        raise V2Error(
            f"the body has {len(binary) - offset} bytes after the binary data its tensors "
            "declare (binary_data_size); send exactly the tensors' bytes"
        )
    records = _records(tensors, features)
    outputs, binary_outputs = _outputs(request)
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str | int):
        raise V2Error(f"'id' must be a string, got {request_id!r}"[:300])
    return V2Request(
        str(request_id) if request_id is not None else None,
        records,
        outputs,
        binary_outputs,
        bool(parameters.get("binary_data_output")),
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
    classes: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """The V2 model metadata; ``predict`` declares the datatype ``infer`` answers with (a
    classifier's: that of its ``classes``, INT64 for integer classes, BYTES for strings)."""
    kinds = {"numeric": "FP64", "boolean": "BOOL", "categorical": "BYTES", "text": "BYTES"}
    if task == "regression":
        predict = "FP64"
    elif classes is not None and len(classes) > 0:
        predict = _datatype(np.asarray(list(classes)))
    else:
        predict = "BYTES"
    outputs = [{"name": "predict", "datatype": predict, "shape": [-1]}]
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
