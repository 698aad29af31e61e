"""A loaded model in the form a device runs: modelpilot's exact kernels, or an ONNX graph.

A form is the ``model.json`` of a bundle (which engine; the model's columns in its order and
how each is encoded; the classes; for a linear model the memory layout it was checked with)
and the files it names (``model/linear.npz``, ``model/trees.npz`` and ``model/steps.npz``, or
``model/model.onnx``). The kernels are the ones the server answers with: extracted when the
model loaded and checked bit for bit against the library there (``runtime/_kernels.py``,
``runtime/_tree_kernel.py``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from modelpilot.runtime import ModelRuntime
from modelpilot.runtime._kernels import LinearKernel
from modelpilot.runtime._sklearn_kernels import why_no_kernel
from modelpilot.runtime._tree_kernel import TreeKernel
from modelpilot.spec import FeatureSpec

__all__ = ["ModelForm", "Unexportable", "kernel_form", "model_columns"]


class Unexportable(Exception):
    """An engine cannot carry this model; the message names the step or the reason."""


@dataclass
class ModelForm:
    """``model.json`` (``spec``) and the files it names."""

    engine: str
    spec: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)


def model_columns(runtime: ModelRuntime, features: Sequence[FeatureSpec]) -> list[str]:
    """The columns the model takes, in its order: its own names, else the schema's."""
    names = getattr(runtime, "feature_names", None)
    return [str(n) for n in names] if names is not None else [f.name for f in features]


def _encodings(
    columns: Sequence[str], features: Sequence[FeatureSpec], coded: set[str]
) -> dict[str, str]:
    types = {f.name: f.type for f in features}
    encodings = {}
    for name in columns:
        if name in coded:
            encodings[name] = "codes"
        elif types.get(name) == "boolean":
            encodings[name] = "boolean"
        elif types.get(name) == "numeric":
            encodings[name] = "number"
        else:
            raise Unexportable(
                f"the model takes the {types.get(name, 'unknown')} column {name!r} without an "
                "encoder the kernels know (OneHotEncoder, OrdinalEncoder)"
            )
    return encodings


def _npz(save: Any) -> bytes:
    buffer = io.BytesIO()
    save(buffer)
    return buffer.getvalue()


def _classes(values: Any) -> list[Any] | None:
    return None if values is None else [v.item() if hasattr(v, "item") else v for v in values]


def kernel_form(
    runtime: ModelRuntime, features: Sequence[FeatureSpec], task: str | None
) -> ModelForm:
    """The model as modelpilot's NumPy kernels, or :class:`Unexportable` saying why not."""
    kernel = getattr(runtime, "kernel", None)
    if kernel is None:
        estimator = getattr(runtime, "estimator", None)
        if estimator is not None:
            raise Unexportable(f"no exact kernel: {why_no_kernel(estimator)}")
        raise Unexportable(
            f"no exact kernel for this {runtime.flavor} model (`modelpilot serve` logs why at "
            "INFO level)"
        )
    columns = model_columns(runtime, features)
    if len(columns) != getattr(kernel, "width", len(columns)):
        raise Unexportable(f"the kernel takes {kernel.width} columns, the model {len(columns)}")
    if isinstance(kernel, LinearKernel):
        spec: dict[str, Any] = {
            "engine": "linear",
            "task": task,
            "columns": columns,
            "encodings": _encodings(columns, features, set()),
            "classes": _classes(kernel.classes),
            # The layout scikit-learn multiplies: a DataFrame's (Fortran order) for a model
            # fitted on one, the array's own (C order) otherwise (see runtime/_kernels.py).
            "layout": "F" if kernel.feature_names is not None else "C",
        }
        return ModelForm("linear", spec, {"model/linear.npz": _npz(kernel.arrays.save)})
    if isinstance(kernel, TreeKernel):
        coded = {columns[index]: codes for index, codes in kernel.codes.items()}
        spec = {
            "engine": "trees",
            "task": task,
            "columns": columns,
            "encodings": _encodings(columns, features, set(coded)),
            "codes": {name: codes.to_dict() for name, codes in coded.items()},
            "classes": _classes(kernel.classes),
            "proba_dtype": "float32" if kernel.arrays.sum_float32 else None,
        }
        files = {"model/trees.npz": _npz(kernel.arrays.save)}
        if kernel.steps is not None:
            files["model/steps.npz"] = _npz(kernel.steps.save)
        return ModelForm("trees", spec, files)
    raise Unexportable(f"no bundle form for a {type(kernel).__name__}")
