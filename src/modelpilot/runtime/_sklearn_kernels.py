"""Which kernel answers for a scikit-learn estimator: linear, tree, or none (with the reason)."""

from __future__ import annotations

import copy
import logging
import os
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.runtime._extract_sklearn_trees import TREE_MODELS, sklearn_tree_arrays
from modelpilot.runtime._kernels import LinearKernel, kernels_enabled, linear_kernel
from modelpilot.runtime._tree_kernel import Answers, TreeKernel, checked_kernel
from modelpilot.runtime._tree_layout import Unsupported

__all__ = ["sklearn_kernel"]

logger = logging.getLogger("modelpilot.runtime")


def sklearn_kernel(
    estimator: Any, *, environ: Mapping[str, str] = os.environ
) -> LinearKernel | TreeKernel | None:
    """The exact kernel for ``estimator``, or None (the estimator answers every call)."""
    if not kernels_enabled(environ):
        return None
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if type(final).__name__ not in TREE_MODELS:
        return linear_kernel(estimator, environ=environ)
    return tree_kernel(estimator)


def tree_kernel(estimator: Any) -> TreeKernel | None:
    """A checked kernel for a scikit-learn tree model, or None with the reason logged."""
    name = type(estimator).__name__
    try:
        if hasattr(estimator, "steps"):
            raise Unsupported("pipelines before a tree model are not expressed yet")
        arrays = sklearn_tree_arrays(estimator)
        arrays = _with_input_rules(arrays, estimator)
    except Unsupported as exc:
        logger.info("no tree kernel for %s: %s; scikit-learn answers every call", name, exc)
        return None
    classes = getattr(estimator, "classes_", None)
    kernel = TreeKernel(arrays, classes=classes)
    return checked_kernel(kernel, _library(estimator), name=name)


def _with_input_rules(arrays: Any, estimator: Any) -> Any:
    """The arrays with ``allow_nan``/``allow_inf`` as the estimator really has them."""
    import dataclasses

    probe = _given(estimator)
    width = arrays.n_features
    rules = {}
    for field, value in (("allow_nan", np.nan), ("allow_inf", np.inf)):
        row = np.zeros((1, width))
        row[0, 0] = value
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                estimator.predict(probe(row))
            rules[field] = True
        except ValueError:
            rules[field] = False
    return dataclasses.replace(arrays, **rules)


def _given(estimator: Any) -> Any:
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return lambda rows: rows
    columns = [str(n) for n in names]
    return lambda rows: pd.DataFrame(rows, columns=columns)


def _library(estimator: Any) -> Any:
    # Forests fitted with n_jobs > 1 add their trees' values in the order threads finish; the
    # kernel adds them in tree order, which is what one job does: check against one job.
    single = estimator
    if getattr(estimator, "n_jobs", None) not in (None, 1):
        single = copy.copy(estimator)
        single.n_jobs = 1
    given = _given(estimator)
    classifier = getattr(estimator, "classes_", None) is not None

    def answer(rows: np.ndarray) -> Answers:
        data = given(rows)
        predictions = np.asarray(single.predict(data))
        proba = np.asarray(single.predict_proba(data)) if classifier else None
        return predictions, proba

    return answer
