"""ONNX models through onnxruntime (the ``onnx`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelpilot.errors import ArtifactError
from modelpilot.runtime._protocol import ModelInput


class OnnxRuntime:
    """An ONNX graph with either one 2-D tensor input or one input per feature column.

    Graphs converted from scikit-learn classifiers (skl2onnx) output a label tensor and a
    probability tensor (or a ZipMap list of dicts); both layouts are read.
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
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ArtifactError(f"{path.name} is not a loadable ONNX model ({exc})") from None
        self.inputs = self.session.get_inputs()
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.classes = classes
        self._proba_output = next((o for o in self.outputs if "prob" in o.lower()), None)
        # One 2-D tensor input: the server's array of numeric features feeds it directly.
        self.accepts_array = len(self.inputs) == 1
        if self.classes is None and self._proba_output is not None:
            self.classes = self._classes_from_metadata()

    def _classes_from_metadata(self) -> list[object] | None:
        meta = self.session.get_modelmeta().custom_metadata_map
        if "classes" in meta:
            return [c for c in meta["classes"].split(",")]
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
        return np.asarray(outputs[self.outputs[0]]).reshape(n, -1).squeeze(axis=1)

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
            keys = list(proba[0].keys()) if proba else []
            if self.classes is None:
                self.classes = keys
            return np.array([[row[k] for k in keys] for row in proba], dtype=np.float64)
        return np.asarray(proba, dtype=np.float64)


def load_onnx(path: Path, *, trust: bool) -> OnnxRuntime:
    del trust  # an ONNX graph cannot run arbitrary code
    return OnnxRuntime(path)
