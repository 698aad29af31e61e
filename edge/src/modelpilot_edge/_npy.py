"""Plain-Python reading of the ``.npz`` files ``np.savez`` writes, for the arrays of a small model.

Why by hand: a linear bundle answers one row in plain Python (``_linear_python.py``), and
importing NumPy only to read a few dozen numbers would cost a device more start-up time than
everything else together (~120 ms here). The ``.npy`` format is documented and stable
(``numpy.lib.format``): a magic string, a header that is a Python dict literal, then the raw
values. Only what ``LinearArrays.save`` writes is read: little-endian float64 and int64
arrays in C order, no pickles. Anything else gives None, and the caller reads the file with
NumPy instead.
"""

from __future__ import annotations

import re
import struct
import zipfile
from io import BytesIO

__all__ = ["PlainArray", "read_npz"]

_MAGIC = b"\x93NUMPY"
_HEADER = re.compile(
    r"^\{'descr': '(?P<descr><[fi]8)', 'fortran_order': (?P<fortran>True|False), "
    r"'shape': \((?P<shape>[0-9, ]*)\), \}\s*$"
)
_CODES = {"<f8": "d", "<i8": "q"}

#: An array as ``(shape, values in C order)``.
PlainArray = tuple[tuple[int, ...], list[float] | list[int]]


def _read_npy(data: bytes) -> PlainArray | None:
    if data[:6] != _MAGIC or len(data) < 10:
        return None
    major = data[6]
    if major == 1:
        (length,), start = struct.unpack("<H", data[8:10]), 10
    elif major in (2, 3):
        (length,), start = struct.unpack("<I", data[8:12]), 12
    else:
        return None
    header = data[start : start + length].decode("latin-1")
    found = _HEADER.match(header)
    if found is None:
        return None
    shape = tuple(int(n) for n in found["shape"].replace(" ", "").split(",") if n)
    size = 1
    for n in shape:
        size *= n
    if found["fortran"] == "True" and len([n for n in shape if n > 1]) > 1:
        return None  # column-major 2-D: not what LinearArrays.save writes
    body = data[start + length :]
    if len(body) != 8 * size:
        return None
    values = list(struct.unpack(f"<{size}{_CODES[found['descr']]}", body))
    return shape, values


def read_npz(data: bytes) -> dict[str, PlainArray] | None:
    """The arrays of an ``np.savez`` file, or None if one is not plain float64 / int64.

    Examples
    --------
    >>> import io, zipfile
    >>> header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"
    >>> npy = b"\\x93NUMPY\\x01\\x00" + bytes([len(header), 0]) + header
    >>> npy += bytes(8) + bytes.fromhex("000000000000f03f")
    >>> buffer = io.BytesIO()
    >>> with zipfile.ZipFile(buffer, "w") as archive:
    ...     archive.writestr("a.npy", npy)
    >>> read_npz(buffer.getvalue())
    {'a': ((2,), [0.0, 1.0])}
    """
    arrays: dict[str, PlainArray] = {}
    try:
        with zipfile.ZipFile(BytesIO(data)) as archive:
            for name in archive.namelist():
                if not name.endswith(".npy"):
                    return None
                array = _read_npy(archive.read(name))
                if array is None:
                    return None
                arrays[name[: -len(".npy")]] = array
    except (zipfile.BadZipFile, struct.error, ValueError):
        return None
    return arrays
