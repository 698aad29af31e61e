"""Detect an artifact's format and load it behind :class:`ModelRuntime`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from modelpilot.errors import ArtifactError, NotFoundError
from modelpilot.runtime._boosters import load_catboost, load_lightgbm, load_xgboost
from modelpilot.runtime._mlflow import load_mlflow
from modelpilot.runtime._onnx import load_onnx
from modelpilot.runtime._protocol import ModelRuntime
from modelpilot.runtime._sklearn import load_pickle, load_skops

__all__ = ["FLAVORS", "detect_flavor", "load_runtime"]

_SUFFIXES = {
    ".skops": "skops",
    ".joblib": "joblib",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".onnx": "onnx",
    ".ubj": "xgboost",
    ".cbm": "catboost",
}
FLAVORS: dict[str, Callable[..., ModelRuntime]] = {
    "skops": load_skops,
    "joblib": load_pickle,
    "pickle": load_pickle,
    "onnx": load_onnx,
    "mlflow": load_mlflow,
    "xgboost": load_xgboost,
    "lightgbm": load_lightgbm,
    "catboost": load_catboost,
}
_EXPECTED = (
    "expected .skops (scikit-learn via skops), .joblib/.pkl (with --trust), .onnx, "
    ".json/.ubj (XGBoost), .txt (LightGBM), .cbm (CatBoost), or an MLflow model directory"
)


def detect_flavor(path: str | os.PathLike[str]) -> str:
    """The artifact's format, from its name, or its first bytes where the name is ambiguous
    (``.json``: an XGBoost model has a ``"learner"``; ``.txt``: a LightGBM model starts with
    ``tree`` and ``version=``), or an ``MLmodel`` file in a directory.

    Examples
    --------
    >>> detect_flavor("model.skops"), detect_flavor("model.pkl"), detect_flavor("model.ubj")
    ('skops', 'pickle', 'xgboost')
    """
    artifact = Path(path)
    if artifact.is_dir():
        if (artifact / "MLmodel").is_file():
            return "mlflow"
        raise ArtifactError(f"{artifact} is a directory without an MLmodel file; {_EXPECTED}")
    suffix = artifact.suffix.lower()
    flavor = _SUFFIXES.get(suffix) or _sniff(artifact, suffix)
    if flavor is None:
        raise ArtifactError(
            f"{artifact.name}: unknown model format {suffix!r}; {_EXPECTED}; "
            "or name the format with --flavor"
        )
    return flavor


def _sniff(artifact: Path, suffix: str) -> str | None:
    """The flavor of a .json/.txt/.model file, from its first bytes (None when unknown)."""
    if suffix not in {".json", ".txt", ".model"} or not artifact.is_file():
        return None
    with open(artifact, "rb") as handle:
        head = handle.read(1 << 16)
    if head.startswith(b"tree\nversion=") or head.startswith(b"tree\r\nversion="):
        return "lightgbm"
    if head.lstrip().startswith(b"{") and b'"learner"' in head:
        return "xgboost"
    return None


def load_runtime(
    path: str | os.PathLike[str],
    *,
    flavor: str | None = None,
    trust: bool = False,
    columns: list[str] | None = None,
) -> ModelRuntime:
    """Load a model artifact. Pickle-based formats load only with ``trust=True``.

    ``columns`` are the names of the columns of the 2-D arrays the caller will pass (the
    project's features, in order): a model with named features then takes such arrays too.
    """
    artifact = Path(path)
    if not artifact.exists():
        raise NotFoundError("artifact", str(path), hint="check the path")
    kind = flavor or detect_flavor(artifact)
    if kind not in FLAVORS:
        raise ArtifactError(f"unknown flavor {kind!r}; known: {', '.join(FLAVORS)}")
    runtime = FLAVORS[kind](artifact, trust=trust)
    bind = getattr(runtime, "bind_columns", None)
    if columns is not None and bind is not None:
        bind(list(columns))
    return runtime
