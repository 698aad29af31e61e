"""Which path a loaded model's answers take: one of modelpilot's exact kernels, or the library.

The server logs it once per model version at load (``inference/_deployments.py``), so an
operator sees in ``modelpilot serve``'s output whether a model is on a fast path; the reason a
kernel was refused is logged at INFO just before it, by the kernel's own check.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from modelpilot.runtime._kernels import LinearKernel, kernels_enabled
from modelpilot.runtime._tree_kernel import TreeKernel

__all__ = ["answer_path"]


def answer_path(runtime: Any, *, environ: Mapping[str, str] = os.environ) -> str:
    """How ``runtime`` answers: through which exact kernel, or the library's own predict.

    Parameters
    ----------
    runtime : ModelRuntime
        A loaded model (``load_runtime``).
    environ : Mapping[str, str], optional
        Where ``MODELPILOT_NUMPY_KERNELS`` is read (the process environment by default).

    Returns
    -------
    str
        A phrase for the server's log, such as ``"the exact tree kernel (XGBoost model,
        compiled walk)"`` (numba's compiled walk, or the NumPy walk).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from modelpilot.runtime._sklearn import SklearnRuntime
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> model = LogisticRegression().fit(X, [0, 0, 1, 1])
    >>> answer_path(SklearnRuntime(model, flavor="skops"))
    'the exact linear kernel (LogisticRegression)'
    >>> from sklearn.neighbors import KNeighborsClassifier
    >>> neighbours = KNeighborsClassifier(n_neighbors=1).fit(X, [0, 0, 1, 1])
    >>> answer_path(SklearnRuntime(neighbours, flavor="skops"), environ={})[:60]
    "the library's own predict (KNeighborsClassifier: no kernel c"
    """
    kernel = getattr(runtime, "kernel", None)
    if isinstance(kernel, LinearKernel):
        return f"the exact linear kernel ({_model_name(runtime)})"
    if isinstance(kernel, TreeKernel):
        walk = "NumPy walk" if kernel.compiled is None else "compiled walk"
        return f"the exact tree kernel ({_model_name(runtime)}, {walk})"
    if not kernels_enabled(environ):
        return "the library's own predict (kernels off: MODELPILOT_NUMPY_KERNELS=0)"
    if not hasattr(runtime, "kernel"):
        return f"the library's own predict (no kernel for the {runtime.flavor} flavor)"
    return (
        f"the library's own predict ({_model_name(runtime)}: no kernel covers it, or its "
        "check failed for the reason logged above)"
    )


def _model_name(runtime: Any) -> str:
    model = getattr(runtime, "estimator", None)
    if model is None:
        return f"{runtime.flavor} model"
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    name = type(final).__name__
    return f"{name} in a Pipeline" if final is not model else name
