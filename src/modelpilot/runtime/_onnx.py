"""ONNX models through onnxruntime (the ``onnx`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import ArtifactError


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
        if self.classes is None and self._proba_output is not None:
            self.classes = self._classes_from_metadata()

    def _classes_from_metadata(self) -> list[object] | None:
        meta = self.session.get_modelmeta().custom_metadata_map
        if "classes" in meta:
            return [c for c in meta["classes"].split(",")]
        return None

    def _feed(self, frame: pd.DataFrame) -> dict[str, Any]:
        if len(self.inputs) == 1:
            tensor = self.inputs[0]
            dtype = np.float64 if "double" in tensor.type else np.float32
            return {tensor.name: frame.to_numpy(dtype=dtype)}
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

    def _run(self, frame: pd.DataFrame) -> dict[str, Any]:
        results = self.session.run(None, self._feed(frame))
        return dict(zip(self.outputs, results, strict=True))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self._run(frame)[self.outputs[0]]).reshape(len(frame), -1).squeeze(axis=1)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray | None:
        if self._proba_output is None:
            return None
        proba = self._run(frame)[self._proba_output]
        if isinstance(proba, list):  # ZipMap: one {class: probability} dict per row
            keys = list(proba[0].keys()) if proba else []
            if self.classes is None:
                self.classes = keys
            return np.array([[row[k] for k in keys] for row in proba], dtype=np.float64)
        return np.asarray(proba, dtype=np.float64)


def load_onnx(path: Path, *, trust: bool) -> OnnxRuntime:
    del trust  # an ONNX graph cannot run arbitrary code
    return OnnxRuntime(path)
