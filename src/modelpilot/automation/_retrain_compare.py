"""A retrained version against production, offline, on the newest labelled rows.

Both models predict the same holdout (the newest labels, exported by the run): their key
metrics decide whether the candidate may be deployed, and two further measurements say what
change to expect of it once it serves: the share of rows on which both answer alike
(``agreement``) and the distance between their predictions (``prediction_shift``), as the
canary's proxy gates measure them. After a change of concept a good new model *must* answer
differently from the old one; the canary judges its proxies against these figures rather than
against thresholds meant for like-for-like replacements (``modelpilot.rollout._proxies``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelpilot.data import SchemaValidator, read_table
from modelpilot.errors import DataError
from modelpilot.registry import ModelRegistry, ModelVersion, align_labels, compute_metrics
from modelpilot.rollout import agreement_of, prediction_shift
from modelpilot.spec import METRICS, ProjectSpec

__all__ = ["compare_with_production"]


def compare_with_production(
    spec: ProjectSpec,
    registry: ModelRegistry,
    candidate: ModelVersion,
    production: ModelVersion,
    holdout: Path,
    *,
    source: str,
) -> dict[str, Any]:
    """Key metric by key metric, candidate against production on ``holdout``; whether the
    candidate is at least as good on every one (``better_or_equal``); and what the proxies
    should expect (``expected``: ``agreement`` and ``prediction_shift``, each with the rows
    it was measured on and ``source``, what measured it).
    """
    frame = read_table(holdout, types={f.name: f.type for f in production.features})
    if spec.target not in frame:
        raise DataError(f"{holdout}: the target column {spec.target!r} is missing")
    frame = frame[frame[spec.target].notna()].reset_index(drop=True)
    result = SchemaValidator(production.features).validate_frame(frame)
    rows = result.clean
    truth = frame[spec.target][result.valid].to_numpy()
    task = spec.task or "regression"
    answers, metrics = {}, {}
    for who, version in (("candidate", candidate), ("production", production)):
        runtime = registry.load(version, trust=True, force=True)
        answers[who] = runtime.predict(rows)
        if task != "regression" and runtime.classes is not None:
            labels = align_labels(truth, runtime.classes)
        else:
            labels = truth
        metrics[who] = compute_metrics(task, labels, answers[who])
    table, ok = [], True
    for key in spec.key_metrics:
        c, p = metrics["candidate"].get(key.name), metrics["production"].get(key.name)
        if c is None or p is None:
            continue
        better = c <= p if METRICS[key.name] == "lower" else c >= p
        ok = ok and better
        table.append(
            {
                "metric": key.name,
                "candidate": c,
                "production": p,
                "production_version": production.version,
            }
        )
    n = len(rows)
    expected: dict[str, Any] = {}
    if n:
        agree = float(agreement_of(answers["candidate"], answers["production"], task).mean())
        shift = prediction_shift(answers["candidate"], answers["production"], task)
        expected = {
            "agreement": {"value": agree, "rows": n, "source": source},
            "prediction_shift": {"value": shift, "rows": n, "source": source},
        }
    return {"metrics": table, "better_or_equal": ok, "rows": n, "expected": expected}
