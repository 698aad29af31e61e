"""Multiple-testing correction across the features tested with p-values.

With 100 healthy features tested at p < 0.05, about 5 are flagged by chance alone. The
Benjamini-Hochberg adjustment (the default) controls the expected share of false alarms among
the flagged features, and when no feature drifted, the chance of any false alarm, at the
threshold; Bonferroni controls the chance of any false alarm in every case, at a loss of power.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import stats

from modelpilot.errors import ModelpilotError

__all__ = ["CORRECTIONS", "Correction", "adjust_p_values"]

Correction = Literal["bh", "bonferroni", "none"]
CORRECTIONS: tuple[Correction, ...] = ("bh", "bonferroni", "none")


def adjust_p_values(p_values: Sequence[float], *, correction: str = "bh") -> list[float]:
    """Adjusted p-values: compare each with its threshold as if it were a single test.

    Examples
    --------
    >>> adjust_p_values([0.01, 0.04, 0.03, 0.5])
    [0.04, 0.05333333333333333, 0.05333333333333333, 0.5]
    >>> adjust_p_values([0.01, 0.04], correction="bonferroni")
    [0.02, 0.08]
    """
    if correction not in CORRECTIONS:
        raise ModelpilotError(
            f"correction must be one of {', '.join(CORRECTIONS)}; got {correction!r}"
        )
    if not p_values or correction == "none":
        return [float(p) for p in p_values]
    values = np.asarray(p_values, dtype=np.float64)
    if correction == "bonferroni":
        return [float(p) for p in np.minimum(values * values.size, 1.0)]
    return [float(p) for p in stats.false_discovery_control(values, method="bh")]
