"""ONNX models through onnxruntime (the ``onnx`` extra).

A classifier's labels and probabilities are found in the graph, whatever converted it
(skl2onnx, onnxmltools for XGBoost and LightGBM, with or without ZipMap):

- the probability output is a ZipMap (one ``{class: probability}`` map per row) or a 2-D float
  tensor, preferably one whose name says "prob"; the label output is the first other one;
- the class labels, in the order of the probability columns, are the ``classlabels_int64s``
  (``classlabels_ints``) or ``classlabels_strings`` attribute of the graph's last ZipMap or
  classifier node (TreeEnsembleClassifier, LinearClassifier, SVMClassifier), else the
  ``classes`` entry of the model's metadata (comma-separated): a graph without such nodes (a
  network ending in softmax) needs that entry, see docs/models.md.

The ``onnx`` package reads the graph's nodes (onnxruntime does not expose them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelpilot.errors import ArtifactError
from modelpilot.runtime._protocol import ModelInput

__all__ = ["OnnxRuntime", "graph_class_labels", "load_onnx"]

# The ONNX-ML operators that carry a classifier's class labels.
_LABELLED_OPS = ("ZipMap", "TreeEnsembleClassifier", "LinearClassifier", "SVMClassifier")


def graph_class_labels(path: Path) -> list[object] | None:
    """The class labels of the graph's last ZipMap or classifier node, if it has one.

    Reads the graph with the ``onnx`` package (the ``onnx`` extra); without it, None.
    """
    try:
        import onnx
    except ImportError:
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # onnxruntime loaded it: what onnx cannot parse just has no labels
        return None
    for node in reversed(model.graph.node):
        if node.op_type not in _LABELLED_OPS:
            continue
        for attribute in node.attribute:
            # TreeEnsembleClassifier and ZipMap say int64s; LinearClassifier, SVMClassifier ints.
            if attribute.name in ("classlabels_int64s", "classlabels_ints") and attribute.ints:
                return [int(v) for v in attribute.ints]
            if attribute.name == "classlabels_strings" and attribute.strings:
                return [s.decode("utf-8") for s in attribute.strings]
    return None


def _width(shape: Any) -> int | None:
    return shape[1] if isinstance(shape, list | tuple) and len(shape) == 2 else None


class OnnxRuntime:
    """An ONNX graph with either one 2-D tensor input or one input per feature column.

    ``feature_names``: the inputs' names when there is one per feature; ``n_features``: the
    width of a single 2-D input, when the graph fixes it.
    """

    flavor = "onnx"

    def __init__(self, path: Path, *, classes: list[object] | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ArtifactError(
                "ONNX models need onnxruntime: pip install 'modelpilot[onnx]'"
            ) from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3  # converters' loose output shapes warn on every call
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ArtifactError(f"{path.name} is not a loadable ONNX model ({exc})") from None
        self.inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()
        self.outputs = [o.name for o in outputs]
        # One 2-D tensor input: the server's array of numeric features feeds it directly.
        self.accepts_array = len(self.inputs) == 1
        self.feature_names = [t.name for t in self.inputs] if len(self.inputs) > 1 else None
        width = _width(self.inputs[0].shape) if len(self.inputs) == 1 else None
        self.n_features = width if isinstance(width, int) else None
        self._proba_output = self._find_proba_output(outputs)
        others = [o for o in self.outputs if o != self._proba_output]
        self._label_output = others[0] if others else None
        self.classes = classes or self._classes(path)
        if self._proba_output is None:
            self.classes = None
        elif self.classes is None:
            raise ArtifactError(
                f"{path.name} outputs probabilities ({self._proba_output}) but names no class "
                "labels: its graph has no ZipMap or classifier node with classlabels. Add them "
                'to the model\'s metadata: onnx.helper.set_model_props(model, {"classes": '
                '"a,b,c"}) in the order of the probability columns (docs/models.md)'
            )

    def _find_proba_output(self, outputs: list[Any]) -> str | None:
        candidates: list[str] = [
            str(o.name)
            for o in outputs
            if str(o.type).startswith("seq(map(")
            or (("float" in str(o.type) or "double" in str(o.type)) and len(o.shape or []) == 2)
        ]
        named: list[str] = [name for name in candidates if "prob" in name.lower()]
        if named:
            return named[0]
        # A graph whose only output is a float matrix is a classifier only if the metadata
        # names its classes (a regressor's [N, 1] output is not probabilities).
        if candidates and (len(outputs) > 1 or "classes" in self._metadata()):
            return candidates[-1]
        return None

    def _metadata(self) -> dict[str, str]:
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def _classes(self, path: Path) -> list[object] | None:
        # The graph's own labels first: they have the label output's type (ints stay ints).
        labels = graph_class_labels(path)
        if labels is not None:
            return labels
        meta = self._metadata()
        if "classes" in meta:
            return [c.strip() for c in meta["classes"].split(",")]
        return None

    def _feed(self, frame: ModelInput) -> dict[str, Any]:
        if len(self.inputs) == 1:
            tensor = self.inputs[0]
            dtype = np.float64 if "double" in tensor.type else np.float32
            if isinstance(frame, np.ndarray):
                return {tensor.name: frame.astype(dtype, copy=False)}
            return {tensor.name: frame.to_numpy(dtype=dtype)}
        if isinstance(frame, np.ndarray):
            raise TypeError("this ONNX model has one input per feature: pass a DataFrame")
        feed = {}
        for tensor in self.inputs:
            if tensor.name not in frame:
                raise ArtifactError(
                    f"the ONNX model wants an input named {tensor.name!r}, which is not a feature"
                )
            column = frame[tensor.name].to_numpy()
            if "string" in tensor.type:
                feed[tensor.name] = column.astype(str).reshape(-1, 1)
            elif "double" in tensor.type:
                feed[tensor.name] = column.astype(np.float64).reshape(-1, 1)
            elif "int64" in tensor.type:
                feed[tensor.name] = column.astype(np.int64).reshape(-1, 1)
            else:
                feed[tensor.name] = column.astype(np.float32).reshape(-1, 1)
        return feed

    def _run(self, frame: ModelInput) -> dict[str, Any]:
        results = self.session.run(None, self._feed(frame))
        return dict(zip(self.outputs, results, strict=True))

    def _labels(self, outputs: dict[str, Any], n: int) -> np.ndarray:
        if self._label_output is None:  # probabilities only: the most probable class
            classes = np.asarray(self.classes, dtype=object)
            return np.asarray(classes[self._proba(outputs).argmax(axis=1)].tolist())
        return np.asarray(outputs[self._label_output]).reshape(n, -1).squeeze(axis=1)

    def predict(self, frame: ModelInput) -> np.ndarray:
        return self._labels(self._run(frame), len(frame))

    def predict_proba(self, frame: ModelInput) -> np.ndarray | None:
        if self._proba_output is None:
            return None
        return self._proba(self._run(frame))

    def predict_with_proba(self, frame: ModelInput) -> tuple[np.ndarray, np.ndarray | None]:
        """Both outputs of one run of the graph (it computes labels and probabilities)."""
        outputs = self._run(frame)
        proba = self._proba(outputs) if self._proba_output is not None else None
        return self._labels(outputs, len(frame)), proba

    def _proba(self, outputs: dict[str, Any]) -> np.ndarray:
        if self._proba_output is None:
            raise ArtifactError("this ONNX model has no probability output")
        proba = outputs[self._proba_output]
        if isinstance(proba, list):  # ZipMap: one {class: probability} dict per row
            keys = list(proba[0].keys()) if proba else []  # in the graph's class order
            return np.array([[row[k] for k in keys] for row in proba], dtype=np.float64)
        return np.asarray(proba, dtype=np.float64)


def load_onnx(path: Path, *, trust: bool) -> OnnxRuntime:
    del trust  # an ONNX graph cannot run arbitrary code
    return OnnxRuntime(path)
