"""One input tensor of an Open Inference Protocol request, read strictly.

A tensor's shape, datatype and data must agree exactly: ``shape`` is a list of whole numbers,
the data holds exactly as many values as the shape says, JSON data is nested no deeper than
the shape's dimensions and holds only numbers, strings and booleans, and binary data is exactly
``elements x item size`` bytes (BYTES: every 4-byte length prefix within the data, as many
strings as elements, valid UTF-8). Anything else is refused with the tensor's name, what was
expected and what came, never decoded into something else (FP64 bytes declared FP32 used to be
scored as garbage; extra values used to be dropped).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np

from modelpilot.errors import ModelpilotError, ValidationFailed

__all__ = ["DATATYPES", "MAX_DIMENSIONS", "V2Error", "tensor_values"]

_NUMPY: dict[str, type[np.generic]] = {
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
DATATYPES = (*_NUMPY, "BYTES")
#: A feature's tensor is [n] or [n, 1], all features in one is [n, k]: a few dimensions at most.
MAX_DIMENSIONS = 4


class V2Error(ModelpilotError):
    """The request is not a well-formed V2 inference request (a 400)."""

    kind = "bad_request"


def _invalid(name: str, expected: str, got: Any) -> ValidationFailed:
    return ValidationFailed([{"field": name, "expected": expected, "got": got}])


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def tensor_shape(tensor: Mapping[str, Any], name: str) -> list[int]:
    """The tensor's shape: 1 to ``MAX_DIMENSIONS`` whole numbers >= 0 (a 422 otherwise)."""
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= MAX_DIMENSIONS
        or not all(_whole(size) and size >= 0 for size in shape)
    ):
        raise _invalid(
            name, f"a shape of 1 to {MAX_DIMENSIONS} whole numbers >= 0, such as [2, 9]", shape
        )
    return shape


def tensor_datatype(tensor: Mapping[str, Any], name: str) -> str:
    datatype = tensor.get("datatype")
    if not isinstance(datatype, str) or datatype.upper() not in DATATYPES:
        raise _invalid(name, f"a datatype: one of {', '.join(DATATYPES)}", datatype)
    return datatype.upper()


def tensor_parameters(holder: Mapping[str, Any], where: str) -> dict[str, Any]:
    parameters = holder.get("parameters")
    if parameters is None:
        return {}
    if not isinstance(parameters, dict):
        raise V2Error(
            f"'parameters' of {where} must be a JSON object such as "
            f'{{"binary_data_size": 8}}, got {parameters!r}'
        )
    return parameters


def _flatten(data: Any, name: str, dimensions: int) -> list[Any]:
    """The values of JSON ``data``, row-major; nested at most ``dimensions`` deep."""
    values: list[Any] = []
    # An explicit stack, not recursion: a hostile body nests lists a thousand deep.
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, list):
            if depth >= dimensions:
                raise _invalid(
                    name,
                    f"data nested at most {dimensions} deep (its shape's dimensions)",
                    "deeper",
                )
            stack.extend((value, depth + 1) for value in reversed(item))
        elif isinstance(item, dict):
            raise _invalid(name, "data of numbers, strings or booleans", "an object")
        else:
            values.append(item)
    return values


def _bytes_tensor(raw: bytes, name: str, count: int) -> list[str]:
    items: list[str] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise V2Error(
                f"input {name!r}: a BYTES tensor is truncated: its 4-byte length prefix is cut off"
            )
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise _invalid(
                name,
                "BYTES elements whose 4-byte length prefixes stay within binary_data_size",
                f"an element of {length} bytes with {len(raw) - offset} left",
            )
        try:
            items.append(raw[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise _invalid(name, "BYTES elements in UTF-8", "invalid UTF-8") from None
        offset += length
    if len(items) != count:
        raise _invalid(name, f"{count} BYTES elements (its shape)", f"{len(items)} elements")
    return items


def tensor_values(
    tensor: Mapping[str, Any], binary: memoryview | None, offset: int
) -> tuple[list[Any], list[int], int]:
    """``(values, shape, offset)``: the tensor's values, row-major, and where the next
    tensor's binary data starts."""
    name = str(tensor["name"])
    shape = tensor_shape(tensor, name)
    datatype = tensor_datatype(tensor, name)
    count = math.prod(shape)
    size = tensor_parameters(tensor, f"input {name!r}").get("binary_data_size")
    if size is None:
        if "data" not in tensor:
            raise V2Error(f"input {name!r} has neither 'data' nor binary_data_size")
        values = _flatten(tensor["data"], name, len(shape))
        if len(values) != count:
            raise _invalid(
                name, f"{count} values (shape {shape})", f"{len(values)} values in 'data'"
            )
        return values, shape, offset
    if not _whole(size) or size < 0:
        raise _invalid(name, "binary_data_size: a whole number of bytes >= 0", size)
    if binary is None or offset + size > len(binary):
        raise V2Error(
            f"input {name!r} declares {size} bytes of binary data, but the body does not hold "
            "them (send the JSON header's length in Inference-Header-Content-Length)"
        )
    raw = bytes(binary[offset : offset + size])
    offset += size
    if datatype == "BYTES":
        return _bytes_tensor(raw, name, count), shape, offset
    dtype = np.dtype(_NUMPY[datatype])
    if size != count * dtype.itemsize:
        raise _invalid(
            name,
            f"{count * dtype.itemsize} bytes: shape {shape} of {datatype} "
            f"({dtype.itemsize} bytes each)",
            f"binary_data_size {size}",
        )
    return np.frombuffer(raw, dtype=dtype).tolist(), shape, offset
