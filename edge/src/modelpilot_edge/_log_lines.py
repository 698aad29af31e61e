"""The lines of the device's prediction log: what one prediction costs to write, and reading
every format ever written.

Every line is ``<crc32 of the payload, 8 hex digits> <payload>\\n``. Payloads:

- ``{...}``: format 1, a record as a JSON object (``id``, ``ts``, ``model``, ``version``,
  ``inputs``, ``outputs``, ``latency_ms``). Still written for what format 2 does not take (a
  record with text or missing values, pii fields, a failed prediction) and read forever;
- ``H{...}``: format 2's header (``"log_format": 2``): the model, version, input names and
  classes of the records that name it, by the first 8 hex digits of its crc32 (its key);
- ``P<key> <id> <numbers> [<prediction>]``: format 2, one prediction of numeric inputs. The
  numbers are float64, little-endian, in base64: the time, the latency in milliseconds, the
  inputs in the header's order, then the probabilities in the header's class order (a
  classifier, whose predicted class follows as JSON) or the prediction (a regressor).

Why format 2: a JSON object costs ~100 us a prediction here, nearly all of it printing the
floats as decimal text (~2.5 us each); packing them costs ~4 us, and they come back bit for
bit. A log segment holds the header before its first record (written in the same ``write`` as
that record), so each segment reads on its own. Reading turns a format-2 line into the very
record format 1 holds, so a sync uploads the same JSON to the server whatever the format.
"""

from __future__ import annotations

import binascii
import json
import math
import struct
import zlib
from collections.abc import Sequence
from typing import Any

__all__ = ["LOG_FORMAT", "RowFormat", "decode_line", "encode_line", "is_header"]

LOG_FORMAT = 2


def _frame(payload: bytes) -> bytes:
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def encode_line(record: dict[str, Any]) -> bytes:
    """One record as a format-1 line (a JSON object).

    Examples
    --------
    >>> encode_line({"id": "a"})
    b'9aa4e643 {"id":"a"}\\n'
    """
    return _frame(json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())


def _checked(line: bytes) -> bytes | None:
    """The payload of a complete line (without its newline) whose checksum holds."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    payload = line[9:]
    try:
        return payload if int(line[:8], 16) == zlib.crc32(payload) else None
    except ValueError:
        return None


def is_header(line: bytes) -> bool:
    """Whether a line is a format-2 header (not a prediction)."""
    return line[9:10] == b"H"


def decode_line(line: bytes, headers: dict[bytes, dict[str, Any]]) -> dict[str, Any] | None:
    """The record of a line, or None if it is damaged or names a header not read.

    A header line is added to ``headers`` and gives an empty dict (no record).
    """
    payload = _checked(line)
    if payload is None:
        return None
    kind = payload[:1]
    try:
        if kind == b"{":
            record: dict[str, Any] = json.loads(payload)
            return record
        if kind == b"H":
            header = json.loads(payload[1:])
            headers[b"%08x" % zlib.crc32(payload[1:])] = header
            return {}
        if kind == b"P":
            return _unpack(payload, headers)
    except (ValueError, KeyError, IndexError, TypeError, struct.error, binascii.Error):
        return None
    return None


def _unpack(payload: bytes, headers: dict[bytes, dict[str, Any]]) -> dict[str, Any] | None:
    parts = payload[1:].split(b" ", 3)
    header = headers.get(parts[0])
    if header is None:
        return None
    packed = binascii.a2b_base64(parts[2])
    numbers = struct.unpack(f"<{len(packed) // 8}d", packed)
    names: list[str] = header["inputs"]
    width = len(names)
    rest = numbers[2 + width :]
    outputs: dict[str, Any]
    classes = header["classes"]
    if classes is None:
        outputs = {"prediction": _plain(rest[0])}
    else:
        outputs = {
            "prediction": json.loads(parts[3]),
            "probabilities": {str(c): _plain(p) for c, p in zip(classes, rest, strict=True)},
        }
    return {
        "id": parts[1].decode("ascii"),
        "ts": numbers[0],
        "model": header["model"],
        "version": header["version"],
        "inputs": dict(zip(names, numbers[2 : 2 + width], strict=True)),
        "outputs": outputs,
        "latency_ms": numbers[1],
    }


def _plain(value: float) -> float | None:
    return value if math.isfinite(value) else None


class RowFormat:
    """How one bundle writes its predictions of numeric rows (format 2).

    Examples
    --------
    >>> form = RowFormat(model="m", version=1, inputs=["a", "b"], classes=["no", "yes"])
    >>> line = form.line("p1", 1.5, 0.25, [3.0, 4.0], "yes", [0.25, 0.75])
    >>> headers = {}
    >>> decode_line(form.header[:-1], headers), len(headers)
    ({}, 1)
    >>> record = decode_line(line[:-1], headers)
    >>> record["inputs"], record["outputs"]
    ({'a': 3.0, 'b': 4.0}, {'prediction': 'yes', 'probabilities': {'no': 0.25, 'yes': 0.75}})
    """

    def __init__(
        self, *, model: str, version: int, inputs: Sequence[str], classes: list[Any] | None
    ) -> None:
        text = json.dumps(
            {
                "log_format": LOG_FORMAT,
                "model": model,
                "version": version,
                "inputs": list(inputs),
                "classes": classes,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        #: The header line: written before the first record of each segment.
        self.header = _frame(b"H" + text)
        self._prefix = b"P%08x " % zlib.crc32(text)
        self._width = len(inputs)
        self._classes = None if classes is None else len(classes)
        self._pack = struct.Struct(f"<{2 + len(inputs) + (self._classes or 1)}d").pack
        # The predicted class as JSON, by label. Labels of one type only: True == 1 would
        # otherwise find another type's label.
        self._labels: dict[Any, bytes] | None = None
        self._label_type: type | None = None
        if classes is not None and len({type(c) for c in classes}) == 1:
            self._labels = {c: json.dumps(c, ensure_ascii=False).encode() for c in classes}
            self._label_type = type(classes[0])

    def line(
        self,
        prediction_id: str,
        ts: float,
        latency_ms: float,
        row: Sequence[float],
        prediction: Any,
        probabilities: Sequence[float] | None,
    ) -> bytes | None:
        """The line of one prediction, or None if format 2 cannot hold it (a format-1 line
        then)."""
        if self._classes is None:
            if type(prediction) is not float or probabilities is not None:
                return None
            try:
                numbers = self._pack(ts, latency_ms, *row, prediction)
            except (struct.error, OverflowError):
                return None
            label = b""
        else:
            labels = self._labels
            if (
                labels is None
                or type(prediction) is not self._label_type
                or probabilities is None
                or len(probabilities) != self._classes
            ):
                return None
            try:
                label = b" " + labels[prediction]
                numbers = self._pack(ts, latency_ms, *row, *probabilities)
            except (KeyError, TypeError, struct.error, OverflowError):
                return None
        payload = b"%s%s %s%s" % (
            self._prefix,
            prediction_id.encode("ascii"),
            binascii.b2a_base64(numbers, newline=False),
            label,
        )
        return _frame(payload)
