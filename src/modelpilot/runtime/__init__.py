"""The runtime protocol and its loaders: skops, joblib/pickle (trusted), ONNX, MLflow pyfunc,
native XGBoost, LightGBM and CatBoost files; exact NumPy kernels for linear and tree models."""

from modelpilot.runtime._loading import FLAVORS, detect_flavor, load_runtime
from modelpilot.runtime._paths import answer_path
from modelpilot.runtime._protocol import ModelRuntime

__all__ = ["FLAVORS", "ModelRuntime", "answer_path", "detect_flavor", "load_runtime"]
