"""The method registry: names (and Evidently's names) to classes, and the defaults by type and size.

Defaults follow Evidently's rules: up to 1,000 reference values, Kolmogorov-Smirnov for numeric
features and chi-square for categorical ones (p < 0.05); above, the normed Wasserstein distance
for numeric and the Jensen-Shannon distance for categorical ones (>= 0.1). A numeric feature
with at most 5 distinct values is treated as categorical. ``docs/drift.md`` explains where
modelpilot differs and why.
"""

from __future__ import annotations

from modelpilot.drift._anderson_darling import AndersonDarlingTest
from modelpilot.drift._base import DriftMethod
from modelpilot.drift._chi_square import ChiSquareTest
from modelpilot.drift._columns import ReferenceColumn
from modelpilot.drift._cramer_von_mises import CramerVonMisesTest
from modelpilot.drift._jensen_shannon import JensenShannonDistance
from modelpilot.drift._ks import KSTest
from modelpilot.drift._psi import PopulationStabilityIndex
from modelpilot.drift._total_variation import TotalVariationDistance
from modelpilot.drift._wasserstein import WassersteinDistance
from modelpilot.errors import ModelpilotError

__all__ = ["METHODS", "default_method", "get_method"]

METHODS: dict[str, type[DriftMethod]] = {
    "ks": KSTest,
    "wasserstein": WassersteinDistance,
    "psi": PopulationStabilityIndex,
    "jensen_shannon": JensenShannonDistance,
    "cramer_von_mises": CramerVonMisesTest,
    "anderson_darling": AndersonDarlingTest,
    "chi_square": ChiSquareTest,
    "total_variation": TotalVariationDistance,
}

# Other spellings people type, including Evidently's stattest names.
_ALIASES = {
    "kolmogorov_smirnov": "ks",
    "wasserstein_distance": "wasserstein",
    "wasserstein_norm": "wasserstein",
    "population_stability_index": "psi",
    "js": "jensen_shannon",
    "jensenshannon": "jensen_shannon",
    "cvm": "cramer_von_mises",
    "anderson": "anderson_darling",
    "ad": "anderson_darling",
    "chisquare": "chi_square",
    "chi2": "chi_square",
    "tvd": "total_variation",
}

#: Up to this many reference values the defaults are tests (p-values), above it distances.
SMALL_SAMPLE = 1000
#: A numeric feature with at most this many distinct values gets the categorical default.
MAX_VALUES_AS_CATEGORIES = 5


def get_method(method: str | DriftMethod) -> DriftMethod:
    """A method instance from its name (or one of its aliases); instances pass through.

    Examples
    --------
    >>> get_method("KS"), get_method("jensenshannon")
    (KSTest(), JensenShannonDistance(n_bins=10))
    >>> get_method("t-test")
    Traceback (most recent call last):
    ...
    modelpilot.errors.ModelpilotError: unknown drift method 't-test'; known methods: ks, \
wasserstein, psi, jensen_shannon, cramer_von_mises, anderson_darling, chi_square, total_variation
    """
    if not isinstance(method, str):
        if isinstance(method, DriftMethod):
            return method
        raise ModelpilotError(
            f"a drift method must be a name or a method object such as KSTest(); got {method!r}"
        )
    key = method.strip().lower().replace("-", "_").replace(" ", "_")
    key = _ALIASES.get(key, key)
    if key not in METHODS:
        raise ModelpilotError(
            f"unknown drift method {method!r}; known methods: {', '.join(METHODS)}"
        )
    return METHODS[key]()


def default_method(ref: ReferenceColumn) -> DriftMethod:
    """The method a feature gets unless one is chosen: by its type and reference size.

    Examples
    --------
    >>> import numpy as np
    >>> from modelpilot.drift import ReferenceColumn
    >>> default_method(ReferenceColumn.from_values(np.arange(500.0)))
    KSTest()
    >>> default_method(ReferenceColumn.from_values(np.arange(5000.0)))
    WassersteinDistance()
    >>> default_method(ReferenceColumn.from_values(["a", "b"] * 2000))
    JensenShannonDistance(n_bins=10)
    """
    small = ref.n <= SMALL_SAMPLE
    categorical = ref.kind == "categorical"
    if not categorical:
        distinct = ref.distinct
        categorical = distinct is not None and distinct[0].size <= MAX_VALUES_AS_CATEGORIES
    if categorical:
        return ChiSquareTest() if small else JensenShannonDistance()
    return KSTest() if small else WassersteinDistance()
