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
from modelpilot.errors import ArtifactError, ConfigError, DataError
from modelpilot.registry._assessment import align_labels as _align_labels
from modelpilot.registry._assessment import assess_holdout, importance_metric
from modelpilot.registry._metrics import check_targets, compute_metrics
from modelpilot.registry._registry import ModelRegistry, ModelVersion
from modelpilot.runtime import ModelRuntime, load_runtime
from modelpilot.spec import FeatureSpec, ProjectSpec

__all__ = ["ProjectContext", "check_feature_names", "evaluate", "register_model"]


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
    runtime: ModelRuntime,
    spec: ProjectSpec,
    holdout: Path,
    *,
    features: list[FeatureSpec] | None = None,
) -> tuple[dict[str, float | None], int]:
    """Metrics of ``runtime`` on a holdout file; returns them and the number of rows used.

    ``features``: the version's schema (default: the project's).
    """
    clean, truth = read_holdout(runtime, spec, holdout, features=features)
    predictions = runtime.predict(clean)
    proba = runtime.predict_proba(clean) if spec.task != "regression" else None
    return compute_metrics(
        spec.task, truth, predictions, proba=proba, classes=runtime.classes
    ), len(truth)


def read_holdout(
    runtime: ModelRuntime,
    spec: ProjectSpec,
    holdout: Path,
    *,
    features: list[FeatureSpec] | None = None,
) -> tuple[Any, Any]:
    """The holdout's valid labelled rows: their features (as the model takes them) and labels
    (as the model names its classes)."""
    schema = spec.features if features is None else features
    frame = read_table(holdout, types={f.name: f.type for f in schema})
    if spec.target not in frame:
        raise DataError(
            f"{holdout}: the target column {spec.target!r} is missing; the file has "
            f"{', '.join(map(str, frame.columns))}"
        )
    frame = frame[frame[spec.target].notna()].reset_index(drop=True)
    result = SchemaValidator(schema).validate_frame(frame)
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
    if spec.task != "regression" and runtime.classes is not None:
        truth = _align_labels(truth, runtime.classes)
    return result.clean, truth


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


def _model_columns(runtime: ModelRuntime) -> tuple[list[str] | None, int | None]:
    """The column names the model was fitted on (``feature_names``: scikit-learn's
    ``feature_names_in_``, a booster's names, an ONNX graph's inputs) and, for a model fitted
    on an unnamed array, how many columns it takes."""
    names = getattr(runtime, "feature_names", None)
    if names is not None:
        return [str(n) for n in names], None
    count = getattr(runtime, "n_features", None)
    if count is None:  # a scikit-learn estimator fitted on an array
        count = getattr(getattr(runtime, "estimator", None), "n_features_in_", None)
    return None, None if count is None else int(count)


def check_feature_names(runtime: ModelRuntime, features: list[FeatureSpec]) -> list[str]:
    """Check the model's own feature names against the schema; returns the schema's columns
    the model does not use (they are still validated and logged).

    Raises :class:`ArtifactError` naming the columns the model needs that the schema lacks
    (it could not predict a single row) or, for a model fitted on an unnamed array, when the
    numbers of columns differ.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from modelpilot.spec import FeatureSpec
    >>> schema = [FeatureSpec(name="size", type="numeric"), FeatureSpec(name="note", type="text")]
    >>> check_feature_names(SimpleNamespace(feature_names=["size"]), schema)
    ['note']
    >>> check_feature_names(SimpleNamespace(feature_names=["size", "rooms"]), schema)
    Traceback (most recent call last):
    ...
    modelpilot.errors.ArtifactError: the model was fitted on columns the schema lacks: rooms; ...
    """
    names, count = _model_columns(runtime)
    declared = [f.name for f in features]
    if names is not None:
        missing = [n for n in names if n not in declared]
        extra = [n for n in declared if n not in names]
        if missing:
            also = (
                f"; the schema also has {', '.join(extra)}, which it does not use" if extra else ""
            )
            raise ArtifactError(
                f"the model was fitted on columns the schema lacks: {', '.join(missing)}{also}. "
                "Declare them under `features` in modelpilot.yaml (`modelpilot data check DATA "
                "--write-schema` infers them), or register a model fitted on the schema's columns"
            )
        return extra
    if count is not None and count != len(declared):
        raise ArtifactError(
            f"the model takes {count} columns (it was fitted on an unnamed array), but the "
            f"schema declares {len(declared)}: {', '.join(declared)}. Fit the model on a "
            "DataFrame with the schema's columns, or make the schema match, in the model's order"
        )
    return []


def _schema(
    project: ProjectContext, data_file: Path | None, eval_file: Path | None
) -> list[FeatureSpec]:
    """The project's features; when it declares none, inferred from ``data_file`` (else
    ``eval_file``) as `data check --write-schema` does, and written to the project file."""
    spec = project.spec
    if spec.features:
        return list(spec.features)
    from modelpilot.spec import PROJECT_FILE, write_features

    file = project.directory / PROJECT_FILE
    source = data_file or eval_file
    if source is None:
        raise ConfigError(
            str(file),
            [
                "features: the schema is empty, and registering needs one to check the model "
                "against. Run `modelpilot data check TRAIN.csv --write-schema`, or register "
                "with --data TRAIN.csv (or --eval) to infer it from the data"
            ],
        )
    from modelpilot.data import infer_schema

    inferred = infer_schema(source, target=spec.target)
    write_features(file, inferred)
    return inferred


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
    flavor: str | None = None,
) -> ModelVersion:
    """The whole registration; nothing is written unless every step before the commit passed.

    With a holdout (``eval_file``), each feature's share of the model's permutation importance
    is measured too (``metrics["importance"]``, the metric it is measured by in the lineage's
    ``importance_metric``): drift alerts weigh features by it and the dashboard shows it.
    """
    spec = project.spec
    model_name = name or spec.model_name
    # Refuse what cannot be loaded, or does not fit the schema, before storing anything.
    runtime = load_runtime(artifact, flavor=flavor, trust=trust)
    schema = features if features is not None else _schema(project, data_file, eval_file)
    unused = check_feature_names(runtime, schema)
    _check_types(runtime, schema, artifact.name)
    lineage: dict[str, Any] = {
        "registered_at": time.time(),
        "user": current_user(project.environ),
        "host": platform.node(),
        "git_commit": _git_commit(project.directory),
        "source_path": str(artifact.resolve()),
        "python": platform.python_version(),
    }
    if not spec.features and features is None:
        lineage["schema_inferred_from"] = str((data_file or eval_file or artifact).resolve())
    if unused:
        lineage["features_unused_by_model"] = unused
    metrics: dict[str, Any] = {}
    checks: list[dict[str, Any]] = []
    if eval_file is not None:
        values, n_rows = evaluate(runtime, spec, eval_file, features=schema)
        metrics = {**values, "n_eval_rows": n_rows}
        # Feature importance and the calibration check (dicts beside the numbers).
        metrics.update(assess_holdout(runtime, spec, eval_file, features=schema))
        checks = check_targets(values, spec.key_metrics)
        lineage["eval_sha256"] = sha256_file(eval_file)
        lineage["eval_path"] = str(eval_file.resolve())
        if "importance" in metrics:
            lineage["importance_metric"] = importance_metric(spec)
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
