"""Every data-drift method: equal to scipy's own function to 1e-9, and one conformance suite."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial import distance

from modelpilot.drift import (
    METHODS,
    AndersonDarlingTest,
    ChiSquareTest,
    CramerVonMisesTest,
    CurrentColumn,
    JensenShannonDistance,
    KSTest,
    MethodResult,
    PopulationStabilityIndex,
    ReferenceColumn,
    TotalVariationDistance,
    WassersteinDistance,
    get_method,
)
from modelpilot.errors import DataError, ModelpilotError

TOLERANCE = {"rel": 1e-9, "abs": 1e-12}

# (reference size, current size, shift): equal and unequal sizes, tiny samples (scipy's exact
# branches), and more than 10,000 values (KS switches to the asymptotic distribution).
SIZES = [(12, 9, 0.8), (400, 300, 0.0), (1000, 1000, 0.15), (600, 1500, 0.3), (12_000, 9_000, 0.03)]


def _samples(n: int, m: int, shift: float, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + n + m)
    return rng.normal(size=n), rng.normal(shift, 1.0, size=m)


def _tied(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 8, 700).astype(float), rng.integers(0, 9, 500).astype(float)


@pytest.mark.parametrize(("n", "m", "shift"), SIZES)
def test_ks_equals_scipy(n: int, m: int, shift: float) -> None:
    ref, cur = _samples(n, m, shift)
    ours = KSTest().compare(ReferenceColumn.from_values(ref), cur)
    theirs = stats.ks_2samp(ref, cur)
    assert ours.statistic == pytest.approx(theirs.statistic, **TOLERANCE)
    assert ours.p_value == pytest.approx(theirs.pvalue, **TOLERANCE)
    assert ours.effect_size == ours.statistic


def test_ks_equals_scipy_with_ties() -> None:
    ref, cur = _tied()
    ours = KSTest().compare(ReferenceColumn.from_values(ref), cur)
    theirs = stats.ks_2samp(ref, cur)
    assert (ours.statistic, ours.p_value) == pytest.approx((theirs.statistic, theirs.pvalue))


@pytest.mark.parametrize(("n", "m", "shift"), SIZES)
def test_wasserstein_equals_scipy_normed_by_reference_std(n: int, m: int, shift: float) -> None:
    ref, cur = _samples(n, m, shift)
    ours = WassersteinDistance().compare(ReferenceColumn.from_values(ref), cur)
    expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert ours.statistic == pytest.approx(expected, **TOLERANCE)
    assert ours.p_value is None


def test_wasserstein_equals_scipy_with_ties_and_coprime_sizes() -> None:
    ref, cur = _tied()
    ours = WassersteinDistance().compare(ReferenceColumn.from_values(ref[:697]), cur[:499])
    expected = stats.wasserstein_distance(ref[:697], cur[:499]) / np.std(ref[:697])
    assert ours.statistic == pytest.approx(expected, **TOLERANCE)


@pytest.mark.parametrize(("n", "m", "shift"), SIZES)
def test_cramer_von_mises_equals_scipy_without_ties(n: int, m: int, shift: float) -> None:
    ref, cur = _samples(n, m, shift)
    ours = CramerVonMisesTest().compare(ReferenceColumn.from_values(ref), cur)
    theirs = stats.cramervonmises_2samp(ref, cur)
    assert ours.statistic == pytest.approx(theirs.statistic, **TOLERANCE)
    assert ours.p_value == pytest.approx(theirs.pvalue, **TOLERANCE)
    assert ours.note == ""


def test_cramer_von_mises_with_ties_uses_the_definition_where_scipy_breaks() -> None:
    # Two samples of the same 12-valued distribution, of unequal sizes: scipy's rank formula
    # calls them different every time; the ECDF definition does not.
    rng = np.random.default_rng(3)
    scipy_alarms = ours_alarms = 0
    for _ in range(20):
        ref, cur = rng.integers(0, 12, 2000).astype(float), rng.integers(0, 12, 500).astype(float)
        scipy_alarms += stats.cramervonmises_2samp(ref, cur).pvalue < 0.05
        result = CramerVonMisesTest().compare(ReferenceColumn.from_values(ref), cur)
        ours_alarms += result.p_value < 0.05
        pooled = np.concatenate([ref, cur])
        gap = (
            np.searchsorted(np.sort(ref), pooled, "right") / ref.size
            - np.searchsorted(np.sort(cur), pooled, "right") / cur.size
        )
        definition = ref.size * cur.size / pooled.size**2 * np.sum(gap**2)
        assert result.statistic == pytest.approx(definition, **TOLERANCE)
        assert "tied values" in result.note
    assert scipy_alarms == 20
    assert ours_alarms <= 3


@pytest.mark.parametrize(("n", "m", "shift"), [*SIZES, (700, 500, "ties")])
def test_anderson_darling_equals_scipy(n: int, m: int, shift: float | str) -> None:
    ref, cur = _tied() if shift == "ties" else _samples(n, m, float(shift))
    ours = AndersonDarlingTest().compare(ReferenceColumn.from_values(ref), cur)
    with warnings.catch_warnings():  # scipy warns when it caps or floors the p-value
        warnings.simplefilter("ignore", UserWarning)
        theirs = stats.anderson_ksamp([ref, cur], variant="midrank")
    assert ours.statistic == pytest.approx(theirs.statistic, **TOLERANCE)
    assert ours.p_value == pytest.approx(theirs.pvalue, **TOLERANCE)
    if ours.p_value in (0.25, 0.001):
        assert "p-value" in ours.note


def _counts(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = sorted(set(ref) | set(cur))
    a, b = pd.Series(ref).value_counts(), pd.Series(cur).value_counts()
    return (
        np.array([a.get(k, 0) for k in keys], dtype=float),
        np.array([b.get(k, 0) for k in keys], dtype=float),
    )


def _categories(n: int, m: int, *, seed: int = 0, k: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.array([f"c{i}" for i in range(k + 1)])
    p = np.linspace(1, 2, k) / np.linspace(1, 2, k).sum()
    q = np.r_[p[:-1] * 0.9, 0.0]
    q = np.r_[q, 1 - q.sum()]  # one category disappears, a new one appears
    return labels[rng.choice(k, n, p=p)], labels[rng.choice(k + 1, m, p=q)]


@pytest.mark.parametrize(("n", "m"), [(40, 25), (800, 600), (5000, 7000)])
def test_chi_square_equals_chi2_contingency(n: int, m: int) -> None:
    ref, cur = _categories(n, m)
    ours = ChiSquareTest().compare(ReferenceColumn.from_values(ref), cur)
    a, b = _counts(ref, cur)
    theirs = stats.chi2_contingency([a, b])
    assert ours.statistic == pytest.approx(theirs.statistic, **TOLERANCE)
    assert ours.p_value == pytest.approx(theirs.pvalue, **TOLERANCE)
    assert ours.effect_size == pytest.approx(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


def test_chi_square_two_categories_applies_yates_like_scipy() -> None:
    ref = np.array(["yes"] * 130 + ["no"] * 70)
    cur = np.array(["yes"] * 100 + ["no"] * 90)
    ours = ChiSquareTest().compare(ReferenceColumn.from_values(ref), cur)
    theirs = stats.chi2_contingency(_counts(ref, cur))
    assert (ours.statistic, ours.p_value) == pytest.approx(
        (theirs.statistic, theirs.pvalue), **TOLERANCE
    )


def test_chi_square_on_an_integer_feature_counts_values() -> None:
    ref, cur = _tied()
    ours = ChiSquareTest().compare(ReferenceColumn.from_values(ref), cur)
    theirs = stats.chi2_contingency(_counts(ref, cur))
    assert (ours.statistic, ours.p_value) == pytest.approx(
        (theirs.statistic, theirs.pvalue), **TOLERANCE
    )


def _decile_shares(ref: np.ndarray, cur: np.ndarray, n_bins: int) -> tuple[np.ndarray, ...]:
    """The documented bins: reference quantiles at k/n_bins, open outer bins."""
    edges = np.r_[-np.inf, np.unique(np.quantile(ref, np.arange(1, n_bins) / n_bins)), np.inf]
    return (np.histogram(ref, edges)[0] / ref.size, np.histogram(cur, edges)[0] / cur.size)


@pytest.mark.parametrize(("n", "m", "shift"), SIZES[1:])
def test_jensen_shannon_equals_scipy_on_reference_decile_bins(n: int, m: int, shift: float) -> None:
    ref, cur = _samples(n, m, shift)
    ours = JensenShannonDistance().compare(ReferenceColumn.from_values(ref), cur)
    expected = distance.jensenshannon(*_decile_shares(ref, cur, 10))
    assert ours.statistic == pytest.approx(expected, **TOLERANCE)


def test_jensen_shannon_equals_scipy_on_categories() -> None:
    ref, cur = _categories(900, 700)
    ours = JensenShannonDistance().compare(ReferenceColumn.from_values(ref), cur)
    a, b = _counts(ref, cur)
    assert ours.statistic == pytest.approx(
        distance.jensenshannon(a / a.sum(), b / b.sum()), **TOLERANCE
    )


def _psi(p: np.ndarray, q: np.ndarray) -> float:
    p, q = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
    return float(np.sum((q - p) * np.log(q / p)))


@pytest.mark.parametrize("n_bins", [10, 20])
def test_psi_equals_its_formula_on_reference_quantile_bins(n_bins: int) -> None:
    ref, cur = _samples(3000, 2000, 0.25)
    ours = PopulationStabilityIndex(n_bins=n_bins).compare(ReferenceColumn.from_values(ref), cur)
    assert ours.statistic == pytest.approx(_psi(*_decile_shares(ref, cur, n_bins)), **TOLERANCE)


def test_psi_and_total_variation_on_categories() -> None:
    ref, cur = _categories(900, 700)
    a, b = _counts(ref, cur)
    p, q = a / a.sum(), b / b.sum()
    column = ReferenceColumn.from_values(ref)
    assert PopulationStabilityIndex().compare(column, cur).statistic == pytest.approx(_psi(p, q))
    assert TotalVariationDistance().compare(column, cur).statistic == pytest.approx(
        0.5 * np.abs(p - q).sum(), **TOLERANCE
    )


def test_binned_methods_give_a_feature_with_few_values_one_bin_per_value() -> None:
    ref, cur = _tied()
    a, b = _counts(ref, cur)
    result = JensenShannonDistance().compare(ReferenceColumn.from_values(ref), cur)
    assert result.statistic == pytest.approx(distance.jensenshannon(a / a.sum(), b / b.sum()))


# ---- one conformance suite for every method ------------------------------------------------
def _data_for(method_name: str, *, shift: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    if "categorical" in METHODS[method_name].kinds:
        labels = np.array(list("abcd"))
        p = [0.4, 0.3, 0.2, 0.1]
        q = [0.1, 0.2, 0.3, 0.4] if shift else p
        return labels[rng.choice(4, 3000, p=p)], labels[rng.choice(4, 2000, p=q)]
    return rng.normal(size=3000), rng.normal(shift, 1.0, size=2000)


@pytest.mark.parametrize("name", list(METHODS))
class TestEveryMethod:
    def test_declares_the_protocol(self, name: str) -> None:
        method = get_method(name)
        assert method.name == name
        assert method.output in ("p_value", "distance")
        assert 0 < method.default_threshold < 1
        assert {"numeric", "categorical"} & set(method.kinds)

    def test_same_result_from_values_or_a_prepared_column(self, name: str) -> None:
        ref, cur = _data_for(name, shift=0.5)
        column = ReferenceColumn.from_values(ref)
        method = get_method(name)
        raw = method.compare(column, cur)
        prepared = method.compare(column, CurrentColumn.from_values(cur, kind=column.kind))
        assert isinstance(raw, MethodResult)
        assert raw == prepared

    def test_identical_distributions_do_not_drift_and_shifted_ones_do(self, name: str) -> None:
        method = get_method(name)
        for shift, drifts in ((0.0, False), (1.0, True)):
            ref, cur = _data_for(name, shift=shift)
            result = method.compare(ReferenceColumn.from_values(ref), cur)
            if method.output == "p_value":
                assert result.p_value is not None and 0 <= result.p_value <= 1
                assert (result.p_value < method.default_threshold) is drifts
            else:
                assert result.p_value is None
                assert (result.statistic >= method.default_threshold) is drifts
            assert 0 <= result.effect_size

    def test_a_tiny_sample_gives_an_answer_without_warnings(self, name: str) -> None:
        ref, cur = _data_for(name, shift=0.3)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            result = get_method(name).compare(ReferenceColumn.from_values(ref[:6]), cur[:5])
        assert np.isfinite(result.statistic)

    def test_rejects_a_feature_of_the_wrong_kind(self, name: str) -> None:
        method = get_method(name)
        if "categorical" in method.kinds:
            column = ReferenceColumn.from_values(np.random.default_rng(0).normal(size=500))
            if "numeric" in method.kinds:
                return  # takes both kinds
            with pytest.raises(DataError, match="more than 100 distinct values"):
                method.compare(column, np.zeros(10))
        else:
            with pytest.raises(DataError, match=f"method '{name}' works on numeric features"):
                method.compare(ReferenceColumn.from_values(["a", "b"], name="city"), ["a"])

    def test_all_missing_current_values_are_an_error(self, name: str) -> None:
        ref, _cur = _data_for(name, shift=0.0)
        column = ReferenceColumn.from_values(ref, name="f")
        empty = np.full(5, np.nan) if column.kind == "numeric" else np.array([None] * 5)
        with pytest.raises(DataError, match="'f' has no values in the current data"):
            get_method(name).compare(column, empty)


def test_unknown_method_names_are_listed() -> None:
    with pytest.raises(ModelpilotError, match=r"unknown drift method 'ttest'; known methods: ks,"):
        get_method("ttest")


def test_evidently_names_are_accepted() -> None:
    assert isinstance(get_method("jensenshannon"), JensenShannonDistance)
    assert isinstance(get_method("chisquare"), ChiSquareTest)
    assert isinstance(get_method("anderson"), AndersonDarlingTest)


def test_numeric_values_that_are_not_numbers_are_reported() -> None:
    with pytest.raises(DataError, match="non-numeric values such as 'abc'"):
        ReferenceColumn.from_values(
            pd.Series(["1.5", "abc"], dtype=object), name="x", kind="numeric"
        )


def test_missing_values_are_dropped_and_counted() -> None:
    column = ReferenceColumn.from_values(pd.Series([1.0, None, 3.0, np.nan]), name="x")
    assert (column.n, column.n_missing, column.values.tolist()) == (2, 2, [1.0, 3.0])
    labels = ReferenceColumn.from_values(pd.Series(["a", None, "a", True]), name="c")
    assert (labels.categories, labels.counts.tolist(), labels.n_missing) == (
        ["a", "true"],
        [2, 1],
        1,
    )
