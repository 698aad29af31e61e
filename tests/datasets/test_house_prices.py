"""The synthetic house-price data set and its two drift knobs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelpilot.data import SchemaValidator
from modelpilot.datasets import HOUSE_FEATURES, house_prices

FEATURE_NAMES = [f.name for f in HOUSE_FEATURES]


def test_same_seed_same_rows_other_seed_other_rows() -> None:
    pd.testing.assert_frame_equal(house_prices(500, seed=3), house_prices(500, seed=3))
    assert not house_prices(500, seed=3).equals(house_prices(500, seed=4))


def test_columns_follow_the_declared_schema() -> None:
    frame = house_prices(2000, seed=1)
    assert list(frame.columns) == [*FEATURE_NAMES, "price"]
    assert SchemaValidator(HOUSE_FEATURES).validate_frame(frame).n_invalid == 0
    assert frame["has_garage"].dtype == bool
    assert (frame["price"] >= 30_000).all()


@pytest.mark.parametrize("knobs", [{"size_shift": 0.8}, {"price_inflation": 0.5, "noise": 0}])
def test_drifted_data_still_fits_the_schema(knobs: dict[str, float]) -> None:
    frame = house_prices(2000, seed=1, **knobs)
    assert SchemaValidator(HOUSE_FEATURES).validate_frame(frame).n_invalid == 0


def test_data_drift_makes_houses_larger_and_leaves_the_mapping() -> None:
    base = house_prices(4000, seed=2)
    bigger = house_prices(4000, seed=2, size_shift=0.3)
    ratio = bigger["size_sqft"].mean() / base["size_sqft"].mean()
    assert 1.25 < ratio < 1.35
    assert bigger["bedrooms"].mean() > base["bedrooms"].mean() + 0.4
    assert (bigger["location"] == base["location"]).all()  # only size and what follows from it
    # Same mapping: a price per square foot that barely moves, unlike under concept drift.
    per_sqft = (bigger["price"] / bigger["size_sqft"]).median()
    assert per_sqft == pytest.approx((base["price"] / base["size_sqft"]).median(), rel=0.15)


def test_concept_drift_raises_prices_for_the_same_houses() -> None:
    base = house_prices(1000, seed=5)
    pricier = house_prices(1000, seed=5, price_inflation=0.2)
    pd.testing.assert_frame_equal(base[FEATURE_NAMES], pricier[FEATURE_NAMES])
    # Both are rounded to hundreds: at most 50 + 1.2 * 50 dollars from exactly 1.2 times.
    assert np.abs(pricier["price"] - 1.2 * base["price"]).max() <= 110


def test_missing_lot_rate() -> None:
    assert house_prices(3000, seed=0, missing_lot_rate=0.0)["lot_acres"].notna().all()
    share = house_prices(3000, seed=0, missing_lot_rate=0.2)["lot_acres"].isna().mean()
    assert 0.17 < share < 0.23


def test_conflicting_duplicates_repeat_houses_with_other_prices() -> None:
    base = house_prices(300, seed=9)
    frame = house_prices(300, seed=9, conflicting_duplicates=25)
    assert len(frame) == 325
    pd.testing.assert_frame_equal(frame.iloc[:300], base)
    for _, copy in frame.iloc[300:].iterrows():
        same_house = (frame.iloc[:300][FEATURE_NAMES] == copy[FEATURE_NAMES]) | (
            frame.iloc[:300][FEATURE_NAMES].isna() & copy[FEATURE_NAMES].isna()
        )
        originals = frame.iloc[:300][same_house.all(axis=1)]
        assert len(originals) >= 1
        ratio = copy["price"] / originals["price"].iloc[0]
        assert ratio == pytest.approx(0.5, abs=0.01) or ratio == pytest.approx(1.8, abs=0.01)


def test_empty_and_negative_sizes() -> None:
    empty = house_prices(0, seed=0, conflicting_duplicates=3)
    assert empty.empty and list(empty.columns) == [*FEATURE_NAMES, "price"]
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        house_prices(-1)
