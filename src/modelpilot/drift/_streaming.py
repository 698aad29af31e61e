"""``compare_stream``: data drift on data larger than memory, in two passes over Arrow batches.

The current data (and the reference, when it is a file) is read as a stream of record batches
(:mod:`modelpilot.drift._sources`) and never held whole. Pass 1 summarises each side
(:mod:`._scan`); pass 2 counts every value exactly into fine bins. PSI, Jensen-Shannon, total
variation and chi-square come from exact counts, so they equal the in-memory engine's figures
when the bins are the same; KS and Wasserstein come from the fine bins with a rigorous error
bound (:mod:`._binned`), or exactly when both sides fit under ``exact_max_rows``.

At millions of rows every p-value is tiny, so verdicts here compare an effect size with a
threshold (:data:`STREAM_THRESHOLDS`); p-values are still reported where computed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.drift._base import DriftMethod
from modelpilot.drift._binned import fine_edges, slot_counts
from modelpilot.drift._columns import MAX_DISCRETE_VALUES, ReferenceColumn
from modelpilot.drift._correction import adjust_p_values
from modelpilot.drift._methods import MAX_VALUES_AS_CATEGORIES, get_method
from modelpilot.drift._reference import DriftReference, FeatureList
from modelpilot.drift._report import DriftReport, FeatureDrift
from modelpilot.drift._scan import CategorySummary, NumericSummary, first_pass, second_pass
from modelpilot.drift._sources import DEFAULT_BATCH_ROWS, BatchSource, open_source
from modelpilot.drift._stream_feature import (
    Outcome,
    categories_outcome,
    continuous_outcome,
    exact_outcome,
    value_counts,
)
from modelpilot.drift._stream_inputs import (
    Summary,
    arrow_kinds,
    in_memory_reference,
    require_columns,
    summaries_in_memory,
)
from modelpilot.drift._values import FloatArray, IntArray
from modelpilot.errors import DataError, ModelpilotError

__all__ = ["STREAM_THRESHOLDS", "compare_stream"]

#: Effect-size thresholds of the out-of-core engine (the KS statistic for ``ks``, the total
#: variation distance for ``chi_square``): drift when the effect reaches them.
STREAM_THRESHOLDS = {
    "psi": 0.2,
    "jensen_shannon": 0.1,
    "total_variation": 0.1,
    "chi_square": 0.1,
    "ks": 0.1,
    "wasserstein": 0.1,
}
_CATEGORY_METHODS = ("chi_square", "total_variation")
OnBatch = Callable[[str, int], None]


def _choose(name: str, ref: Summary, given: str | DriftMethod | None) -> DriftMethod:
    if given is not None:
        method = get_method(given)
        if method.name not in STREAM_THRESHOLDS:
            raise DataError(
                f"method {method.name!r} needs every value in memory; the streaming engine "
                f"runs {', '.join(STREAM_THRESHOLDS)} (or use the in-memory engine)"
            )
        return method
    few = isinstance(ref, NumericSummary) and (
        ref.distinct is not None and len(ref.distinct) <= MAX_VALUES_AS_CATEGORIES
    )
    return get_method(
        "jensen_shannon" if isinstance(ref, CategorySummary) or few else "wasserstein"
    )


def _by_category(method: DriftMethod, ref: Summary, n_bins: int) -> bool:
    if isinstance(ref, CategorySummary):
        return True
    distinct = ref.distinct
    if method.name in _CATEGORY_METHODS:
        if distinct is None:
            raise DataError(
                f"a numeric feature with more than {MAX_DISCRETE_VALUES} distinct values cannot "
                f"be counted by category ({method.name}); use ks, wasserstein, psi or "
                "jensen_shannon"
            )
        return True
    return (
        method.name in ("psi", "jensen_shannon")
        and distinct is not None
        and (len(distinct) <= n_bins)
    )


def compare_stream(
    reference: str | Path | BatchSource | pd.DataFrame | Mapping[str, Any] | DriftReference,
    current: str | Path | BatchSource,
    *,
    features: FeatureList | None = None,
    methods: Mapping[str, str | DriftMethod] | None = None,
    thresholds: Mapping[str, float] | None = None,
    n_bins: int = 10,
    fine_bins: int = 2000,
    sample_size: int = 100_000,
    exact_max_rows: int = 1_000_000,
    top_k: int = 1000,
    max_categories: int = 100_000,
    dataset_threshold: float = 0.5,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    seed: int = 0,
    on_batch: OnBatch | None = None,
) -> DriftReport:
    """Compare current data with a reference without holding either in memory.

    Parameters
    ----------
    reference
        A file, glob, directory or ``s3://`` URL, a :class:`BatchSource` (both streamed), or a
        reference in memory as :func:`compare` takes it (DataFrame, profile, DriftReference).
    current
        A file, glob, directory or ``s3://`` URL, or a :class:`BatchSource`.
    methods, thresholds
        Per-feature method and effect-size threshold; defaults: Wasserstein (numeric) and
        Jensen-Shannon (categorical, and numeric with at most 5 values), thresholds
        :data:`STREAM_THRESHOLDS`.
    n_bins
        Reference-decile bins of PSI and Jensen-Shannon on numeric features.
    fine_bins
        Bins of the binned KS and Wasserstein (edges at pooled sample quantiles): more bins,
        smaller error bound, and the counting pass costs a little more.
    sample_size
        Rows of the uniform sample per side that places the bin edges.
    exact_max_rows
        A side with at most this many rows is kept in memory (8 bytes a numeric value); when
        both are, every statistic is the in-memory engine's (``exact=True``). 0 never keeps.
    top_k
        Categories compared one by one; the rest are counted together as ``__other__``.
    max_categories
        More distinct categories than this in one column is an error (memory bound).
    on_batch
        Called with the pass's label and the rows of every batch read (progress bars).

    Examples
    --------
    >>> import numpy as np, pyarrow as pa
    >>> from modelpilot.drift import GeneratedSource
    >>> def batches(shift):
    ...     rng = np.random.default_rng(int(shift * 10))
    ...     for _ in range(4):
    ...         yield pa.record_batch({"x": rng.normal(shift, size=5000)})
    >>> schema = pa.schema([("x", pa.float64())])
    >>> ref = GeneratedSource(lambda: batches(0.0), schema=schema)
    >>> cur = GeneratedSource(lambda: batches(0.5), schema=schema)
    >>> x = compare_stream(ref, cur, exact_max_rows=0).feature("x")
    >>> x.method, round(x.statistic, 2), x.exact, x.error_bound < 0.01, x.drifted
    ('wasserstein', 0.51, False, True, True)
    """
    if not (
        isinstance(fine_bins, int) and fine_bins >= 2 and isinstance(n_bins, int) and n_bins >= 2
    ):
        raise ModelpilotError(
            f"n_bins and fine_bins must be integers >= 2; got {n_bins}, {fine_bins}"
        )
    if not 0 < dataset_threshold <= 1:
        raise ModelpilotError(f"dataset_threshold must be in (0, 1], got {dataset_threshold!r}")

    def report(label: str) -> Callable[[int], None] | None:
        return None if on_batch is None else (lambda rows: on_batch(label, rows))

    def scan(source: BatchSource, side: str, side_seed: int) -> dict[str, Summary]:
        """Pass 1 over one side."""
        summaries, _ = first_pass(
            source.batches(list(kinds)),
            kinds,
            n_rows=source.count_rows(),
            sample_size=sample_size,
            exact_max_rows=exact_max_rows,
            max_categories=max_categories,
            seed=side_seed,
            side=f"{side} data",
            on_batch=report(f"{side}, pass 1"),
        )
        return summaries

    cur_source = open_source(current, batch_rows=batch_rows)
    ref_memory: DriftReference | None = None
    ref_source: BatchSource | None = None
    # The reference decides which columns are compared and their kinds, as in `compare`.
    if isinstance(reference, str | Path | BatchSource):
        ref_source = open_source(reference, batch_rows=batch_rows)
        kinds = arrow_kinds(ref_source.schema, features)
        require_columns(cur_source.schema, list(kinds), "current data")
        ref_summaries = scan(ref_source, "reference", seed)
    else:
        ref_memory = in_memory_reference(reference, features)
        kinds = {n: c.kind for n, c in ref_memory.columns.items()}
        require_columns(cur_source.schema, list(kinds), "current data")
        ref_summaries = summaries_in_memory(ref_memory, sample_size)
    cur_summaries = scan(cur_source, "current", seed + 1)
    chosen = {n: _choose(n, ref_summaries[n], (methods or {}).get(n)) for n in kinds}
    for name in methods or {}:
        if name not in kinds:
            raise DataError(f"methods names feature {name!r}, which is not compared")

    # Pass 2 edges: fine bins (continuous), or the reference's values (few-valued numeric
    # columns whose current side had too many values to track).
    edges: dict[str, FloatArray] = {}
    deciles: dict[str, tuple[FloatArray, bool]] = {}
    for name, method in chosen.items():
        ref, cur = ref_summaries[name], cur_summaries[name]
        if not isinstance(ref, NumericSummary) or not isinstance(cur, NumericSummary):
            continue
        if _by_category(method, ref, n_bins):
            if cur.distinct is None:
                edges[name] = np.array(sorted(ref.distinct or {}), dtype=np.float64)
            continue
        if ref.values is not None and cur.values is not None:
            continue
        ref_column = ref_memory.columns[name] if ref_memory is not None else None
        cuts, cuts_exact = _deciles(ref, ref_column, n_bins)
        deciles[name] = (cuts, cuts_exact)
        pooled = np.concatenate([ref.sample, cur.sample])
        low, high = min(ref.low, cur.low), max(ref.high, cur.high)
        edges[name] = np.unique(
            np.concatenate([fine_edges(pooled, n_bins=fine_bins, low=low, high=high), cuts])
        )
    cur_slots = (
        second_pass(cur_source.batches(list(edges)), edges, on_batch=report("current, pass 2"))
        if edges
        else {}
    )
    if ref_source is not None and edges:
        ref_slots = second_pass(
            ref_source.batches(list(edges)), edges, on_batch=report("reference, pass 2")
        )
    else:
        ref_slots = {n: _sorted_slots(ref_summaries[n], e) for n, e in edges.items()}

    outcomes: dict[str, Outcome] = {}
    for name, method in chosen.items():
        ref, cur = ref_summaries[name], cur_summaries[name]
        _check_empty(name, ref, cur)
        if isinstance(ref, CategorySummary) and isinstance(cur, CategorySummary):
            ref_column = ref_memory.columns[name] if ref_memory is not None else None
            outcomes[name] = categories_outcome(
                name, ref_column, ref.counts, cur.counts, method, top_k=top_k
            )
        elif isinstance(ref, NumericSummary) and isinstance(cur, NumericSummary):
            if _by_category(method, ref, n_bins):
                ref_values = np.array(sorted(ref.distinct or {}), dtype=np.float64)
                outcomes[name] = categories_outcome(
                    name,
                    None,
                    value_counts(ref, None, ref_values),
                    value_counts(cur, cur_slots.get(name), ref_values),
                    method,
                    top_k=top_k,
                )
            elif ref.values is not None and cur.values is not None:
                ref_column = (
                    ref_memory.columns[name]
                    if ref_memory is not None
                    else ReferenceColumn(
                        name=name,
                        kind="numeric",
                        n=ref.n,
                        n_missing=ref.n_missing,
                        values=ref.values,
                    )
                )
                outcomes[name] = exact_outcome(ref_column, cur.values, cur.n_missing, method)
            else:
                cuts, cuts_exact = deciles[name]
                outcomes[name] = continuous_outcome(
                    method,
                    edges=edges[name],
                    ref_slots=ref_slots[name],
                    cur_slots=cur_slots[name],
                    deciles=cuts,
                    deciles_exact=cuts_exact,
                    ref=ref,
                    cur=cur,
                )
        else:  # pragma: no cover - kinds come from one mapping
            raise DataError(f"feature {name!r} has different kinds on the two sides")
    return _report(
        outcomes,
        chosen,
        ref_summaries,
        cur_summaries,
        thresholds,
        dataset_threshold,
        "profile" if ref_memory is not None and ref_memory.source == "profile" else "data",
    )


def _deciles(
    ref: NumericSummary, column: ReferenceColumn | None, n_bins: int
) -> tuple[FloatArray, bool]:
    """PSI / Jensen-Shannon bin edges, and whether they are the in-memory engine's own."""
    if column is not None:
        return column.bins(n_bins)[0], True
    probs = np.arange(1, n_bins) / n_bins
    if ref.values is not None:
        return np.unique(np.quantile(ref.values, probs)), True
    if ref.sample.size == 0:
        return np.zeros(0), False
    return np.unique(np.quantile(ref.sample, probs)), ref.sample.size == ref.n


def _sorted_slots(summary: Summary, edges: FloatArray) -> IntArray:
    if not isinstance(summary, NumericSummary) or summary.values is None:  # pragma: no cover
        raise DataError("a reference in memory has its values")
    return slot_counts(summary.values, edges)


def _check_empty(name: str, ref: Summary, cur: Summary) -> None:
    for side, summary in (("reference", ref), ("current", cur)):
        if summary.n == 0:
            raise DataError(
                f"feature {name!r} has no values in the {side} data (all missing); "
                "leave it out or fix the data"
            )


def _report(
    outcomes: Mapping[str, Outcome],
    chosen: Mapping[str, DriftMethod],
    refs: Mapping[str, Summary],
    curs: Mapping[str, Summary],
    thresholds: Mapping[str, float] | None,
    dataset_threshold: float,
    source: str,
) -> DriftReport:
    tested = [n for n, o in outcomes.items() if o.result.p_value is not None]
    adjusted = dict(
        zip(
            tested,
            adjust_p_values([float(outcomes[n].result.p_value or 0) for n in tested]),
            strict=True,
        )
    )
    features = []
    for name, outcome in outcomes.items():
        method, result = chosen[name], outcome.result
        threshold = float((thresholds or {}).get(name, STREAM_THRESHOLDS[method.name]))
        if not threshold > 0:
            raise ModelpilotError(f"the threshold of {name!r} must be positive; got {threshold}")
        note = result.note
        bound = outcome.error_bound
        if bound and abs(result.effect_size - threshold) <= bound:
            note += "; the threshold lies within the error bound: use more fine_bins to decide"
        ref, cur = refs[name], curs[name]
        features.append(
            FeatureDrift(
                name=name,
                kind="categorical" if isinstance(ref, CategorySummary) else "numeric",
                method=method.name,
                statistic=result.statistic,
                p_value=result.p_value,
                threshold=threshold,
                drifted=bool(result.effect_size >= threshold),
                effect_size=result.effect_size,
                n_reference=ref.n,
                n_current=cur.n,
                summary=outcome.summary,
                p_value_adjusted=adjusted.get(name),
                n_missing_reference=ref.n_missing,
                n_missing_current=cur.n_missing,
                note=note.lstrip("; "),
                exact=outcome.exact,
                error_bound=bound,
            )
        )
    return DriftReport(
        features,
        dataset_threshold=float(dataset_threshold),
        correction="bh",
        effect_size_floor=0.0,
        reference_source="profile" if source == "profile" else "data",
        engine="stream",
    )
