"""NumPy, imported by the runner with one BLAS thread where nobody said otherwise.

Why: importing NumPy starts OpenBLAS's thread pool, one thread per core, and starting it costs
a device more CPU than the rest of opening a bundle (here NumPy's import took 100-220 ms of
CPU with the pool, ~90 ms with one thread; benchmarks/results/edge.md). The runner does
element-wise work and matrix products of a few rows, where BLAS threads only wait.

So when the runner is the first to import NumPy in its process and no thread count is set
(none of ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``GOTO_NUM_THREADS``,
``MKL_NUM_THREADS`` is in the environment), it imports NumPy with
``OPENBLAS_NUM_THREADS=1`` and removes the variable again (child processes do not inherit
it). A host application that wants BLAS threads imports NumPy before the runner, or sets one
of those variables; either way the runner leaves NumPy alone (docs/edge.md, "What loads
when").
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import MutableMapping

__all__ = ["THREAD_VARIABLES", "import_numpy"]

THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "GOTO_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def import_numpy(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Import NumPy (see the module docstring); whether its BLAS got one thread.

    Examples
    --------
    >>> import numpy  # already imported here (pytest): nothing changes
    >>> import_numpy()
    False
    """
    if "numpy" in sys.modules or any(name in environ for name in THREAD_VARIABLES):
        importlib.import_module("numpy")
        return False
    environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        importlib.import_module("numpy")
    finally:
        environ.pop("OPENBLAS_NUM_THREADS", None)
    return True
