"""MLflow model directories (the ``mlflow`` extra).

A classifier's probabilities come from the model under the pyfunc wrapper when it has them
(scikit-learn, XGBoost and LightGBM classifiers: ``predict_proba`` and ``classes_``), else from
the pyfunc itself when its signature says it returns one float column per class and the
model's metadata names the classes (``metadata={"classes": [...]}`` when logging it; see
docs/models.md). The signature's input names are the model's feature names.

Only what unpickles needs trust: a directory whose MLmodel names pickled parts (a
``python_model``, a ``pickled_model``, a pickle or cloudpickle serialization) or code to
import loads only with ``trust=True``; one saved as XGBoost's own format or with skops does
not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import ArtifactError, UntrustedArtifactError
from modelpilot.runtime._protocol import ModelInput

__all__ = ["MlflowRuntime", "load_mlflow", "untrusted_parts"]

# MLflow's own loaders; any other loader module is code shipped with the model.
_LOADERS = {
    "mlflow.sklearn",
    "mlflow.xgboost",
    "mlflow.lightgbm",
    "mlflow.catboost",
    "mlflow.onnx",
    "mlflow.pyfunc.model",
}


def untrusted_parts(mlmodel: dict[str, Any]) -> list[str]:
    """What loading an MLflow model (its parsed MLmodel file) would unpickle or import.

    Examples
    --------
    >>> untrusted_parts({"flavors": {"python_function": {"loader_module": "mlflow.xgboost"},
    ...                              "xgboost": {"data": "model.ubj", "code": None}}})
    []
    >>> untrusted_parts({"flavors": {"sklearn": {"pickled_model": "model.pkl",
    ...                                          "serialization_format": "cloudpickle"}}})
    ['model.pkl (cloudpickle)']
    """
    parts: list[str] = []
    for name, flavor in (mlmodel.get("flavors") or {}).items():
        if not isinstance(flavor, dict):
            continue
        fmt = str(flavor.get("serialization_format") or "")
        pickled = flavor.get("pickled_model") or (
            flavor.get("data") if fmt in ("pickle", "cloudpickle") else None
        )
        if pickled:
            parts.append(f"{pickled} ({fmt or 'pickle'})")
        if flavor.get("python_model"):
            parts.append(f"{flavor['python_model']} (cloudpickle)")
        if flavor.get("code"):
            parts.append(f"the code in {flavor['code']}/")
        loader = flavor.get("loader_module")
        if name == "python_function" and loader and loader not in _LOADERS:
            parts.append(f"its loader module {loader}")
    return list(dict.fromkeys(parts))


def _classes_of(raw: Any, metadata: dict[str, Any]) -> list[object] | None:
    found = getattr(raw, "classes_", None)
    if found is None:
        found = metadata.get("classes")
    if found is None:
        return None
    return [c.item() if hasattr(c, "item") else c for c in found]


def _output_width(model: Any) -> int | None:
    """How many float columns the pyfunc's signature says it returns (None: one, or unknown)."""
    schema = model.metadata.get_output_schema()
    if schema is None:
        return None
    if schema.is_tensor_spec():
        [spec] = schema.inputs if len(schema.inputs) == 1 else [None]
        shape = getattr(spec, "shape", None)
        dtype = str(getattr(spec, "type", ""))
        if shape is not None and len(shape) == 2 and "float" in dtype and shape[1] > 1:
            return int(shape[1])
        return None
    types = [str(c.type).lower() for c in schema.inputs]
    if len(types) > 1 and all("double" in t or "float" in t for t in types):
        return len(types)
    return None


class MlflowRuntime:
    """An MLflow pyfunc model; classifiers answer probabilities (see the module's docstring)."""

    flavor = "mlflow"

    def __init__(self, model: Any) -> None:
        self.model = model
        try:
            raw = model.get_raw_model()
        except Exception:  # a pyfunc without a flavor under it
            raw = None
        metadata = dict(model.metadata.metadata or {})
        has_proba = callable(getattr(raw, "predict_proba", None))
        self._estimator = raw if has_proba and getattr(raw, "classes_", None) is not None else None
        self.classes: list[object] | None = _classes_of(self._estimator, metadata)
        width = _output_width(model) if self._estimator is None else None
        # A pyfunc that returns probabilities: one column per class named in the metadata.
        self._returns_proba = (
            width is not None and self.classes is not None and width == len(self.classes)
        )
        if self._estimator is None and not self._returns_proba:
            self.classes = None
        schema = model.metadata.get_input_schema()
        self.feature_names: list[str] | None = (
            list(schema.input_names()) if schema is not None and schema.has_input_names() else None
        )

    def _estimator_input(self, frame: ModelInput) -> Any:
        names = getattr(self._estimator, "feature_names_in_", None)
        if isinstance(frame, pd.DataFrame):
            return frame[[str(n) for n in names]] if names is not None else frame.to_numpy()
        return frame

    def _pyfunc(self, frame: ModelInput) -> np.ndarray:
        return np.asarray(self.model.predict(frame))

    def predict(self, frame: ModelInput) -> np.ndarray:
        if self._returns_proba:
            return self.predict_with_proba(frame)[0]
        return self._pyfunc(frame).reshape(len(frame), -1).squeeze(axis=1)

    def predict_proba(self, frame: ModelInput) -> np.ndarray | None:
        if self._estimator is not None:
            proba = self._estimator.predict_proba(self._estimator_input(frame))
            return np.asarray(proba, dtype=np.float64)
        if self._returns_proba:
            return self._pyfunc(frame).astype(np.float64).reshape(len(frame), -1)
        return None

    def predict_with_proba(self, frame: ModelInput) -> tuple[np.ndarray, np.ndarray | None]:
        """Labels and probabilities; one call of a pyfunc that returns probabilities."""
        if self._returns_proba and self.classes is not None:
            proba = self._pyfunc(frame).astype(np.float64).reshape(len(frame), -1)
            labels = np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)]
            return np.asarray(labels.tolist()), proba
        return self.predict(frame), self.predict_proba(frame)


def load_mlflow(path: Path, *, trust: bool) -> MlflowRuntime:
    import yaml

    try:
        mlmodel = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ArtifactError(f"{path}/MLmodel cannot be read ({exc})") from None
    parts = untrusted_parts(mlmodel)
    if parts and not trust:
        raise UntrustedArtifactError(
            str(path.name),
            why=(
                f"is an MLflow model whose loading unpickles or imports {', '.join(parts)}, "
                "which can run arbitrary code"
            ),
            instead="or log it with serialization_format='skops', or as ONNX",
        )
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
