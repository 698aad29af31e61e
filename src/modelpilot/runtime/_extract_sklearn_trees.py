"""scikit-learn's tree models as :class:`TreeEnsembleArrays`.

DecisionTree, ExtraTree, RandomForest, ExtraTrees, GradientBoosting and HistGradientBoosting,
classifiers and regressors with one output. Each is read the way its ``predict`` computes:
forests average the trees' values (added in order, then divided by the number of trees);
gradient boosting adds ``learning_rate * value`` stage after stage to the init estimator's raw
prediction; histogram gradient boosting adds each predictor's value to the baseline, with its
own categorical bitsets. Anything else raises :class:`Unsupported` with the reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelpilot.runtime._tree_layout import Tree, Unsupported, assemble
from modelpilot_edge.kernels import TreeEnsembleArrays

__all__ = ["sklearn_tree_arrays"]

_SINGLE = {
    "DecisionTreeClassifier",
    "DecisionTreeRegressor",
    "ExtraTreeClassifier",
    "ExtraTreeRegressor",
}
_FORESTS = {
    "RandomForestClassifier",
    "RandomForestRegressor",
    "ExtraTreesClassifier",
    "ExtraTreesRegressor",
}
_BOOSTING = {"GradientBoostingClassifier", "GradientBoostingRegressor"}
_HISTOGRAM = {"HistGradientBoostingClassifier", "HistGradientBoostingRegressor"}
TREE_MODELS = frozenset(_SINGLE | _FORESTS | _BOOSTING | _HISTOGRAM)


def sklearn_tree_arrays(model: Any) -> TreeEnsembleArrays:
    """The arrays of a fitted scikit-learn tree model, or :class:`Unsupported`."""
    name = type(model).__name__
    if not type(model).__module__.startswith("sklearn.") or name not in TREE_MODELS:
        raise Unsupported(f"{name} is not one of scikit-learn's tree models")
    if getattr(model, "n_outputs_", 1) != 1:
        raise Unsupported(f"{name} has {model.n_outputs_} outputs; kernels take one")
    classifier = hasattr(model, "classes_")
    width = int(model.n_features_in_)
    if name in _SINGLE:
        return _forest([model], width, classifier=classifier, average=False)
    if name in _FORESTS:
        return _forest(list(model.estimators_), width, classifier=classifier, average=True)
    if name in _BOOSTING:
        return _boosting(model, width, classifier=classifier)
    return _histogram(model, width, classifier=classifier)


def _tree(tree: Any, values: np.ndarray) -> Tree:
    missing_left = getattr(tree, "missing_go_to_left", None)
    if missing_left is None:
        missing_left = np.ones(tree.node_count, dtype=bool)
    return Tree(
        left=np.asarray(tree.children_left),
        right=np.asarray(tree.children_right),
        feature=np.asarray(tree.feature),
        threshold=np.asarray(tree.threshold),
        nan_right=~np.asarray(missing_left, dtype=bool),
        value=values,
    )


def _forest(
    estimators: list[Any], width: int, *, classifier: bool, average: bool
) -> TreeEnsembleArrays:
    trees = []
    for estimator in estimators:
        value = np.asarray(estimator.tree_.value)[:, 0, :]
        if not classifier:
            value = value[:, :1]
        trees.append(_tree(estimator.tree_, value))
    n_values = trees[0].value.shape[1]
    return assemble(
        trees,
        n_features=width,
        base=np.zeros(n_values),
        divisor=float(len(trees)) if average else 1.0,
        input_float32=True,
        link="proba" if classifier else "identity",
        decision="argmax_proba" if classifier else "none",
    )


def _boosting(model: Any, width: int, *, classifier: bool) -> TreeEnsembleArrays:
    init = model.init_
    if not (init == "zero" or type(init).__name__ in {"DummyClassifier", "DummyRegressor"}):
        raise Unsupported(f"the init estimator {type(init).__name__} is not a constant")
    base = np.asarray(model._raw_predict_init(np.zeros((1, width), dtype=np.float32)))[0]
    stages = np.asarray(model.estimators_)
    n_groups = stages.shape[1]
    rate = float(model.learning_rate)
    trees = [
        _tree(stage.tree_, rate * np.asarray(stage.tree_.value)[:, 0, :1])
        for k in range(n_groups)
        for stage in stages[:, k]
    ]
    binary = classifier and n_groups == 1
    return assemble(
        trees,
        n_features=width,
        n_groups=n_groups,
        base=base,
        input_float32=True,
        link=("expit" if binary else "softmax") if classifier else "identity",
        decision=("nonnegative" if binary else "argmax_raw") if classifier else "none",
    )


def _histogram(model: Any, width: int, *, classifier: bool) -> TreeEnsembleArrays:
    # Categorical features come with an internal OrdinalEncoder (``_preprocessor``): these
    # trees read its output; ``_extract_pipeline.pipeline_form`` puts the encoder in front.
    known, feature_map = model._bin_mapper.make_known_categories_bitsets()
    n_groups = int(model.n_trees_per_iteration_)
    trees = [
        _histogram_tree(iteration[k], known, feature_map)
        for k in range(n_groups)
        for iteration in model._predictors
    ]
    link_name = type(model._loss.link).__name__
    if classifier:
        binary = n_groups == 1
        link, decision = ("expit", "positive") if binary else ("softmax", "argmax_raw")
    elif link_name in {"IdentityLink", "LogLink"}:
        link, decision = ("identity" if link_name == "IdentityLink" else "exp"), "none"
    else:
        raise Unsupported(f"the link function {link_name}")
    return assemble(
        trees,
        n_features=width,
        n_groups=n_groups,
        base=np.asarray(model._baseline_prediction, dtype=np.float64).reshape(-1),
        allow_inf=True,
        link=link,
        decision=decision,
    )


def _histogram_tree(predictor: Any, known: np.ndarray, feature_map: np.ndarray) -> Tree:
    nodes = predictor.nodes
    leaf = nodes["is_leaf"].astype(bool)
    categorical = nodes["is_categorical"].astype(bool) & ~leaf
    missing_left = nodes["missing_go_to_left"].astype(bool)
    category = np.where(categorical, nodes["bitset_idx"].astype(np.intp), -1)
    raw_left = np.asarray(predictor.raw_left_cat_bitsets, dtype=np.uint32)
    bitsets = np.zeros((max(len(raw_left), 1), 8), dtype=np.uint32)
    if categorical.any():
        # A category goes left when in the node's left set; an unknown one goes as missing.
        for i in np.flatnonzero(categorical):
            row = int(category[i])
            known_row = known[feature_map[nodes["feature_idx"][i]]].astype(np.uint32)
            unknown = ~known_row if missing_left[i] else np.zeros(8, dtype=np.uint32)
            bitsets[row] = raw_left[row] | unknown
    return Tree(
        left=np.where(leaf, -1, nodes["left"].astype(np.intp)),
        right=np.where(leaf, -1, nodes["right"].astype(np.intp)),
        feature=nodes["feature_idx"].astype(np.intp),
        threshold=np.where(categorical, np.inf, nodes["num_threshold"]),
        nan_right=~missing_left,
        value=nodes["value"].astype(np.float64).reshape(-1, 1),
        category=category if categorical.any() else None,
        bitsets=bitsets if categorical.any() else None,
    )
