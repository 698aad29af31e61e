"""The model inside a bundle, behind one call: validated inputs in, predictions out.

Three engines, chosen when the bundle was exported (``model.json``): ``linear`` and ``trees``
are modelpilot's exact NumPy kernels, ``onnx`` an ONNX graph run by onnxruntime
(``_numpy_engines.py``). What loads when, so that a device starts quickly:

- a linear model whose arrays are plain float64 (every one ``modelpilot export edge``
  writes) answers one record in plain Python (``_linear_python.py``): opening such a bundle
  and answering single records never imports NumPy. A batch of records, and a record whose
  class the plain sum cannot decide as surely as NumPy's, import it then;
- a tree ensemble or an ONNX graph imports NumPy when the bundle opens: a pure-Python walk
  of 200 trees of depth 8 takes ~400 us a row here, against ~100-170 us for the NumPy kernel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["Answers", "Engine", "NotAnswerable", "load_engine"]

Answers = tuple[list[Any], list[list[float]] | None]


class NotAnswerable(Exception):
    """The model cannot take these (valid) inputs; the message says why."""


class Engine(Protocol):
    """What a bundle's model answers."""

    name: str
    classes: list[Any] | None

    def answer_rows(self, rows: Sequence[Sequence[float]]) -> Answers: ...

    def answer_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> Answers: ...


def load_engine(
    spec: Mapping[str, Any], files: Mapping[str, bytes], schema: Sequence[str]
) -> Engine:
    """The engine ``model.json`` names (``linear``, ``trees`` or ``onnx``)."""
    if spec["engine"] == "linear":
        from ._linear_python import PythonLinearEngine

        plain = PythonLinearEngine.load(spec, files, schema)
        if plain is not None:
            return plain
    from ._blas import import_numpy

    import_numpy()  # one BLAS thread where nobody said otherwise (_blas.py)
    if spec["engine"] in ("linear", "trees"):
        from ._numpy_engines import KernelEngine

        return KernelEngine(spec, files, schema)
    if spec["engine"] == "onnx":
        from ._numpy_engines import OnnxEngine

        return OnnxEngine(spec, files, schema)
    raise ValueError(f"unknown engine {spec['engine']!r}; this runner knows linear, trees, onnx")
