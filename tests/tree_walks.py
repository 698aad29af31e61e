"""The compiled tree walk against the NumPy walk of the same arrays (tests of runtime/)."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelpilot.runtime._check_rows import check_rows
from modelpilot.runtime._tree_kernel import TreeKernel


def assert_walks_agree(runtime: Any) -> None:
    """``runtime`` answers through the compiled walk, whose raw scores are the NumPy walk's
    bit for bit (dtype too) on the rows the load-time check uses: one reaching every leaf,
    values on the thresholds, missing values, categories; in one batch, row by row, the rows
    without a missing value (blocks of eight: the compiled walk's fast path), shuffled (blocks
    mixing the fast path's rows and the others) and a batch ending in a partial block."""
    kernel = getattr(runtime, "kernel", None)
    assert isinstance(kernel, TreeKernel), "no tree kernel"
    assert kernel.compiled is not None, "the tree kernel walks in NumPy, not compiled"
    rows = check_rows(kernel.arrays, np.random.default_rng(7))
    assert kernel.arrays.accepts(rows)
    complete = rows[~np.isnan(rows).any(axis=1)]
    assert len(complete) >= 8, "no full block for the fast path"
    shuffled = np.random.default_rng(3).permutation(rows)
    for batch in (rows, rows[:1], rows[-1:], complete, shuffled, complete[:13]):
        compiled, numpy = kernel.compiled.raw(batch), kernel.arrays.raw(batch)
        assert compiled.dtype == numpy.dtype
        assert np.array_equal(compiled, numpy)
