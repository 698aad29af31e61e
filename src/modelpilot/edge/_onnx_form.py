"""A scikit-learn model as an ONNX graph (skl2onnx), for models the exact kernels do not cover.

The graph takes float32 inputs (one matrix for a model fitted on an array; one input per column
for a model fitted on a DataFrame, text columns as strings) and answers a label and a
probability matrix (no ZipMap), so the device runner reads it with onnxruntime alone. float32
is not the library's float64: the export checks the graph's answers within ``TOLERANCE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelpilot.edge._forms import ModelForm, Unexportable, model_columns
from modelpilot.runtime import ModelRuntime
from modelpilot.spec import FeatureSpec

__all__ = ["TOLERANCE", "onnx_form"]

#: How far an ONNX graph's answers may be from the library's: classes must be equal;
#: probabilities within 1e-4 (float32 carries ~7 digits, and a sum of a few hundred float32
#: terms, as a forest's, loses about two: 1e-5 is what the tests see, 1e-4 leaves room);
#: regression predictions within a relative 1e-4 of the library's (same reasoning).
TOLERANCE = {"probability": 1e-4, "relative": 1e-4}


def onnx_form(
    runtime: ModelRuntime, features: Sequence[FeatureSpec], task: str | None
) -> ModelForm:
    """The model converted by skl2onnx, or :class:`Unexportable` with the converter's reason."""
    estimator = getattr(runtime, "estimator", None)
    if estimator is None:
        raise Unexportable(f"ONNX conversion takes scikit-learn models, not {runtime.flavor} files")
    try:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    except ImportError:
        raise Unexportable("skl2onnx is not installed (pip install skl2onnx)") from None
    columns = model_columns(runtime, features)
    types = {f.name: f.type for f in features}
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    classifier = getattr(estimator, "classes_", None) is not None
    options = {id(final): {"zipmap": False}} if classifier else None
    feeds: list[dict[str, Any]]
    text = {n for n in columns if types.get(n) in ("categorical", "text")}
    # One float matrix whenever every column is a number: converters of a bare estimator
    # (HistGradientBoosting*, most ensembles) take a single input, and one feed is cheaper
    # per call on the device than a column each.
    if getattr(estimator, "feature_names_in_", None) is None or not text:
        initial: list[Any] = [("input", FloatTensorType([None, len(columns)]))]
        feeds = [{"input": "input", "columns": columns, "type": "float"}]
    else:
        initial, feeds = [], []
        for name in columns:
            is_text = name in text
            initial.append(
                (name, StringTensorType([None, 1]) if is_text else FloatTensorType([None, 1]))
            )
            feeds.append(
                {"input": name, "columns": [name], "type": "string" if is_text else "float"}
            )
    try:
        graph = convert_sklearn(estimator, initial_types=initial, options=options)
    except Exception as exc:  # the converter names the step it has no converter for
        raise Unexportable(f"skl2onnx: {_first_line(exc)}") from None
    encodings = {
        name: "boolean" if types.get(name) == "boolean" else "number"
        for name in columns
        if types.get(name) not in ("categorical", "text")
    }
    encodings.update({name: "text" for name in columns if name not in encodings})
    classes = getattr(estimator, "classes_", None)
    spec: dict[str, Any] = {
        "engine": "onnx",
        "task": task,
        "columns": columns,
        "encodings": encodings,
        "classes": None
        if classes is None
        else [c.item() if hasattr(c, "item") else c for c in classes],
        "onnx": {"inputs": feeds},
        "tolerance": TOLERANCE,
    }
    return ModelForm("onnx", spec, {"model/model.onnx": graph.SerializeToString()})


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
