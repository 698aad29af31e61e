"""MLflow pyfunc model directories (the ``mlflow`` extra). They are pickled, so need trust."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelpilot.errors import ArtifactError, UntrustedArtifactError
from modelpilot.runtime._protocol import ModelInput


class MlflowRuntime:
    flavor = "mlflow"

    def __init__(self, model: Any) -> None:
        self.model = model
        self.classes: list[object] | None = None

    def predict(self, frame: ModelInput) -> np.ndarray:
        return np.asarray(self.model.predict(frame)).reshape(len(frame), -1).squeeze(axis=1)

    def predict_proba(self, frame: ModelInput) -> np.ndarray | None:
        return None


def load_mlflow(path: Path, *, trust: bool) -> MlflowRuntime:
    if not trust:
        raise UntrustedArtifactError(str(path.name))
    try:
        import mlflow.pyfunc
    except ImportError:
        raise ArtifactError(
            "MLflow model directories need mlflow: pip install 'modelpilot[mlflow]'"
        ) from None
    try:
        return MlflowRuntime(mlflow.pyfunc.load_model(str(path)))
    except Exception as exc:
        raise ArtifactError(f"{path} is not a loadable MLflow model ({exc})") from None
