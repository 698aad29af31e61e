"""The analysis of a rollout step: the candidate's window against the primary's, gate by gate.

Sources, all from the prediction log: the rows each version answered since the step began, the
mirrored rows (the other version scoring the same request, ``source="shadow"``, same id), and
labels from feedback. A gate whose sample is below ``min_samples`` is ``insufficient``: the step
waits for data rather than passing on too little of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from modelpilot.registry import compute_metrics
from modelpilot.rollout._sequential import msprt
from modelpilot.spec import GateSpec, KeyMetric

__all__ = ["GateResult", "StepWindow", "analyze", "compare_shadow"]


@dataclass(frozen=True)
class GateResult:
    metric: str
    status: str  # pass | fail | insufficient
    value: float | None
    threshold: float
    samples: int
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class StepWindow:
    """What the analysis reads: answered rows per version, and mirrored pairs."""

    candidate: pd.DataFrame
    primary: pd.DataFrame
    pairs: pd.DataFrame  # columns: id, candidate, primary (the two predictions of one request)


def _errors(frame: pd.DataFrame) -> np.ndarray:
    if "error" not in frame or frame.empty:
        return np.zeros(len(frame), dtype=bool)
    return frame["error"].notna().to_numpy()


def _ok_predictions(frame: pd.DataFrame) -> pd.Series:
    mask = ~_errors(frame)
    return frame["prediction"][mask] if "prediction" in frame else pd.Series(dtype=float)


def _is_classification(task: str | None) -> bool:
    return task in ("binary", "multiclass")


def _shift(a: pd.Series, b: pd.Series, task: str | None) -> float:
    if _is_classification(task):
        shares_a = a.astype(str).value_counts(normalize=True)
        shares_b = b.astype(str).value_counts(normalize=True)
        keys = shares_a.index.union(shares_b.index)
        return float(
            0.5
            * np.abs(
                shares_a.reindex(keys, fill_value=0) - shares_b.reindex(keys, fill_value=0)
            ).sum()
        )
    return float(stats.ks_2samp(a.astype(float), b.astype(float)).statistic)


def _agree(candidate: pd.Series, primary: pd.Series, task: str | None) -> np.ndarray:
    if _is_classification(task):
        same: np.ndarray = candidate.astype(str).to_numpy() == primary.astype(str).to_numpy()
        return same
    c = candidate.astype(float).to_numpy()
    p = primary.astype(float).to_numpy()
    close: np.ndarray = np.abs(c - p) <= 0.1 * np.maximum(np.abs(p), 1e-12)
    return close


def _loss(frame: pd.DataFrame, task: str | None) -> np.ndarray:
    loss: np.ndarray
    if _is_classification(task):
        loss = (
            frame["prediction"].astype(str).to_numpy() != frame["label"].astype(str).to_numpy()
        ).astype(float)
    else:
        loss = np.abs(
            frame["prediction"].astype(float).to_numpy() - frame["label"].astype(float).to_numpy()
        )
    return loss


def analyze(
    window: StepWindow,
    gates: Sequence[GateSpec],
    *,
    task: str | None,
    key_metrics: Sequence[KeyMetric] = (),
    labeled: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> list[GateResult]:
    """Evaluate every gate on one step's window."""
    results = []
    cand, prim = window.candidate, window.primary
    for gate in gates:
        need = gate.min_samples
        if gate.metric == "error_rate":
            n = len(cand)
            if n < need:
                results.append(
                    GateResult(
                        gate.metric,
                        "insufficient",
                        None,
                        gate.threshold,
                        n,
                        f"{n} of {need} candidate requests",
                    )
                )
                continue
            c_rate = float(_errors(cand).mean())
            p_rate = float(_errors(prim).mean()) if len(prim) else 0.0
            increase = c_rate - p_rate
            status = "pass" if increase <= gate.threshold else "fail"
            results.append(
                GateResult(
                    gate.metric,
                    status,
                    increase,
                    gate.threshold,
                    n,
                    f"candidate errors {c_rate:.1%} vs primary {p_rate:.1%}",
                )
            )
        elif gate.metric == "latency_p99":
            c_lat = cand["latency_ms"].dropna().to_numpy(float) if len(cand) else np.zeros(0)
            p_lat = prim["latency_ms"].dropna().to_numpy(float) if len(prim) else np.zeros(0)
            n = min(len(c_lat), len(p_lat))
            if n < need:
                results.append(
                    GateResult(
                        gate.metric,
                        "insufficient",
                        None,
                        gate.threshold,
                        n,
                        f"{len(c_lat)} candidate / {len(p_lat)} primary latencies of {need}",
                    )
                )
                continue
            c99, p99 = float(np.percentile(c_lat, 99)), float(np.percentile(p_lat, 99))
            ratio = c99 / max(p99, 1e-6)
            slow = ratio > gate.threshold and c99 - p99 > gate.slack
            results.append(
                GateResult(
                    gate.metric,
                    "fail" if slow else "pass",
                    ratio,
                    gate.threshold,
                    n,
                    f"p99 {c99:.1f} ms vs {p99:.1f} ms",
                )
            )
        elif gate.metric == "prediction_shift":
            # Paired when the primary also scored the candidate's requests: the same inputs, so
            # a shift is the model's, not a different slice of users.
            if len(window.pairs) >= need:
                a, b, how = window.pairs["candidate"], window.pairs["primary"], "same requests"
            else:
                a, b, how = _ok_predictions(cand), _ok_predictions(prim), "all requests"
            n = min(len(a), len(b))
            if n < need:
                results.append(
                    GateResult(
                        gate.metric,
                        "insufficient",
                        None,
                        gate.threshold,
                        n,
                        f"{n} of {need} predictions",
                    )
                )
                continue
            distance = _shift(a, b, task)
            name = "total variation" if _is_classification(task) else "KS statistic"
            results.append(
                GateResult(
                    gate.metric,
                    "pass" if distance <= gate.threshold else "fail",
                    distance,
                    gate.threshold,
                    n,
                    f"{name} ({how})",
                )
            )
        elif gate.metric == "agreement":
            n = len(window.pairs)
            if n < need:
                results.append(
                    GateResult(
                        gate.metric,
                        "insufficient",
                        None,
                        gate.threshold,
                        n,
                        f"{n} of {need} mirrored requests",
                    )
                )
                continue
            rate = float(_agree(window.pairs["candidate"], window.pairs["primary"], task).mean())
            results.append(
                GateResult(
                    gate.metric,
                    "pass" if rate >= gate.threshold else "fail",
                    rate,
                    gate.threshold,
                    n,
                    "share of identical answers"
                    if _is_classification(task)
                    else "share within 10%",
                )
            )
        elif gate.metric == "key_metric":
            results.append(_key_metric_gate(gate, task, key_metrics, labeled))
    return results


def _key_metric_gate(
    gate: GateSpec,
    task: str | None,
    key_metrics: Sequence[KeyMetric],
    labeled: tuple[pd.DataFrame, pd.DataFrame] | None,
) -> GateResult:
    if labeled is None:
        return GateResult(gate.metric, "insufficient", None, gate.threshold, 0, "no labels yet")
    cand, prim = labeled
    n = len(cand)
    if n < gate.min_samples or len(prim) < 2:
        return GateResult(
            gate.metric,
            "insufficient",
            None,
            gate.threshold,
            n,
            f"{n} of {gate.min_samples} labelled candidate predictions",
        )
    test = msprt(_loss(prim, task), _loss(cand, task))
    values = compute_metrics(
        task or "regression", cand["label"].to_numpy(), cand["prediction"].to_numpy()
    )
    missed = [
        str(k)
        for k in key_metrics
        if values.get(k.name) is not None and not k.passes(float(values[k.name] or 0))
    ]
    worse = test.worse(gate.threshold)
    detail = f"loss difference {test.difference:+.4g} (always-valid p = {test.p_value:.3g})" + (
        f"; misses {', '.join(missed)}" if missed else ""
    )
    status = "fail" if worse or missed else "pass"
    return GateResult(gate.metric, status, test.p_value, gate.threshold, n, detail)


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
    errors = _errors(shadow)
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
    if _is_classification(task):
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
            _agree(pairs["prediction_candidate"], pairs["prediction_primary"], task).mean()
        )
    return out
