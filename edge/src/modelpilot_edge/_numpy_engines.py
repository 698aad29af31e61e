"""The NumPy engines of a bundle: modelpilot's exact kernels, and ONNX graphs.

Imported only when a bundle needs NumPy (``_engines.py``): a tree ensemble, an ONNX graph, a
batch of records, or a linear model the pure-Python path does not take.

``linear`` and ``trees`` are modelpilot's exact NumPy kernels (``modelpilot_edge.kernels``; the
same arrays the server evaluates, so the same bits); ``onnx`` is an ONNX graph run by
onnxruntime, imported only for such a bundle (float32: answers within the tolerance the export
checked, not bit for bit).

Inputs reach an engine as the schema validator leaves them: rows of numbers in the schema's
order (the all-numeric fast path) or columns of coerced values (numbers or None, booleans,
strings). The engine builds the array its model was exported for: the model's own columns in
its order, booleans as 1.0 / 0.0 (what scikit-learn makes of them), categories as the codes of
their encoder, missing values as NaN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._engines import Answers, NotAnswerable
from ._manifest import load_bytes
from .kernels import (
    CategoryCodes,
    ColumnSteps,
    LinearArrays,
    TreeEnsembleArrays,
    c_expf,
)

__all__ = ["KernelEngine", "OnnxEngine"]

_FLOAT32_LINKS = frozenset({"expit32", "softmax32"})


class _Inputs:
    """How validated inputs become the model's array (see the module's docstring)."""

    def __init__(self, spec: Mapping[str, Any], schema: Sequence[str]) -> None:
        self.columns: list[str] = list(spec["columns"])
        self.encodings: dict[str, str] = dict(spec["encodings"])
        self.codes = {
            name: CategoryCodes.from_dict(value) for name, value in spec.get("codes", {}).items()
        }
        missing = [c for c in self.columns if c not in schema]
        if missing:
            raise ValueError(f"the model's columns {missing} are not in the bundle's schema")
        take = [list(schema).index(c) for c in self.columns]
        self.take: np.ndarray | None = (
            None if take == list(range(len(schema))) else np.array(take, dtype=np.intp)
        )
        self._coded = [i for i, c in enumerate(self.columns) if self.encodings[c] == "codes"]

    def from_rows(self, rows: Sequence[Sequence[float]]) -> np.ndarray:
        """Rows of numbers in the schema's order (the all-numeric fast path)."""
        matrix = np.array(rows, dtype=np.float64)
        if self.take is not None:
            matrix = matrix[:, self.take]
        for index in self._coded:  # rare: numbers an encoder turns into codes
            name = self.columns[index]
            matrix[:, index] = self._codes(name, matrix[:, index].tolist())
        return matrix

    def _codes(self, name: str, values: list[Any]) -> np.ndarray:
        encoded = self.codes[name].encode(values)
        if encoded is None:
            unknown = next(v for v in values if self.codes[name].encode([v]) is None)
            raise NotAnswerable(
                f"{name}={unknown!r} is a category the model's encoder never saw and has no "
                "code for (ValueError)"
            )
        return encoded

    def from_columns(
        self, columns: Mapping[str, Sequence[Any]], n: int, *, skip: frozenset[str] = frozenset()
    ) -> np.ndarray:
        """Validated columns; those in ``skip`` are left at 0 (an ONNX graph reads them as
        text)."""
        out = np.zeros((n, len(self.columns)), dtype=np.float64)
        for index, name in enumerate(self.columns):
            if name in skip:
                continue
            values = columns[name]
            encoding = self.encodings[name]
            if encoding == "codes":
                out[:, index] = self._codes(name, list(values))
            elif encoding == "boolean":
                out[:, index] = [np.nan if v is None else (1.0 if v else 0.0) for v in values]
            else:
                try:
                    out[:, index] = [np.nan if v is None else float(v) for v in values]
                except (TypeError, ValueError):
                    raise NotAnswerable(f"{name} must be a number for this model") from None
        return out


class KernelEngine:
    """A linear model or a tree ensemble as modelpilot's exact NumPy kernels."""

    def __init__(self, spec: Mapping[str, Any], files: Mapping[str, bytes], schema: Sequence[str]):
        self.name = str(spec["engine"])
        self.inputs = _Inputs(spec, schema)
        classes = spec.get("classes")
        self.classes: list[Any] | None = None if classes is None else list(classes)
        self._labels = None if classes is None else np.asarray(classes)
        self._class_names = None if classes is None else [str(c) for c in classes]
        self._fortran = spec.get("layout") == "F"
        self.linear: LinearArrays | None = None
        self.trees: TreeEnsembleArrays | None = None
        self.steps: ColumnSteps | None = None
        if self.name == "linear":
            self.linear = LinearArrays.load(load_bytes(files, "model/linear.npz"))
        else:
            self.trees = TreeEnsembleArrays.load(load_bytes(files, "model/trees.npz"))
            if "model/steps.npz" in files:
                self.steps = ColumnSteps.load(load_bytes(files, "model/steps.npz"))
        self._proba32 = spec.get("proba_dtype") == "float32"

    def answer_rows(self, rows: Sequence[Sequence[float]]) -> Answers:
        return self._answer(self.inputs.from_rows(rows))

    def answer_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> Answers:
        return self._answer(self.inputs.from_columns(columns, n))

    def _answer(self, X: np.ndarray) -> Answers:
        if self.linear is not None:
            if not bool(np.isfinite(X).all()):
                raise NotAnswerable("a linear model takes no missing values (ValueError)")
            # The memory layout scikit-learn multiplied when the model was checked: BLAS sums
            # a Fortran-ordered array in another order (see modelpilot's runtime/_kernels.py).
            scores, proba, index = self.linear.evaluate(
                np.asfortranarray(X) if self._fortran else X
            )
            if index is None or self._labels is None:
                return scores.tolist(), None
            return self._labels[index].tolist(), None if proba is None else proba.tolist()
        trees = self.trees
        if trees is None:  # pragma: no cover - one of the two is always loaded
            raise NotAnswerable("the bundle holds no model arrays")
        if self.steps is not None:
            if bool(np.isinf(X).any()):  # scikit-learn's transformers refuse infinities
                raise NotAnswerable("an input is infinite (ValueError)")
            X = self.steps.apply(X)
        if not trees.accepts(X):
            raise NotAnswerable("an input is outside what the trees take (ValueError)")
        if self._labels is None:
            return trees.predict_values(X).tolist(), None
        expf = c_expf() if trees.link in _FLOAT32_LINKS else None
        _, proba, index = trees.evaluate(X, expf=expf)
        if proba is None or index is None:
            raise NotAnswerable("a classifier's arrays gave no probabilities")
        if self._proba32:
            proba = proba.astype(np.float32, copy=False)
        return self._labels[index].tolist(), proba.tolist()


class OnnxEngine:
    """An ONNX graph, run by onnxruntime (``pip install 'modelpilot-edge[onnx]'``).

    ``model.json``'s ``onnx.inputs`` names the graph's inputs: each takes some of the model's
    columns, as float32 numbers or as strings (a pipeline that encodes text itself).
    """

    def __init__(self, spec: Mapping[str, Any], files: Mapping[str, bytes], schema: Sequence[str]):
        try:
            import onnxruntime
        except ImportError:
            raise NotAnswerable(
                "this bundle's model is an ONNX graph, which needs onnxruntime: "
                "pip install 'modelpilot-edge[onnx]'"
            ) from None
        self.name = "onnx"
        self.inputs = _Inputs(spec, schema)
        self.classes: list[Any] | None = (
            None if spec.get("classes") is None else list(spec["classes"])
        )
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # a few rows at a time: a thread pool only waits
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            files["model/model.onnx"], options, providers=["CPUExecutionProvider"]
        )
        self.feeds: list[dict[str, Any]] = list(spec["onnx"]["inputs"])
        self.texts = frozenset(
            name for feed in self.feeds if feed["type"] == "string" for name in feed["columns"]
        )
        self._positions = {name: i for i, name in enumerate(self.inputs.columns)}

    def answer_rows(self, rows: Sequence[Sequence[float]]) -> Answers:
        return self._run(self.inputs.from_rows(rows), {})

    def answer_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> Answers:
        texts = {name: columns[name] for name in self.texts}
        return self._run(self.inputs.from_columns(columns, n, skip=self.texts), texts)

    def _run(self, X: np.ndarray, texts: Mapping[str, Sequence[Any]]) -> Answers:
        feed: dict[str, Any] = {}
        for item in self.feeds:
            names = item["columns"]
            if item["type"] == "string":
                values = [["" if v is None else str(v) for v in texts[name]] for name in names]
                feed[item["input"]] = np.array(values, dtype=object).T
            else:
                feed[item["input"]] = X[:, [self._positions[n] for n in names]].astype(np.float32)
        try:
            results = self.session.run(None, feed)
        except Exception as exc:  # onnxruntime's own errors: the graph refused the input
            raise NotAnswerable(f"onnxruntime: {type(exc).__name__}") from None
        if self.classes is None:
            return np.asarray(results[0]).reshape(-1).tolist(), None
        return np.asarray(results[0]).reshape(-1).tolist(), np.asarray(results[1]).tolist()
