"""One feature's drift in the out-of-core engine, from the summaries of the two passes.

Three routes, chosen by the method and the data:

* exact: both sides' values were kept (each side at most ``exact_max_rows`` rows, or the
  reference was given in memory) — the in-memory method runs on them, ``exact=True``;
* categories: categorical features, and numeric ones with few distinct values under a
  categorical method — exact counts through the in-memory method (top-K plus "other");
* binned: PSI / Jensen-Shannon on the reference-decile bins (exact counts; ``exact=True`` when
  the deciles are the reference's own, as with a reference in memory), KS / Wasserstein on the
  fine bins with the bound of ``_binned``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy.spatial import distance

from modelpilot.drift._base import DriftMethod, MethodResult
from modelpilot.drift._binned import binned_ks, binned_wasserstein
from modelpilot.drift._columns import OTHER, CurrentColumn, ReferenceColumn
from modelpilot.drift._feature_drift import DistributionSummary, summarize
from modelpilot.drift._ks import ks_p_value
from modelpilot.drift._psi import psi
from modelpilot.drift._scan import CategorySummary, NumericSummary
from modelpilot.drift._values import FloatArray, IntArray

__all__ = ["Outcome", "categories_outcome", "continuous_outcome", "exact_outcome"]

#: Histogram bins of a binned feature's plotting summary.
N_PLOT_BINS = 24


@dataclass(frozen=True)
class Outcome:
    """A method's result on one feature, with what the out-of-core engine adds."""

    result: MethodResult
    summary: DistributionSummary
    exact: bool
    error_bound: float | None


def exact_outcome(
    ref: ReferenceColumn, values: FloatArray, n_missing: int, method: DriftMethod
) -> Outcome:
    """Both sides in memory: the in-memory method, to the last digit."""
    cur = CurrentColumn.from_sorted(values, n_missing=n_missing)
    return Outcome(method.compare(ref, cur), summarize(ref, cur), True, 0.0)


def categories_outcome(
    name: str,
    ref: ReferenceColumn | None,
    ref_counts: dict[str, int],
    cur_counts: dict[str, int],
    method: DriftMethod,
    *,
    top_k: int,
) -> Outcome:
    """Exact counts of both sides through the in-memory method; beyond ``top_k`` categories
    (by the larger of the two shares) the rest are counted together as ``__other__``."""
    labels = list(dict.fromkeys([*ref_counts, *cur_counts]))
    note = ""
    if len(labels) > top_k:
        n_ref, n_cur = max(sum(ref_counts.values()), 1), max(sum(cur_counts.values()), 1)
        share = [max(ref_counts.get(k, 0) / n_ref, cur_counts.get(k, 0) / n_cur) for k in labels]
        order = np.argsort(-np.asarray(share), kind="stable")
        kept = {labels[i] for i in order[: top_k - 1]}
        ref_counts, cur_counts = _lump(ref_counts, kept), _lump(cur_counts, kept)
        note = f"{len(labels) - len(kept)} categories beyond the top {top_k - 1} counted as other"
    if ref is None or ref.kind != "categorical" or note:
        ref = ReferenceColumn(
            name=name,
            kind="categorical",
            n=sum(ref_counts.values()),
            n_missing=ref.n_missing if ref is not None else 0,
            categories=list(ref_counts),
            counts=np.array(list(ref_counts.values()), dtype=np.int64),
        )
    cur = CurrentColumn(
        kind="categorical",
        n=sum(cur_counts.values()),
        categories=list(cur_counts),
        counts=np.array(list(cur_counts.values()), dtype=np.int64),
    )
    result = method.compare(ref, cur)
    if note:
        result = MethodResult(result.statistic, result.p_value, result.effect_size, note)
    return Outcome(result, summarize(ref, cur), not note, 0.0 if not note else None)


def _lump(counts: dict[str, int], kept: set[str]) -> dict[str, int]:
    out = {k: v for k, v in counts.items() if k in kept}
    out[OTHER] = sum(v for k, v in counts.items() if k not in kept)
    return out


def value_counts(
    summary: NumericSummary, slots: IntArray | None, ref_values: FloatArray
) -> dict[str, int]:
    """Counts per value of a few-valued numeric column, labelled as the in-memory engine does.

    ``slots`` (pass 2 against the reference's values) is used when this side had too many
    distinct values to track: values the reference never had are then counted together.
    """
    distinct = summary.distinct_arrays()
    if distinct is not None:
        return {
            f"{v:g}": int(c)
            for v, c in zip(distinct[0].tolist(), distinct[1].tolist(), strict=True)
        }
    if slots is None:  # pragma: no cover - the engine always counts such a column in pass 2
        raise ValueError("pass 2 counts are missing")
    on_values = slots[1::2]
    out = {f"{v:g}": int(c) for v, c in zip(ref_values.tolist(), on_values.tolist(), strict=True)}
    out[OTHER] = int(slots.sum() - on_values.sum())
    return out


def _left_counts(slots: IntArray, edges: FloatArray, at: FloatArray) -> IntArray:
    """How many values lie below each of ``at`` (all of them among ``edges``)."""
    below = np.cumsum(slots)[0::2][: edges.size]  # slots 0..2i lie below edge i
    return below[np.searchsorted(edges, at)]


def _bin_shares(slots: IntArray, edges: FloatArray, cuts: FloatArray) -> FloatArray:
    """Shares in (-inf, c1), [c1, c2), ..., [ck, inf) — ``bin_counts``' bins — from slots."""
    total = int(slots.sum())
    counts = np.diff(np.concatenate(([0], _left_counts(slots, edges, cuts), [total])))
    return counts / total if total else counts.astype(np.float64)


def continuous_outcome(
    method: DriftMethod,
    *,
    edges: FloatArray,
    ref_slots: IntArray,
    cur_slots: IntArray,
    deciles: FloatArray,
    deciles_exact: bool,
    ref: NumericSummary,
    cur: NumericSummary,
) -> Outcome:
    """Binned methods on the fine-bin counts of both sides."""
    summary = _histogram(edges, ref_slots, cur_slots)
    if method.name in ("psi", "jensen_shannon"):
        p, q = _bin_shares(ref_slots, edges, deciles), _bin_shares(cur_slots, edges, deciles)
        statistic = psi(p, q) if method.name == "psi" else float(distance.jensenshannon(p, q))
        note = "" if deciles_exact else "bins cut at the deciles of a sample of the reference"
        result = MethodResult(statistic, None, statistic, note)
        return Outcome(result, summary, deciles_exact, 0.0 if deciles_exact else None)
    if method.name == "ks":
        estimate = binned_ks(ref_slots, cur_slots)
        p_value, _ = ks_p_value(estimate.statistic, ref.n, cur.n)
        note = f"binned KS: within {estimate.error_bound:.2g} of the exact statistic"
        result = MethodResult(estimate.statistic, p_value, estimate.statistic, note)
        return Outcome(result, summary, False, estimate.error_bound)
    estimate = binned_wasserstein(ref_slots, cur_slots, edges)
    scale, note = ref.std, "binned Wasserstein"
    if scale <= 0:
        scale, note = 1.0, "binned Wasserstein; the reference is constant: not normed"
    statistic = estimate.statistic / scale
    result = MethodResult(statistic, None, statistic, note)
    return Outcome(result, summary, False, estimate.error_bound / scale)


def _histogram(edges: FloatArray, ref_slots: IntArray, cur_slots: IntArray) -> DistributionSummary:
    picked = edges[np.unique(np.linspace(0, edges.size - 1, N_PLOT_BINS + 1).astype(int))]
    if picked.size < 2:  # one value on both sides
        picked = np.array([edges[0] - 0.5, edges[0] + 0.5])
    inner = picked[1:-1]
    p = _bin_shares(ref_slots, edges, inner)
    q = _bin_shares(cur_slots, edges, inner)
    labels = [f"{a:.4g}..{b:.4g}" for a, b in pairwise(picked)]
    return DistributionSummary(
        "histogram",
        labels,
        [round(float(v), 6) for v in p],
        [round(float(v), 6) for v in q],
        [float(e) for e in picked],
    )


def as_category_summary(summary: NumericSummary | CategorySummary) -> CategorySummary:
    """The summary of a column the engine counts by category."""
    if isinstance(summary, CategorySummary):
        return summary
    raise TypeError("a numeric summary has no category counts")  # pragma: no cover
