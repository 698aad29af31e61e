"""Registering a model: load it, evaluate it on a holdout, profile its training data, store it."""

from __future__ import annotations

import getpass
import platform
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from modelpilot.data import SchemaValidator, build_profile, read_table, sha256_file
from modelpilot.errors import DataError
from modelpilot.registry._metrics import check_targets, compute_metrics
from modelpilot.registry._registry import ModelRegistry, ModelVersion
from modelpilot.runtime import ModelRuntime, load_runtime
from modelpilot.spec import FeatureSpec, ProjectSpec

__all__ = ["ProjectContext", "evaluate", "register_model"]


class ProjectContext(Protocol):
    """What registering a model reads of its project (``modelpilot.project.Project``)."""

    @property
    def directory(self) -> Path: ...

    @property
    def spec(self) -> ProjectSpec: ...

    @property
    def environ(self) -> Mapping[str, str]: ...

    @property
    def registry(self) -> ModelRegistry: ...


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


def _align_labels(truth: Any, classes: list[object]) -> Any:
    # CSV readers turn integer labels into floats (1.0); compare them as the model's classes.
    import numpy as np

    if classes and isinstance(classes[0], int | np.integer) and truth.dtype.kind == "f":
        return truth.astype(np.int64)
    if classes and isinstance(classes[0], str) and truth.dtype.kind != "O":
        return truth.astype(str)
    return truth


def register_model(
    project: ProjectContext,
    artifact: Path,
    *,
    name: str | None = None,
    eval_file: Path | None = None,
    data_file: Path | None = None,
    trust: bool = False,
    tags: Mapping[str, str] | None = None,
    features: list[FeatureSpec] | None = None,
) -> ModelVersion:
    """The whole registration; nothing is written unless every step before the commit passed."""
    spec = project.spec
    model_name = name or spec.model_name
    runtime = load_runtime(artifact, trust=trust)  # refuse what cannot be loaded, before storing
    schema = features if features is not None else spec.features
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
