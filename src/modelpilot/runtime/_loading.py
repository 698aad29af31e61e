"""Detect an artifact's format and load it behind :class:`ModelRuntime`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from modelpilot.errors import ArtifactError, NotFoundError
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
}
FLAVORS: dict[str, Callable[..., ModelRuntime]] = {
    "skops": load_skops,
    "joblib": load_pickle,
    "pickle": load_pickle,
    "onnx": load_onnx,
    "mlflow": load_mlflow,
}


def detect_flavor(path: str | os.PathLike[str]) -> str:
    """The artifact's format, from its name (or an ``MLmodel`` file in a directory).

    Examples
    --------
    >>> detect_flavor("model.skops"), detect_flavor("model.pkl")
    ('skops', 'pickle')
    """
    artifact = Path(path)
    if artifact.is_dir():
        if (artifact / "MLmodel").is_file():
            return "mlflow"
        raise ArtifactError(
            f"{artifact} is a directory without an MLmodel file; expected a .skops, .joblib, "
            ".pkl or .onnx file, or an MLflow model directory"
        )
    flavor = _SUFFIXES.get(artifact.suffix.lower())
    if flavor is None:
        raise ArtifactError(
            f"{artifact.name}: unknown model format {artifact.suffix!r}; expected .skops "
            "(scikit-learn via skops), .joblib/.pkl (with --trust), .onnx, "
            "or an MLflow model directory"
        )
    return flavor


def load_runtime(
    path: str | os.PathLike[str], *, flavor: str | None = None, trust: bool = False
) -> ModelRuntime:
    """Load a model artifact. Pickle-based formats load only with ``trust=True``."""
    artifact = Path(path)
    if not artifact.exists():
        raise NotFoundError("artifact", str(path), hint="check the path")
    kind = flavor or detect_flavor(artifact)
    if kind not in FLAVORS:
        raise ArtifactError(f"unknown flavor {kind!r}; known: {', '.join(FLAVORS)}")
    return FLAVORS[kind](artifact, trust=trust)
