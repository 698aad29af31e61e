"""XGBoost, LightGBM and CatBoost models as :class:`TreeEnsembleArrays`, from their JSON dumps.

XGBoost compares float32 inputs with ``x < split_condition`` (stored here as the next float32
below it, so that the evaluator's ``x > threshold`` goes right) and sums leaf values in float32
from the base margin; its sigmoid and softmax are float32 too. LightGBM compares float64 inputs
with ``x <= threshold``, treats NaN as 0.0 where a node's missing type is "None", and sums in
float64 from zero (its init score is folded into the first trees). CatBoost's oblivious trees
compare float32 inputs with ``x > border`` and become complete trees; its sum is scaled and
shifted last. Anything else (DART, linear boosters or linear trees, XGBoost categorical splits,
LightGBM's zero-as-missing, CatBoost's categorical features) raises :class:`Unsupported`;
CatBoost's multiclass probabilities (its own approximate exp) fail the load-time check.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from modelpilot.runtime._tree_layout import Tree, Unsupported, assemble
from modelpilot_edge.kernels import TreeEnsembleArrays

__all__ = ["catboost_arrays", "lightgbm_arrays", "xgboost_arrays"]

_XGB_IDENTITY = {
    "reg:squarederror",
    "reg:absoluteerror",
    "reg:pseudohubererror",
    "reg:squaredlogerror",
}
_LGBM_IDENTITY = {"regression", "regression_l1", "huber", "fair", "quantile", "mape"}
_LGBM_EXP = {"poisson", "gamma", "tweedie"}


def xgboost_arrays(booster: Any) -> TreeEnsembleArrays:
    """The arrays of an ``xgboost.Booster`` (gbtree, one target), or :class:`Unsupported`."""
    learner = json.loads(bytes(booster.save_raw(raw_format="json")))["learner"]
    objective = learner["objective"]["name"]
    boosting = learner["gradient_booster"]
    if boosting["name"] != "gbtree":
        raise Unsupported(f"the {boosting['name']} booster (only gbtree is expressed)")
    params = learner["learner_model_param"]
    if int(params.get("num_target", "1")) != 1:
        raise Unsupported("a multi-target model")
    n_groups = max(int(params["num_class"]), 1)
    if objective == "binary:logistic":
        link, decision = "expit32", "half"
    elif objective == "multi:softprob":
        link, decision = "softmax32", "argmax_proba"
    elif objective in _XGB_IDENTITY:
        link, decision = "identity", "none"
    else:
        raise Unsupported(f"the objective {objective}")
    model = boosting["model"]
    groups: list[list[Tree]] = [[] for _ in range(n_groups)]
    for tree, group in zip(model["trees"], model["tree_info"], strict=True):
        groups[int(group)].append(_xgboost_tree(tree))
    scores = np.asarray(json.loads(params["base_score"]), dtype=np.float32).reshape(-1)
    base = np.broadcast_to(_xgboost_margin(objective, scores), (n_groups,))
    return assemble(
        [tree for group in groups for tree in group],
        n_features=int(params["num_feature"]),
        n_groups=n_groups,
        base=base.astype(np.float64),
        input_float32=True,
        sum_float32=True,
        link=link,
        decision=decision,
    )


def _xgboost_margin(objective: str, scores: np.ndarray) -> np.ndarray:
    if objective != "binary:logistic":
        return scores
    # ProbToMargin of the logistic objective: -logf(1.0f / base_score - 1.0f), in float32.
    one = np.float32(1.0)
    odds = (one / scores - one).astype(np.float32)
    result: np.ndarray = -np.log(odds.astype(np.float64)).astype(np.float32)
    return result


def _xgboost_tree(tree: dict[str, Any]) -> Tree:
    if any(tree["split_type"]):
        raise Unsupported("categorical splits of XGBoost")
    if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
        raise Unsupported("vector leaves")
    left = np.asarray(tree["left_children"], dtype=np.intp)
    conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
    # x < c  <=>  x <= (the float32 just below c), for float32 x.
    below = np.nextafter(conditions, np.float32(-np.inf))
    return Tree(
        left=left,
        right=np.asarray(tree["right_children"], dtype=np.intp),
        feature=np.asarray(tree["split_indices"], dtype=np.intp),
        threshold=below.astype(np.float64),
        nan_right=~np.asarray(tree["default_left"], dtype=bool),
        value=conditions.astype(np.float64).reshape(-1, 1),
    )


def lightgbm_arrays(booster: Any) -> TreeEnsembleArrays:
    """The arrays of a ``lightgbm.Booster``, or :class:`Unsupported`."""
    dump = booster.dump_model()
    objective, *options = str(dump["objective"]).split()
    n_groups = int(dump["num_tree_per_iteration"])
    scale = 1.0
    if objective == "binary":
        link, decision = "expit", "argmax_proba"
        for option in options:
            if option.startswith("sigmoid:"):
                scale = float(option.split(":", 1)[1])
    elif objective == "multiclass":
        link, decision = "softmax", "argmax_proba"
    elif objective in _LGBM_IDENTITY:
        link, decision = "identity", "none"
    elif objective in _LGBM_EXP:
        link, decision = "exp", "none"
    else:
        raise Unsupported(f"the objective {objective}")
    infos = dump["tree_info"]
    groups: list[list[Tree]] = [[] for _ in range(n_groups)]
    for index, info in enumerate(infos):
        groups[index % n_groups].append(_lightgbm_tree(info["tree_structure"]))
    n_iterations = len(infos) // n_groups
    return assemble(
        [tree for group in groups for tree in group],
        n_features=int(dump["max_feature_idx"]) + 1,
        n_groups=n_groups,
        base=np.zeros(n_groups),
        divisor=float(n_iterations) if dump.get("average_output") else 1.0,
        allow_inf=True,
        link=link,
        link_scale=scale,
        decision=decision,
        negative_category_missing=False,
        # LightGBM's row reader keeps only |x| > kZeroThreshold (1e-35f): the rest is 0.0.
        zero_threshold=float(np.float32(1e-35)),
    )


def _lightgbm_tree(root: dict[str, Any]) -> Tree:
    nodes: list[dict[str, Any]] = []
    children: list[list[int]] = []

    def visit(node: dict[str, Any]) -> int:
        index = len(nodes)
        nodes.append(node)
        children.append([-1, -1])
        if "leaf_value" not in node:
            children[index] = [visit(node["left_child"]), visit(node["right_child"])]
        elif "leaf_coeff" in node:
            raise Unsupported("linear trees")
        return index

    visit(root)
    n = len(nodes)
    feature = np.zeros(n, dtype=np.intp)
    threshold = np.full(n, np.inf)
    nan_right = np.zeros(n, dtype=bool)
    value = np.zeros((n, 1))
    category = np.full(n, -1, dtype=np.intp)
    sets: list[list[int]] = []
    for i, node in enumerate(nodes):
        if "leaf_value" in node:
            value[i, 0] = float(node["leaf_value"])
            continue
        feature[i] = int(node["split_feature"])
        missing = node["missing_type"]
        if missing == "Zero":
            raise Unsupported("zero as missing (zero_as_missing=True)")
        if node["decision_type"] == "==":
            category[i] = len(sets)
            sets.append([int(c) for c in str(node["threshold"]).split("||")])
            nan_right[i] = True
            continue
        threshold[i] = float(node["threshold"])
        # Missing type "None": NaN is taken as 0.0 and compared like any value.
        nan_right[i] = (not node["default_left"]) if missing == "NaN" else 0.0 > threshold[i]
    bitsets = None
    if sets:
        words = max(max(s) for s in sets) // 32 + 1
        bitsets = np.zeros((len(sets), words), dtype=np.uint32)
        for row, members in enumerate(sets):
            for c in members:
                bitsets[row, c >> 5] |= np.uint32(1 << (c & 31))
    return Tree(
        left=np.array([c[0] for c in children], dtype=np.intp),
        right=np.array([c[1] for c in children], dtype=np.intp),
        feature=feature,
        threshold=threshold,
        nan_right=nan_right,
        value=value,
        category=category if sets else None,
        bitsets=bitsets,
    )


_CATBOOST_IDENTITY = {"RMSE", "MAE", "Quantile", "MAPE", "Huber", "Lq", "Expectile"}


def catboost_arrays(model: Any) -> TreeEnsembleArrays:
    """The arrays of a CatBoost model with float features only (oblivious trees: split ``j``
    of a tree sets bit ``j`` of the leaf's index when ``x > border``), or :class:`Unsupported`."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.json"
        model.save_model(str(path), format="json")
        dump = json.loads(path.read_text(encoding="utf-8"))
    info = dump["features_info"]
    if info.get("categorical_features") or info.get("text_features"):
        raise Unsupported("categorical or text features of CatBoost")
    loss = str(dump["model_info"].get("params", {}).get("loss_function", {}).get("type", ""))
    if loss in {"Logloss", "CrossEntropy"}:
        link, decision = "expit", "argmax_proba"
    elif loss == "MultiClass":
        link, decision = "softmax", "argmax_proba"
    elif loss in _CATBOOST_IDENTITY:
        link, decision = "identity", "none"
    else:
        raise Unsupported(f"the loss {loss or 'unknown'}")
    floats = {f["feature_index"]: f for f in info["float_features"]}
    scale, biases = dump.get("scale_and_bias", [1.0, [0.0]])
    trees = [_oblivious_tree(tree, floats) for tree in dump["oblivious_trees"]]
    n_values = trees[0].value.shape[1]
    if len(set(biases)) > 1:
        raise Unsupported("a bias per class")
    width = 1 + max((f["flat_feature_index"] for f in floats.values()), default=-1)
    return assemble(
        trees,
        n_features=width,
        base=np.zeros(n_values),
        input_float32=True,
        link=link,
        decision=decision,
        post_scale=float(scale),
        post_bias=float(biases[0]) if biases else 0.0,
    )


def _oblivious_tree(tree: dict[str, Any], floats: dict[int, dict[str, Any]]) -> Tree:
    splits = tree.get("splits", [])
    depth = len(splits)
    if any(s.get("split_type") != "FloatFeature" for s in splits):
        raise Unsupported("splits other than on float features")
    leaves = np.asarray(tree["leaf_values"], dtype=np.float64).reshape(2**depth, -1)
    n_internal = 2**depth - 1
    n = n_internal + 2**depth
    left = np.full(n, -1, dtype=np.intp)
    right = np.full(n, -1, dtype=np.intp)
    feature = np.zeros(n, dtype=np.intp)
    threshold = np.full(n, np.inf)
    nan_right = np.zeros(n, dtype=bool)
    value = np.zeros((n, leaves.shape[1]))
    # Heap order: the root decides the leaf index's highest bit (the last split).
    for level in range(depth):
        split = splits[depth - 1 - level]
        described = floats[split["float_feature_index"]]
        for position in range(2**level):
            node = 2**level - 1 + position
            left[node] = 2 ** (level + 1) - 1 + 2 * position
            right[node] = left[node] + 1
            feature[node] = described["flat_feature_index"]
            threshold[node] = float(np.float32(split["border"]))
            nan_right[node] = described.get("nan_value_treatment") == "AsTrue"
    value[n_internal:] = leaves
    return Tree(left, right, feature, threshold, nan_right, value)
