"""``modelpilot export edge``: a registered version as a signed bundle a device can run.

The bundle holds the model in the form a device runs (``_forms.py``: the server's exact
kernels; ``_onnx_form.py``: an ONNX graph where no kernel applies), the version's feature
schema with the server's request limit, the reference profile (on-device drift), the version's
metadata, smoke rows (holdout rows with the registered model's answers, which the device
checks after each update), and a manifest of every file's sha256, signed with the project's
key (``modelpilot_edge.write_bundle``).

Before anything is written, each engine that can carry the model answers the holdout the way
the device will (``modelpilot_edge.Bundle``, from the same bytes) and its answers are compared
with the registered model's, computed as the server computes them (``inference.batch_scorer``,
the server's scoring of a micro-batch): the kernels must give the same bits, an ONNX graph the
same classes and probabilities within ``TOLERANCE``. Each engine's one-row latency is measured
too; the exact kernels are chosen when they pass (and need nothing but NumPy on the device),
an ONNX graph when only it passes, and a model neither carries is refused, naming the step.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modelpilot.data import SchemaValidator, read_table
from modelpilot.edge._errors import EdgeFailure, ExportError, NotExportable
from modelpilot.edge._forms import ModelForm, Unexportable, kernel_form
from modelpilot.edge._keys import SigningKey
from modelpilot.edge._onnx_form import onnx_form
from modelpilot.errors import DataError
from modelpilot.inference import BatchJob, JobResult, batch_scorer
from modelpilot.project import Project
from modelpilot.registry import ModelVersion
from modelpilot.runtime import ModelRuntime
from modelpilot_edge import Bundle, EdgeError, write_bundle

__all__ = [
    "ENGINES",
    "ExportReport",
    "build_bundle_files",
    "deployment_of",
    "export_bundle",
    "registered_answers",
]

ENGINES = ("auto", "kernels", "onnx")
#: Holdout rows checked (the first ones): enough to reach every corner of a model, bounded so
#: an export takes seconds.
MAX_CHECK_ROWS = 2000
SMOKE_ROWS = 20
_CHUNK = 256


@dataclass
class ExportReport:
    """What an export wrote, and how each engine did on the holdout."""

    path: Path
    model: str
    version: int
    deployment: str
    engine: str
    sha256: str
    rows_checked: int
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "model": self.model,
            "version": self.version,
            "deployment": self.deployment,
            "engine": self.engine,
            "sha256": self.sha256,
            "rows_checked": self.rows_checked,
            "candidates": self.candidates,
        }


def _holdout_records(version: ModelVersion, holdout: Path | None) -> tuple[list[Any], Path]:
    path = holdout
    if path is None:
        recorded = version.lineage.get("eval_path")
        if not recorded:
            raise ExportError(
                f"{version.name}:{version.version} was registered without --eval, and the "
                "export checks the bundle on a holdout: pass --eval HOLDOUT"
            )
        path = Path(recorded)
    if not path.is_file():
        raise ExportError(
            f"the holdout {path} does not exist (the export checks the bundle on it); pass "
            "--eval HOLDOUT"
        )
    names = [f.name for f in version.features]
    frame = read_table(path, types={f.name: f.type for f in version.features})
    absent = [name for name in names if name not in frame]
    if absent:
        raise DataError(f"{path}: the holdout lacks the feature column(s) {', '.join(absent)}")
    features = frame[names].head(MAX_CHECK_ROWS)
    records: list[Any] = features.astype(object).where(features.notna(), None).to_dict("records")
    return [{k: _python(v) for k, v in r.items()} for r in records], path


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _chunks(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _answers(result: JobResult) -> list[dict[str, Any]]:
    out = []
    for i, prediction in enumerate(result.predictions):
        item: dict[str, Any] = {"prediction": prediction}
        if result.proba is not None and result.classes is not None:
            item["probabilities"] = dict(zip(result.classes, result.proba[i], strict=True))
        out.append(item)
    return out


def registered_answers(
    version: ModelVersion, runtime: ModelRuntime, records: Sequence[Any]
) -> list[dict[str, Any]]:
    """The registered model's answers to valid ``records``, computed as the server does."""
    validator = SchemaValidator(version.features)
    score = batch_scorer(version, runtime, validator)
    answers: list[dict[str, Any]] = []
    for chunk in _chunks(records, _CHUNK):
        rows = validator.numeric_rows(chunk)
        if rows is not None:
            job = BatchJob(len(chunk), rows=rows)
        else:
            job = BatchJob(len(chunk), columns=validator.validate_records(chunk).columns)
        (result,) = score([job])
        if not isinstance(result, JobResult):
            raise ExportError(
                f"the registered model fails on holdout rows ({result}); fix the model or the "
                "holdout before exporting"
            )
        answers += _answers(result)
    return answers


def _compare(
    got: Sequence[dict[str, Any]], want: Sequence[dict[str, Any]], tolerance: dict[str, float]
) -> tuple[str | None, dict[str, float]]:
    """The first difference beyond ``tolerance`` (None if none), and the largest ones."""
    worst = {"prediction": 0.0, "probability": 0.0}
    first = None
    relative, limit = tolerance.get("relative", 0.0), tolerance.get("probability", 0.0)
    for row, (a, b) in enumerate(zip(got, want, strict=True)):
        pa, pb = a["prediction"], b["prediction"]
        if isinstance(pb, float) and isinstance(pa, int | float):
            gap = abs(pa - pb) / max(1.0, abs(pb))
            worst["prediction"] = max(worst["prediction"], gap)
            bad = gap > relative if relative else pa != pb
        else:
            bad = pa != pb
        if bad and first is None:
            first = f"holdout row {row}: prediction {pa!r}, the registered model's {pb!r}"
        for name, value in (b.get("probabilities") or {}).items():
            have = (a.get("probabilities") or {}).get(name)
            gap = float("inf") if have is None else abs(have - value)
            worst["probability"] = max(worst["probability"], gap)
            if (gap > limit if limit else have != value) and first is None:
                first = f"holdout row {row}: probability of {name} {have!r}, expected {value!r}"
    return first, worst


def _microseconds_per_row(bundle: Bundle, records: Sequence[Any]) -> float:
    """The median CPU time of one-row predictions (what a device mostly does)."""
    times = []
    for record in list(records[:200]) * 2:
        start = time.process_time()
        bundle.predict(record)
        times.append(time.process_time() - start)
    return float(np.median(times) * 1e6)


def _schema_file(project: Project, version: ModelVersion) -> dict[str, Any]:
    spec = project.spec
    schema: dict[str, Any] = {
        "features": [f.model_dump(exclude_defaults=True) for f in version.features],
        "max_instances": spec.serving.max_instances,
    }
    if any(f.pii for f in version.features):
        from modelpilot.store import load_pii_key

        # Not the server's key: a device is easier to take apart than a server, and with the
        # key a low-entropy value (an email) can be found by hashing candidates. Tokens from
        # devices of one model match each other; they do not match the server's own.
        key = hmac.new(
            load_pii_key(project.directory, project.environ),
            f"modelpilot-edge:{version.name}".encode(),
            hashlib.sha256,
        ).hexdigest()
        schema["pii"] = {"mode": spec.logging.pii, "key": key}
    return schema


def build_bundle_files(
    project: Project,
    version: ModelVersion,
    runtime: ModelRuntime,
    *,
    deployment: str,
    holdout: Path | None = None,
    engine: str = "auto",
    clock: Callable[[], float] = time.time,
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The files of a bundle (all but the manifest) and what the check found (see the module)."""
    if engine not in ENGINES:
        raise ExportError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    records, holdout_path = _holdout_records(version, holdout)
    checked = SchemaValidator(version.features).validate_records(records)
    valid = [records[i] for i in checked.valid_index]
    if not valid:
        raise ExportError(f"{holdout_path}: no holdout row passes the schema; nothing to check")
    expected = registered_answers(version, runtime, valid)
    common: dict[str, bytes] = {
        "schema.json": _json(_schema_file(project, version)),
        "profile.json": _json(version.profile),
        "smoke.json": _json({"records": valid[:SMOKE_ROWS], "answers": expected[:SMOKE_ROWS]}),
    }
    builders: list[tuple[str, Callable[[], ModelForm]]] = []
    if engine in ("auto", "kernels"):
        builders.append(("kernels", lambda: kernel_form(runtime, version.features, version.task)))
    if engine in ("auto", "onnx"):
        builders.append(("onnx", lambda: onnx_form(runtime, version.features, version.task)))
    candidates: dict[str, dict[str, Any]] = {}
    forms: dict[str, ModelForm] = {}
    for name, build in builders:
        try:
            form = build()
        except Unexportable as exc:
            candidates[name] = {"ok": False, "why": str(exc)}
            continue
        files = {**common, **form.files, "model.json": _json(form.spec)}
        candidates[name] = _check(version, files, valid, expected, form)
        if candidates[name]["ok"]:
            forms[name] = form
    chosen = next((name for name in ("kernels", "onnx") if name in forms), None)
    label = f"{version.name}:{version.version}"
    if chosen is None:
        raise NotExportable(label, [f"{n}: {c['why']}" for n, c in candidates.items()])
    form = forms[chosen]
    metadata = {
        **version.summary(),
        "deployment": deployment,
        "exported_at": clock(),
        "engine": form.engine,
        "holdout": {"path": str(holdout_path), "rows_checked": len(valid)},
        "candidates": candidates,
    }
    files = {
        **common,
        **form.files,
        "model.json": _json(form.spec),
        "metadata.json": _json(metadata),
    }
    return files, {"engine": form.engine, "rows_checked": len(valid), "candidates": candidates}


def _check(
    version: ModelVersion,
    files: dict[str, bytes],
    records: Sequence[Any],
    expected: Sequence[dict[str, Any]],
    form: ModelForm,
) -> dict[str, Any]:
    """How the device would answer the holdout with ``form``, against the registered model."""
    files = {**files, "metadata.json": _json({"name": version.name, "version": version.version})}
    try:
        bundle = Bundle(Path("(export check)"), files, log=None, device_id="export-check")
        got: list[dict[str, Any]] = []
        for chunk in _chunks(records, _CHUNK):
            got += bundle.predict(list(chunk))
    except EdgeError as exc:
        return {"ok": False, "why": f"the bundle failed on the holdout ({exc.message})"}
    tolerance = dict(form.spec.get("tolerance") or {})
    first, worst = _compare(got, expected, tolerance)
    result: dict[str, Any] = {
        "ok": first is None,
        "exact": first is None and not tolerance,
        "largest_relative_prediction_difference": worst["prediction"],
        "largest_probability_difference": worst["probability"],
        "one_row_us": _microseconds_per_row(bundle, records),
    }
    if first is not None:
        what = "bit for bit" if not tolerance else f"within {tolerance}"
        result["why"] = f"answers differ from the registered model's {what} ({first})"
    return result


def _json(value: Any) -> bytes:
    return json.dumps(value, indent=1, sort_keys=True, default=_python).encode() + b"\n"


def export_bundle(
    project: Project,
    ref: str,
    target: Path,
    *,
    key: SigningKey,
    as_zip: bool,
    holdout: Path | None = None,
    engine: str = "auto",
    deployment: str | None = None,
    trust: bool = False,
    force: bool = False,
    clock: Callable[[], float] = time.time,
) -> ExportReport:
    """Export ``ref`` (``NAME@ALIAS``, ``NAME:VERSION``) to ``target`` (see the module)."""
    if target.exists() and not force:
        raise ExportError(f"{target} exists; pass --force to replace it")
    version = project.registry.resolve(ref)
    name = deployment or deployment_of(project, version.name)
    runtime = project.registry.load(version, trust=trust, force=force)
    files, found = build_bundle_files(
        project, version, runtime, deployment=name, holdout=holdout, engine=engine, clock=clock
    )
    try:
        path = write_bundle(
            target, files, private_key=key.private, as_zip=as_zip, created_at=clock()
        )
    except EdgeError as exc:
        raise EdgeFailure(exc) from None
    digest = hashlib.sha256(
        path.read_bytes() if path.is_file() else files["model.json"]
    ).hexdigest()
    return ExportReport(
        path,
        version.name,
        version.version,
        name,
        found["engine"],
        digest,
        found["rows_checked"],
        found["candidates"],
    )


def deployment_of(project: Project, model: str) -> str:
    """The deployment serving ``model``: the project's first one that names it, else the
    model's own name (the default deployment). A deployment with pipeline steps cannot be
    carried to a device: its steps run on the server."""
    for spec in project.spec.deployment_specs:
        if spec.model == model:
            if spec.steps:
                steps = ", ".join(step.name for step in spec.steps)
                raise NotExportable(
                    f"deployment {spec.name}",
                    [
                        f"it runs pipeline steps ({steps}) before the model, which a bundle "
                        "does not carry"
                    ],
                )
            return spec.name
    return model
