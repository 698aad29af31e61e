"""Registering a model: load it, evaluate it on a holdout, profile its training data, store it."""

from __future__ import annotations

import getpass
import platform
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelpilot.data import SchemaValidator, build_profile, read_table, sha256_file
from modelpilot.errors import ArtifactError, DataError
from modelpilot.registry._metrics import check_targets, compute_metrics
from modelpilot.registry._registry import ModelVersion
from modelpilot.runtime import ModelRuntime, load_runtime
from modelpilot.spec import FeatureSpec, ProjectSpec

if TYPE_CHECKING:
    from modelpilot.project import Project

__all__ = ["evaluate", "register_model"]


def _git_commit(directory: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None if result.returncode == 0 else None


def current_user(environ: Mapping[str, str]) -> str:
    if environ.get("MODELPILOT_USER"):
        return environ["MODELPILOT_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def evaluate(
    runtime: ModelRuntime, spec: ProjectSpec, holdout: Path
) -> tuple[dict[str, float | None], int]:
    """Metrics of ``runtime`` on a holdout file; returns them and the number of rows used."""
    frame = read_table(holdout, types={f.name: f.type for f in spec.features})
    if spec.target not in frame:
        raise DataError(
            f"{holdout}: the target column {spec.target!r} is missing; the file has "
            f"{', '.join(map(str, frame.columns))}"
        )
    frame = frame[frame[spec.target].notna()].reset_index(drop=True)
    result = SchemaValidator(spec.features).validate_frame(frame)
    if result.n_invalid:
        first = result.problems[0]
        got = first["got"].item() if hasattr(first["got"], "item") else first["got"]  # np.float64
        raise DataError(
            f"{holdout}: {result.n_invalid} of {len(frame)} holdout rows fail the schema "
            f"(first: row {first['row']}, {first['field']}: expected {first['expected']}, "
            f"got {got!r}); fix the file or the schema"
        )
    if len(result.clean) == 0:
        raise DataError(f"{holdout}: no labelled rows to evaluate on")
    truth = frame[spec.target][result.valid].to_numpy()
    predictions = runtime.predict(result.clean)
    proba = runtime.predict_proba(result.clean) if spec.task != "regression" else None
    if spec.task != "regression" and runtime.classes is not None:
        truth = _align_labels(truth, runtime.classes)
    return compute_metrics(
        spec.task, truth, predictions, proba=proba, classes=runtime.classes
    ), len(truth)


def check_model_features(
    runtime: ModelRuntime, schema: list[FeatureSpec], *, artifact: str
) -> None:
    """Refuse a model whose own feature names (or count) do not fit the project's schema.

    A model with named features must find each of them among the schema's columns; one
    without names (fitted on an array) takes the schema's columns by position, so the counts
    must agree. Models that tell neither (MLflow, ONNX), and projects that declare no
    features yet, are not checked.
    """
    names = [f.name for f in schema]
    if not names:
        return
    model_names = getattr(runtime, "feature_names", None)
    if model_names is not None:
        missing = [n for n in model_names if n not in names]
        if missing:
            extra = [n for n in names if n not in model_names]
            raise ArtifactError(
                f"{artifact} uses feature(s) {', '.join(map(repr, missing))} that the project's "
                f"schema does not have"
                + (
                    f" (the schema has {', '.join(map(repr, extra))} that the model does not use)"
                    if extra
                    else ""
                )
                + "; rename the columns in modelpilot.yaml (features:) or retrain the model "
                "on the schema's columns"
            )
        _check_types(runtime, schema, artifact)
        return
    width = getattr(runtime, "n_features", None)
    if width is not None and int(width) != len(names):
        raise ArtifactError(
            f"{artifact} takes {width} features by position, but the project's schema has "
            f"{len(names)} ({', '.join(names)}); a model without feature names gets the schema's "
            "columns in order, so make the schema list exactly the model's features"
        )


def _check_types(runtime: ModelRuntime, schema: list[FeatureSpec], artifact: str) -> None:
    categorical = set(getattr(runtime, "categorical_features", None) or [])
    if getattr(runtime, "flavor", "") not in {"xgboost", "lightgbm", "catboost"}:
        return
    for feature in schema:
        if feature.name in categorical or feature.type in {"numeric", "boolean"}:
            continue
        if feature.name in (getattr(runtime, "feature_names", None) or []):
            raise ArtifactError(
                f"{artifact} takes {feature.name!r} as a number, but the project's schema says "
                f"it is {feature.type}; native {runtime.flavor} models take numbers (category "
                "codes for categorical features): declare it numeric in modelpilot.yaml"
            )


def _align_labels(truth: Any, classes: list[object]) -> Any:
    # CSV readers turn integer labels into floats (1.0); compare them as the model's classes.
    import numpy as np

    if classes and isinstance(classes[0], int | np.integer) and truth.dtype.kind == "f":
        return truth.astype(np.int64)
    if classes and isinstance(classes[0], str) and truth.dtype.kind != "O":
        return truth.astype(str)
    return truth


def register_model(
    project: Project,
    artifact: Path,
    *,
    name: str | None = None,
    eval_file: Path | None = None,
    data_file: Path | None = None,
    trust: bool = False,
    tags: Mapping[str, str] | None = None,
    features: list[FeatureSpec] | None = None,
    flavor: str | None = None,
) -> ModelVersion:
    """The whole registration; nothing is written unless every step before the commit passed."""
    spec = project.spec
    model_name = name or spec.model_name
    # Refuse what cannot be loaded, or does not fit the schema, before storing anything.
    runtime = load_runtime(artifact, flavor=flavor, trust=trust)
    schema = features if features is not None else spec.features
    check_model_features(runtime, schema, artifact=artifact.name)
    lineage: dict[str, Any] = {
        "registered_at": time.time(),
        "user": current_user(project.environ),
        "host": platform.node(),
        "git_commit": _git_commit(project.directory),
        "source_path": str(artifact.resolve()),
        "python": platform.python_version(),
    }
    metrics: dict[str, Any] = {}
    checks: list[dict[str, Any]] = []
    if eval_file is not None:
        values, n_rows = evaluate(runtime, spec, eval_file)
        metrics = {**values, "n_eval_rows": n_rows}
        checks = check_targets(values, spec.key_metrics)
        lineage["eval_sha256"] = sha256_file(eval_file)
        lineage["eval_path"] = str(eval_file.resolve())
    elif spec.key_metrics:
        checks = [
            {
                "metric": t.name,
                "op": t.op,
                "target": t.target,
                "value": None,
                "passed": False,
                "reason": "not evaluated: register with --eval HOLDOUT",
            }
            for t in spec.key_metrics
        ]
    profile: dict[str, Any] = {}
    if data_file is not None:
        target = _target_spec(spec)
        profile = build_profile(data_file, schema, target=target)
        lineage["data_sha256"] = sha256_file(data_file)
        lineage["data_path"] = str(data_file.resolve())
        lineage["data_rows"] = profile["n_rows"]
    return project.registry.create_version(
        model_name,
        artifact,
        features=schema,
        actor=lineage["user"],
        flavor=runtime.flavor,
        task=spec.task,
        target=spec.target,
        profile=profile,
        metrics=metrics,
        checks=checks,
        lineage=lineage,
        tags=dict(tags or {}),
    )


def _target_spec(spec: ProjectSpec) -> FeatureSpec:
    kind = "numeric" if spec.task == "regression" else "categorical"
    return FeatureSpec(name=spec.target, type=kind, nullable=True)
