"""The C library's ``expf``, for XGBoost's float32 sigmoid and softmax (see _evaluate_trees.py).

XGBoost computes probabilities with the C library's ``expf``, which is not always the
correctly rounded float32 exponential that NumPy can compute (it differs in the last bit on
about one input in a thousand). Calling the same function through ctypes gives XGBoost's
bits; one call per value costs ~0.3 us, nothing next to a request for a few rows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np

__all__ = ["c_expf"]


@cache
def c_expf() -> Callable[[np.ndarray], np.ndarray] | None:
    """The C library's ``expf`` over float32 arrays, or None where it cannot be loaded.

    Examples
    --------
    >>> expf = c_expf()
    >>> expf is None or expf(np.array([0.0], dtype=np.float32)).tolist() == [1.0]
    True
    """
    # Imported here: ctypes.util costs ~10 ms at start-up, and only XGBoost's links need it.
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("m")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name).expf
    except (OSError, AttributeError):
        return None
    function.restype = ctypes.c_float
    function.argtypes = [ctypes.c_float]
    each = np.frompyfunc(function, 1, 1)

    def expf(x: np.ndarray) -> np.ndarray:
        result: np.ndarray = each(x).astype(np.float32)
        return result

    return expf
