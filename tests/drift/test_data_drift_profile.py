"""From a reference profile (no raw training data): the same verdicts, statistics within the
tolerances stated in docs/drift.md."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from modelpilot.data import build_profile
from modelpilot.datasets import HOUSE_FEATURES, house_prices
from modelpilot.drift import DriftReference, compare
from modelpilot.spec import FeatureSpec

NUMERIC_METHODS = [
    "ks",
    "wasserstein",
    "psi",
    "jensen_shannon",
    "cramer_von_mises",
    "anderson_darling",
]
# Largest |profile - raw| of each statistic on continuous features (docs/drift.md).
ABSOLUTE = {"ks": 0.002, "psi": 0.002, "jensen_shannon": 0.002, "anderson_darling": 0.05}
RELATIVE = {"cramer_von_mises": 0.01}
WASSERSTEIN_LIGHT_TAILS, WASSERSTEIN_HEAVY_TAILS = 0.002, 0.03


def _continuous(n: int, *, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "normal": rng.normal(shift, 1.0, n),
            "uniform": rng.uniform(shift, 1.0 + shift, n),
            "lognormal": rng.lognormal(shift, 1.0, n),  # heavy right tail
            "student": rng.standard_t(3, n) + shift,  # heavy tails on both sides
        }
    )


@pytest.fixture(scope="module")
def continuous() -> tuple[pd.DataFrame, dict[str, Any]]:
    frame = _continuous(50_000, seed=5)
    return frame, build_profile(frame, [FeatureSpec(name=c, type="numeric") for c in frame])


@pytest.mark.parametrize("method", NUMERIC_METHODS)
@pytest.mark.parametrize("shift", [0.0, 0.05, 0.2])
def test_profile_gives_the_raw_verdicts_within_tolerance(
    continuous: tuple[pd.DataFrame, dict[str, Any]], method: str, shift: float
) -> None:
    frame, profile = continuous
    current = _continuous(8000, seed=6, shift=shift)
    methods = dict.fromkeys(frame.columns, method)
    raw = compare(frame, current, methods=methods)
    rebuilt = compare(profile, current, methods=methods)
    assert rebuilt.reference_source == "profile"
    for a, b in zip(raw.features, rebuilt.features, strict=True):
        assert a.drifted == b.drifted, (method, a.name)
        gap = abs(a.statistic - b.statistic)
        if method == "wasserstein":
            heavy = a.name in ("lognormal", "student")
            assert gap <= (WASSERSTEIN_HEAVY_TAILS if heavy else WASSERSTEIN_LIGHT_TAILS), a.name
        elif method in RELATIVE:
            assert gap <= RELATIVE[method] * abs(a.statistic), a.name
        else:
            assert gap <= ABSOLUTE[method], a.name


@pytest.fixture(scope="module")
def houses() -> tuple[pd.DataFrame, dict[str, Any]]:
    frame = house_prices(20_000, seed=1)
    return frame, build_profile(frame, HOUSE_FEATURES)


@pytest.mark.parametrize("size_shift", [0.0, 0.1])
def test_house_prices_default_report_from_profile_matches_raw(
    houses: tuple[pd.DataFrame, dict[str, Any]], size_shift: float
) -> None:
    frame, profile = houses
    current = house_prices(5000, seed=3, size_shift=size_shift)
    raw = compare(frame, current, features=HOUSE_FEATURES)
    rebuilt = compare(profile, current, features=HOUSE_FEATURES)
    assert [f.drifted for f in raw.features] == [f.drifted for f in rebuilt.features]
    assert raw.dataset_drifted == rebuilt.dataset_drifted
    for a, b in zip(raw.features, rebuilt.features, strict=True):
        assert (a.method, a.n_reference, a.n_missing_reference) == (
            b.method,
            b.n_reference,
            b.n_missing_reference,
        )
        if a.kind == "categorical":
            # Exact value counts: the same statistic up to rounding.
            assert b.statistic == pytest.approx(a.statistic, rel=1e-12, abs=1e-15)
        else:
            assert b.statistic == pytest.approx(a.statistic, abs=WASSERSTEIN_LIGHT_TAILS)
    assert size_shift == 0 or raw.drifted_features == ["size_sqft", "bedrooms", "bathrooms"]


@pytest.mark.parametrize("method", [*NUMERIC_METHODS, "chi_square", "total_variation"])
def test_integer_features_with_exact_counts_give_exactly_the_raw_statistics(
    houses: tuple[pd.DataFrame, dict[str, Any]], method: str
) -> None:
    frame, profile = houses
    assert "values" in profile["features"]["bedrooms"]  # at most 100 distinct values
    current = house_prices(3000, seed=4, size_shift=0.05)
    features = ["bedrooms", "bathrooms"]
    methods = dict.fromkeys(features, method)
    raw = compare(frame, current, features=features, methods=methods)
    rebuilt = compare(profile, current, features=features, methods=methods)
    for a, b in zip(raw.features, rebuilt.features, strict=True):
        assert b.statistic == pytest.approx(a.statistic, rel=1e-12, abs=1e-12)
        assert (a.p_value is None) == (b.p_value is None)
        if a.p_value is not None:
            assert b.p_value == pytest.approx(a.p_value, rel=1e-9, abs=1e-300)


def test_a_prepared_profile_reference_is_reused(
    houses: tuple[pd.DataFrame, dict[str, Any]],
) -> None:
    _frame, profile = houses
    prepared = DriftReference.from_profile(profile)
    assert prepared.source == "profile" and set(prepared.columns) == {
        f.name for f in HOUSE_FEATURES
    }
    current = house_prices(2000, seed=9)
    assert compare(prepared, current).to_dict() == compare(profile, current).to_dict()


def test_profile_errors_name_the_problem(houses: tuple[pd.DataFrame, dict[str, Any]]) -> None:
    from modelpilot.errors import DataError

    _, profile = houses
    with pytest.raises(DataError, match="feature 'floors' is not in the reference profile"):
        compare(profile, house_prices(100, seed=1), features=["floors"])
    with pytest.raises(DataError, match="declared categorical but the profile has it as numeric"):
        compare(
            profile,
            house_prices(100, seed=1),
            features=[FeatureSpec(name="bedrooms", type="categorical")],
        )
    with pytest.raises(DataError, match="the reference profile has no 'features' mapping"):
        compare({"n_rows": 3}, house_prices(100, seed=1))
