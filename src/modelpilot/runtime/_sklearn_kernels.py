"""Which kernel answers for a scikit-learn estimator: linear, tree, or none (with the reason)."""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.runtime._extract_boosters import lightgbm_arrays, xgboost_arrays
from modelpilot.runtime._extract_pipeline import pipeline_form
from modelpilot.runtime._extract_sklearn_trees import TREE_MODELS, sklearn_tree_arrays
from modelpilot.runtime._kernels import (
    LINEAR_MODELS,
    LinearKernel,
    kernels_enabled,
    linear_kernel,
)
from modelpilot.runtime._tree_kernel import Answers, TreeKernel, checked_kernel
from modelpilot.runtime._tree_layout import Unsupported
from modelpilot_edge.kernels import TreeEnsembleArrays

__all__ = ["sklearn_kernel", "why_no_kernel"]

logger = logging.getLogger("modelpilot.runtime")


def sklearn_kernel(
    estimator: Any, *, environ: Mapping[str, str] = os.environ
) -> LinearKernel | TreeKernel | None:
    """The exact kernel for ``estimator``, or None (the estimator answers every call)."""
    if not kernels_enabled(environ):
        return None
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if type(final).__name__ not in TREE_MODELS | WRAPPERS:
        return linear_kernel(estimator, environ=environ)
    return tree_kernel(estimator, environ=environ)


def why_no_kernel(estimator: Any) -> str:
    """Why :func:`sklearn_kernel` has no kernel for ``estimator``, naming the step that stops
    it (for an error message; the server only logs it).

    Examples
    --------
    >>> from sklearn.svm import SVR
    >>> why_no_kernel(SVR())
    'SVR is neither a linear model nor a tree ensemble the kernels know'
    """
    steps = [s for _, s in getattr(estimator, "steps", [(None, estimator)])]
    final = steps[-1]
    name = type(final).__name__
    if name in TREE_MODELS | WRAPPERS:
        try:
            pipeline_form(estimator).remap(_final_arrays(final))
        except Unsupported as exc:
            return f"{name}: {exc}"
        return f"the kernel of {name} differs from the library on its check rows"
    if name not in LINEAR_MODELS:
        return f"{name} is neither a linear model nor a tree ensemble the kernels know"
    for step in steps[:-1]:
        if step is not None and step != "passthrough" and type(step).__name__ != "StandardScaler":
            return (
                f"the step {type(step).__name__} before {name} (linear kernels take scalers only)"
            )
    return f"the kernel of {name} differs from scikit-learn on its check rows"


# The scikit-learn interfaces of the boosting libraries, read through their boosters.
WRAPPERS = frozenset({"XGBClassifier", "XGBRegressor", "LGBMClassifier", "LGBMRegressor"})


def tree_kernel(estimator: Any, *, environ: Mapping[str, str] = os.environ) -> TreeKernel | None:
    """A checked kernel for a tree model (after a pipeline's transformers), or None with the
    reason logged."""
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    name = type(final).__name__
    if final is not estimator:
        name = f"{name} in a Pipeline"
    try:
        form = pipeline_form(estimator)
        arrays = form.remap(_with_input_rules(_final_arrays(form.final), form.final))
    except Unsupported as exc:
        logger.info("no tree kernel for %s: %s; the library answers every call", name, exc)
        return None
    names = getattr(estimator, "feature_names_in_", None)
    kernel = TreeKernel(
        arrays,
        classes=getattr(estimator, "classes_", None),
        proba_dtype=np.float32 if arrays.sum_float32 else None,
        codes=form.codes,
        steps=form.steps,
        names=None if names is None else [str(n) for n in names],
    )
    return checked_kernel(kernel, _library(estimator), name=name, environ=environ)


def _final_arrays(final: Any) -> TreeEnsembleArrays:
    name = type(final).__name__
    if name in {"XGBClassifier", "XGBRegressor"}:
        return xgboost_arrays(final.get_booster())
    if name in {"LGBMClassifier", "LGBMRegressor"}:
        return lightgbm_arrays(final.booster_)
    return sklearn_tree_arrays(final)


def _with_input_rules(arrays: TreeEnsembleArrays, estimator: Any) -> TreeEnsembleArrays:
    """The arrays with ``allow_nan``/``allow_inf`` as the estimator really has them."""
    name = type(estimator).__name__
    if not type(estimator).__module__.startswith("sklearn.") or name.startswith("HistGradient"):
        return arrays  # known: in the arrays already (HistGradientBoosting takes NaN and inf)
    probe = _given(estimator)
    width = arrays.n_features
    rules: dict[str, bool] = {}
    for field, value in (("allow_nan", np.nan), ("allow_inf", np.inf)):
        row = np.zeros((1, width))
        row[0, 0] = value
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                estimator.predict(probe(row))
            rules[field] = True
        except Exception:  # refused (or cannot tell): the library answers such input
            rules[field] = False
    return dataclasses.replace(arrays, allow_nan=rules["allow_nan"], allow_inf=rules["allow_inf"])


def _given(estimator: Any) -> Any:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return lambda rows: rows
    columns = [str(n) for n in names]
    return lambda rows: pd.DataFrame(rows, columns=columns)


def _library(estimator: Any) -> Callable[[Any], Answers]:
    # Forests fitted with n_jobs > 1 add their trees' values in the order threads finish; the
    # kernel adds them in tree order, which is what one job does: check against one job.
    single = _single_job(estimator)
    given = _given(estimator)
    classifier = getattr(estimator, "classes_", None) is not None

    def answer(rows: Any) -> Answers:
        data = rows if isinstance(rows, pd.DataFrame) else given(rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. an encoder's "unknown categories"
            return _answers(single, data, classifier)

    return answer


def _answers(single: Any, data: Any, classifier: bool) -> Answers:
    predictions = np.asarray(single.predict(data))
    proba = np.asarray(single.predict_proba(data)) if classifier else None
    return predictions, proba


def _single_job(estimator: Any) -> Any:
    """``estimator`` (a shallow copy) with its final step running one job."""
    if hasattr(estimator, "steps"):
        final = _single_job(estimator.steps[-1][1])
        if final is estimator.steps[-1][1]:
            return estimator
        pipeline = copy.copy(estimator)
        pipeline.steps = [*estimator.steps[:-1], (estimator.steps[-1][0], final)]
        return pipeline
    if getattr(estimator, "n_jobs", None) in (None, 1):
        return estimator
    single = copy.copy(estimator)
    single.n_jobs = 1
    return single
