"""Data sets that ship with modelpilot, made offline: the seed's house-price example."""

from modelpilot.datasets._house_prices import HOUSE_FEATURES, house_prices

__all__ = ["HOUSE_FEATURES", "house_prices"]
