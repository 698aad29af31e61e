"""Exact NumPy evaluators of linear models and tree ensembles, as plain arrays.

The arrays (:class:`TreeEnsembleArrays`, :class:`ColumnSteps`, :class:`LinearArrays`,
:class:`CategoryCodes`) are built from fitted models by modelpilot, which checks them bit for
bit against the library when a model loads; here they are only evaluated, with nothing but
NumPy. modelpilot's server imports these modules from this package, so they exist once.
"""

from ._codes import CategoryCodes, is_missing
from ._evaluate_linear import LinearArrays, expit, softmax
from ._evaluate_links import DECISIONS, LINKS, decide, expf, link
from ._evaluate_steps import STEP_KINDS, ColumnSteps
from ._evaluate_trees import TreeEnsembleArrays
from ._libm import c_expf

__all__ = [
    "DECISIONS",
    "LINKS",
    "STEP_KINDS",
    "CategoryCodes",
    "ColumnSteps",
    "LinearArrays",
    "TreeEnsembleArrays",
    "c_expf",
    "decide",
    "expf",
    "expit",
    "is_missing",
    "link",
    "softmax",
]
