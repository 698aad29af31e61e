"""The analysis of a rollout step: the candidate's window against the primary's, gate by gate.

Sources, all from the prediction log: the rows each version answered since the step began, the
mirrored rows (the other version scoring the same request, ``source="shadow"``, same id), and
labels from feedback. A gate whose sample is below ``min_samples`` is ``insufficient``: the step
waits for data rather than passing on too little of it.

Gates come in three kinds (:data:`GATE_KINDS`): *guards* (error rate, latency) veto whatever
else is known; the *evidence* of labels (``key_metric``, the always-valid sequential test) ranks
above the *proxies* (``agreement``, ``prediction_shift``, ``estimated_key_metric``,
``_proxies.py``) that stand in for quality while labels are missing. ``_ranking.py`` turns the
results into one decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.registry import compute_metrics
from modelpilot.rollout._measures import (
    GATE_KINDS,
    GateResult,
    StepWindow,
    agreement_of,
    insufficient,
    is_classification,
    loss_of,
    row_errors,
)
from modelpilot.rollout._proxies import agreement_gate, estimate_gate, shift_gate
from modelpilot.rollout._sequential import msprt
from modelpilot.spec import GateSpec, KeyMetric

__all__ = ["GATE_KINDS", "GateResult", "StepWindow", "analyze", "compare_shadow"]


def analyze(
    window: StepWindow,
    gates: Sequence[GateSpec],
    *,
    task: str | None,
    key_metrics: Sequence[KeyMetric] = (),
    labeled: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    expected: Mapping[str, Any] | None = None,
    estimators: tuple[Any, Any] | None = None,
) -> list[GateResult]:
    """Evaluate every gate on one step's window.

    ``expected``: what a retraining run measured offline (``agreement``, ``prediction_shift``,
    each ``{"value": v, "rows": n}``), so that those proxies judge against it rather than
    against thresholds meant for like-for-like replacements. ``estimators``: the candidate's
    and the primary's performance estimators (``estimated_key_metric``), or None.
    """
    results = []
    for gate in gates:
        if gate.metric == "error_rate":
            results.append(_error_gate(gate, window))
        elif gate.metric == "latency_p99":
            results.append(_latency_gate(gate, window))
        elif gate.metric == "prediction_shift":
            results.append(shift_gate(gate, window, task, (expected or {}).get(gate.metric)))
        elif gate.metric == "agreement":
            results.append(agreement_gate(gate, window, task, (expected or {}).get(gate.metric)))
        elif gate.metric == "estimated_key_metric":
            results.append(estimate_gate(gate, window, estimators))
        elif gate.metric == "key_metric":
            results.append(_key_metric_gate(gate, task, key_metrics, labeled))
    return results


def _error_gate(gate: GateSpec, window: StepWindow) -> GateResult:
    cand, prim = window.candidate, window.primary
    n = len(cand)
    if n < gate.min_samples:
        return insufficient(gate, n, f"{n} of {gate.min_samples} candidate requests")
    c_rate = float(row_errors(cand).mean())
    p_rate = float(row_errors(prim).mean()) if len(prim) else 0.0
    increase = c_rate - p_rate
    return GateResult(
        gate.metric,
        "pass" if increase <= gate.threshold else "fail",
        increase,
        gate.threshold,
        n,
        f"candidate errors {c_rate:.1%} vs primary {p_rate:.1%}",
        "guard",
    )


def _latency_gate(gate: GateSpec, window: StepWindow) -> GateResult:
    cand, prim = window.candidate, window.primary
    c_lat = cand["latency_ms"].dropna().to_numpy(float) if len(cand) else np.zeros(0)
    p_lat = prim["latency_ms"].dropna().to_numpy(float) if len(prim) else np.zeros(0)
    n = min(len(c_lat), len(p_lat))
    if n < gate.min_samples:
        return insufficient(
            gate,
            n,
            f"{len(c_lat)} candidate / {len(p_lat)} primary latencies of {gate.min_samples}",
        )
    c99, p99 = float(np.percentile(c_lat, 99)), float(np.percentile(p_lat, 99))
    ratio = c99 / max(p99, 1e-6)
    slow = ratio > gate.threshold and c99 - p99 > gate.slack
    return GateResult(
        gate.metric,
        "fail" if slow else "pass",
        ratio,
        gate.threshold,
        n,
        f"p99 {c99:.1f} ms vs {p99:.1f} ms",
        "guard",
    )


def _key_metric_gate(
    gate: GateSpec,
    task: str | None,
    key_metrics: Sequence[KeyMetric],
    labeled: tuple[pd.DataFrame, pd.DataFrame] | None,
) -> GateResult:
    if labeled is None:
        return insufficient(gate, 0, "no labels yet")
    cand, prim = labeled
    n = len(cand)
    if n < gate.min_samples or len(prim) < 2:
        return insufficient(gate, n, f"{n} of {gate.min_samples} labelled candidate predictions")
    test = msprt(loss_of(prim, task), loss_of(cand, task))
    missed = _missed(task, key_metrics, cand)
    # A target the primary misses as well on its own labels says nothing against the
    # candidate: after a change of concept both may miss it, and the candidate less.
    missed = [m for m in missed if m not in _missed(task, key_metrics, prim)]
    detail = f"loss difference {test.difference:+.4g} (always-valid p = {test.p_value:.3g})"
    if test.worse(gate.threshold):
        evidence = "worse"
    elif test.better(gate.threshold):
        evidence = "better"
    elif missed:
        evidence = "misses_target"
    else:
        evidence = "inconclusive"
    if missed:
        detail += f"; misses {', '.join(missed)}"
        if evidence == "better":
            detail += ", better than the primary all the same"
    status = "fail" if evidence in ("worse", "misses_target") else "pass"
    return GateResult(
        gate.metric, status, test.p_value, gate.threshold, n, detail, "evidence", evidence
    )


def _missed(task: str | None, key_metrics: Sequence[KeyMetric], frame: pd.DataFrame) -> list[str]:
    """The key metrics whose target the labelled rows of ``frame`` miss."""
    if len(frame) < 2:
        return []
    truth, predicted = frame["label"].to_numpy(), frame["prediction"].to_numpy()
    if is_classification(task):  # labels keep their JSON type: compare as class names
        truth, predicted = truth.astype(str), predicted.astype(str)
    values = compute_metrics(task or "regression", truth, predicted)
    return [
        str(k)
        for k in key_metrics
        if values.get(k.name) is not None and not k.passes(float(values[k.name] or 0))
    ]


def compare_shadow(
    primary: pd.DataFrame, shadow: pd.DataFrame, *, task: str | None
) -> dict[str, Any]:
    """Shadow mode's report: agreement / difference percentiles, candidate errors and latency.

    ``compared`` counts the mirrored predictions set beside the primary's answer to the same
    request (the candidate's errors are not compared); ``agreement`` is the share of them
    that agree: the same class, or for regression within 10% of the primary's prediction.
    """
    out: dict[str, Any] = {"requests": len(primary), "mirrored": len(shadow), "compared": 0}
    if shadow.empty or primary.empty:
        return out
    errors = row_errors(shadow)
    out["candidate_error_rate"] = float(errors.mean())
    latency = shadow["latency_ms"].dropna().to_numpy(float)
    if len(latency):
        out["candidate_latency_p50_ms"] = float(np.percentile(latency, 50))
        out["candidate_latency_p99_ms"] = float(np.percentile(latency, 99))
    p_latency = primary["latency_ms"].dropna().to_numpy(float)
    if len(p_latency):
        out["primary_latency_p50_ms"] = float(np.percentile(p_latency, 50))
        out["primary_latency_p99_ms"] = float(np.percentile(p_latency, 99))
    ok = shadow[~errors][["id", "prediction"]]
    pairs = ok.merge(primary[["id", "prediction"]], on="id", suffixes=("_candidate", "_primary"))
    out["compared"] = len(pairs)
    if pairs.empty:
        return out
    if is_classification(task):
        out["agreement"] = float(
            (
                pairs["prediction_candidate"].astype(str) == pairs["prediction_primary"].astype(str)
            ).mean()
        )
    else:
        diff = np.abs(
            pairs["prediction_candidate"].astype(float) - pairs["prediction_primary"].astype(float)
        )
        out["abs_diff_p50"] = float(np.percentile(diff, 50))
        out["abs_diff_p90"] = float(np.percentile(diff, 90))
        out["abs_diff_p99"] = float(np.percentile(diff, 99))
        out["agreement"] = float(
            agreement_of(pairs["prediction_candidate"], pairs["prediction_primary"], task).mean()
        )
    return out
