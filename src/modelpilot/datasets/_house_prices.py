"""A synthetic house-price data set with knobs for the seed's two drifts.

The seed's example: *data drift* is people starting to build larger houses (the distribution
of x changes); *concept drift* is prices rising for the same house (the mapping x -> y changes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from modelpilot.spec import FeatureSpec

__all__ = ["HOUSE_FEATURES", "house_prices"]

LOCATIONS = ["urban", "suburban", "rural"]
CONDITIONS = ["poor", "fair", "good", "excellent"]

#: The schema of :func:`house_prices`, with ranges a real listing never leaves.
HOUSE_FEATURES: list[FeatureSpec] = [
    FeatureSpec(
        name="size_sqft",
        type="numeric",
        range=(200, 20000),
        description="living area in square feet",
    ),
    FeatureSpec(name="bedrooms", type="numeric", range=(0, 12)),
    FeatureSpec(name="bathrooms", type="numeric", range=(0, 8)),
    FeatureSpec(name="age_years", type="numeric", range=(0, 200)),
    FeatureSpec(name="lot_acres", type="numeric", range=(0, 100), nullable=True),
    FeatureSpec(
        name="distance_km",
        type="numeric",
        range=(0, 200),
        description="distance to the city centre",
    ),
    FeatureSpec(name="location", type="categorical", categories=LOCATIONS),
    FeatureSpec(name="condition", type="categorical", categories=CONDITIONS),
    FeatureSpec(name="has_garage", type="boolean"),
]

_LOCATION_PREMIUM = {"urban": 90_000.0, "suburban": 40_000.0, "rural": 0.0}
_CONDITION_FACTOR = {"poor": 0.85, "fair": 0.95, "good": 1.0, "excellent": 1.12}


def house_prices(
    n: int,
    *,
    seed: int | None = None,
    size_shift: float = 0.0,
    price_inflation: float = 0.0,
    noise: float = 15_000.0,
    missing_lot_rate: float = 0.02,
    conflicting_duplicates: int = 0,
) -> pd.DataFrame:
    """Generate ``n`` house sales with a ``price`` column.

    Parameters
    ----------
    n
        Number of rows.
    seed
        Seed of the random generator; the same seed gives the same rows.
    size_shift
        Data drift: houses are ``1 + size_shift`` times larger on average (0.3 = 30% larger),
        and have proportionally more bedrooms and bathrooms.
    price_inflation
        Concept drift: the same house costs ``1 + price_inflation`` times as much.
    noise
        Standard deviation of the price noise, in dollars.
    missing_lot_rate
        Share of rows whose ``lot_acres`` is unknown (the feature is nullable).
    conflicting_duplicates
        Number of extra rows that copy an existing house with a very different price: the
        label inconsistency the data checks must catch.

    Examples
    --------
    >>> frame = house_prices(1000, seed=0)
    >>> frame.shape
    (1000, 10)
    >>> bigger = house_prices(1000, seed=0, size_shift=0.3)
    >>> bool(bigger["size_sqft"].mean() > 1.25 * frame["size_sqft"].mean())
    True
    >>> pricier = house_prices(1000, seed=0, price_inflation=0.2)
    >>> round(float(pricier["price"].median() / frame["price"].median()), 1)
    1.2
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = np.random.default_rng(seed)
    location = rng.choice(LOCATIONS, size=n, p=[0.35, 0.45, 0.20])
    scale = 1.0 + size_shift
    size = np.clip(rng.lognormal(np.log(1700.0), 0.35, size=n) * scale, 300, 19_000)
    bedrooms = np.clip(np.round(size / 650 + rng.normal(0, 0.6, n)), 1, 12)
    bathrooms = np.clip(np.round(bedrooms * 0.6 + rng.normal(0, 0.4, n)), 1, 8)
    age = np.clip(rng.gamma(2.0, 14.0, n), 0, 150).round()
    distance = np.where(
        location == "urban",
        rng.uniform(0, 8, n),
        np.where(location == "suburban", rng.uniform(5, 30, n), rng.uniform(20, 80, n)),
    ).round(1)
    lot = np.clip(
        np.where(location == "rural", rng.gamma(2.0, 1.5, n), rng.gamma(2.0, 0.12, n)), 0.02, 90
    ).round(2)
    condition = rng.choice(CONDITIONS, size=n, p=[0.1, 0.3, 0.45, 0.15])
    garage = rng.random(n) < np.where(location == "urban", 0.4, 0.8)

    premium = (
        np.vectorize(_LOCATION_PREMIUM.__getitem__, otypes=[float])(location) if n else np.zeros(0)
    )
    factor = (
        np.vectorize(_CONDITION_FACTOR.__getitem__, otypes=[float])(condition) if n else np.zeros(0)
    )
    price = (
        40_000.0
        + 140.0 * size
        + 9_000.0 * bedrooms
        + 12_000.0 * bathrooms
        - 900.0 * age
        - 1_200.0 * distance
        + 20_000.0 * np.log1p(lot)
        + 15_000.0 * garage
        + premium
    ) * factor
    price = np.maximum(price + rng.normal(0, noise, n), 30_000.0) * (1.0 + price_inflation)
    lot_values = lot.astype(float)
    lot_values[rng.random(n) < missing_lot_rate] = np.nan
    frame = pd.DataFrame(
        {
            "size_sqft": size.round(),
            "bedrooms": bedrooms,
            "bathrooms": bathrooms,
            "age_years": age,
            "lot_acres": lot_values,
            "distance_km": distance,
            "location": location,
            "condition": condition,
            "has_garage": garage,
            "price": price.round(-2),
        }
    )
    if conflicting_duplicates and n:
        picks = rng.choice(n, size=conflicting_duplicates, replace=conflicting_duplicates > n)
        copies = frame.iloc[picks].copy()
        copies["price"] = (copies["price"] * rng.choice([0.5, 1.8], size=len(copies))).round(-2)
        frame = pd.concat([frame, copies], ignore_index=True)
    return frame
