"""Native XGBoost, LightGBM and CatBoost model files (the ``xgboost``, ``lightgbm``, ``catboost``
extras). These formats hold trees and numbers, no code, so they load without ``--trust``.

Class labels: a native booster stores no labels for XGBoost and LightGBM, which train only on
labels ``0 .. n_classes - 1``; those integers are its classes (map them to names in the
project's data, or save the scikit-learn wrapper with skops to keep string labels). CatBoost
stores its class names in the file; they are used as they are.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelpilot.errors import ArtifactError
from modelpilot.runtime._kernels import kernels_enabled
from modelpilot.runtime._protocol import ModelInput, column_positions
from modelpilot.runtime._tree_kernel import Answers, TreeKernel, checked_kernel
from modelpilot.runtime._tree_layout import Unsupported
from modelpilot_edge.kernels import TreeEnsembleArrays

__all__ = ["BoosterRuntime", "load_catboost", "load_lightgbm", "load_xgboost"]

logger = logging.getLogger("modelpilot.runtime")


def _library(module: str, extra: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ArtifactError(
            f"{what} models need the {module} package: pip install 'modelpilot[{extra}]'"
        ) from None


class BoosterRuntime:
    """A native booster behind the runtime protocol, answering through an exact tree kernel
    where it has one and through the library otherwise.

    ``answer`` is the library's own prediction on a float64 array in the model's column order;
    ``arrays`` builds the kernel's arrays (or raises :class:`Unsupported`).
    """

    def __init__(
        self,
        *,
        flavor: str,
        answer: Callable[[np.ndarray], Answers],
        n_features: int,
        classes: list[object] | None,
        feature_names: list[str] | None,
        categorical: list[str] | None = None,
        arrays: Callable[[], TreeEnsembleArrays] | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.flavor = flavor
        self.classes = classes
        self.n_features = n_features
        self.feature_names = feature_names
        self.categorical_features = categorical or []
        self._answer = answer
        self._take: np.ndarray | None = None
        # A model without names takes the server's array of numeric features as it is.
        self.accepts_array = feature_names is None
        self.kernel: TreeKernel | None = None
        if arrays is not None and kernels_enabled(environ):
            self.kernel = self._checked_kernel(arrays, environ)

    def _checked_kernel(
        self, arrays: Callable[[], TreeEnsembleArrays], environ: Mapping[str, str]
    ) -> TreeKernel | None:
        try:
            built = arrays()
        except Unsupported as exc:
            logger.info(
                "no tree kernel for this %s model: %s; the library answers", self.flavor, exc
            )
            return None
        kernel = TreeKernel(
            built,
            classes=None if self.classes is None else np.asarray(self.classes),
            proba_dtype=np.float32 if built.sum_float32 else None,
        )
        name = f"this {self.flavor} model"
        return checked_kernel(kernel, self._answer, name=name, environ=environ)

    def bind_columns(self, columns: list[str]) -> None:
        """Take 2-D arrays whose columns are ``columns`` (the project's features, in order)."""
        fits, self._take = column_positions(self.feature_names, columns)
        self.accepts_array = self.accepts_array or fits

    def _array(self, frame: ModelInput) -> np.ndarray:
        if isinstance(frame, np.ndarray):
            if self.feature_names is not None and not self.accepts_array:
                raise TypeError("this model has named features: pass a DataFrame")
            array = frame if self._take is None else frame[:, self._take]
        else:
            columns = frame[self.feature_names] if self.feature_names is not None else frame
            array = columns.to_numpy(dtype=np.float64)
        return np.ascontiguousarray(array, dtype=np.float64)

    def predict_with_proba(self, frame: ModelInput) -> Answers:
        """Predictions and class probabilities (None for a regressor), from one model call."""
        array = self._array(frame)
        answers = self.kernel.answer(array) if self.kernel is not None else None
        return answers if answers is not None else self._answer(array)

    def predict(self, frame: ModelInput) -> np.ndarray:
        return self.predict_with_proba(frame)[0]

    def predict_proba(self, frame: ModelInput) -> np.ndarray | None:
        return self.predict_with_proba(frame)[1]


def _labels(classes: list[object], index: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.asarray(classes)[index]
    return result


# ---- XGBoost ----------------------------------------------------------------------------


def load_xgboost(path: Path, *, trust: bool) -> BoosterRuntime:
    del trust  # a JSON/UBJSON booster holds no code
    xgb = _library("xgboost", "xgboost", "XGBoost")
    booster = xgb.Booster()
    try:
        booster.load_model(str(path))
        booster.set_param({"nthread": 1})
        objective, n_classes = _xgboost_task(booster)
        n_features = booster.num_features()
    except Exception as exc:
        raise ArtifactError(f"{path.name} is not a loadable XGBoost model ({exc})") from None
    classes: list[object] | None = list(range(n_classes)) if n_classes else None
    if objective.startswith(("binary:", "multi:")) and objective not in {
        "binary:logistic",
        "multi:softprob",
    }:
        raise ArtifactError(
            f"{path.name}: the XGBoost objective {objective} gives no probabilities; "
            "train with binary:logistic or multi:softprob"
        )

    def answer(X: np.ndarray) -> Answers:
        out = np.asarray(booster.inplace_predict(X))
        if classes is None:
            return out, None
        if out.ndim == 1:  # binary:logistic: the probability of class 1 (XGBClassifier)
            proba = np.stack([1 - out, out], axis=1)
            return _labels(classes, (out > 0.5).astype(np.intp)), proba
        return _labels(classes, out.argmax(axis=1)), out

    from modelpilot.runtime._extract_boosters import xgboost_arrays

    types = booster.feature_types or []
    names = booster.feature_names
    return BoosterRuntime(
        flavor="xgboost",
        answer=answer,
        n_features=n_features,
        classes=classes,
        feature_names=list(names) if names else None,
        categorical=[n for n, t in zip(names or [], types, strict=False) if t == "c"],
        arrays=lambda: xgboost_arrays(booster),
    )


def _xgboost_task(booster: Any) -> tuple[str, int]:
    """The objective's name and the number of classes (0 for regression)."""
    learner = json.loads(booster.save_config())["learner"]
    objective = str(learner["objective"]["name"])
    if objective.startswith("binary:"):
        return objective, 2
    if objective.startswith("multi:"):
        return objective, int(learner["learner_model_param"]["num_class"])
    return objective, 0


# ---- LightGBM ---------------------------------------------------------------------------

_LIGHTGBM_UNSUPPORTED = frozenset(
    {"multiclassova", "cross_entropy", "cross_entropy_lambda", "lambdarank", "rank_xendcg"}
)


def load_lightgbm(path: Path, *, trust: bool) -> BoosterRuntime:
    del trust  # a LightGBM text model holds no code
    lgb = _library("lightgbm", "lightgbm", "LightGBM")
    try:
        booster = lgb.Booster(model_file=str(path))
        objective = str(booster.dump_model(num_iteration=1)["objective"]).split()[0]
        names = booster.feature_name()
        n_features = booster.num_feature()
        n_per_iteration = int(booster.num_model_per_iteration())
    except Exception as exc:
        raise ArtifactError(f"{path.name} is not a loadable LightGBM model ({exc})") from None
    if objective in _LIGHTGBM_UNSUPPORTED:
        raise ArtifactError(
            f"{path.name}: the LightGBM objective {objective} is not supported; use binary, "
            "multiclass or a regression objective"
        )
    n_classes = {"binary": 2, "multiclass": n_per_iteration}.get(objective, 0)
    classes: list[object] | None = list(range(n_classes)) if n_classes else None
    unnamed = all(name == f"Column_{i}" for i, name in enumerate(names))

    def answer(X: np.ndarray) -> Answers:
        out = np.asarray(booster.predict(X, num_threads=1))
        if classes is None:
            return out, None
        proba = np.stack([1.0 - out, out], axis=1) if out.ndim == 1 else out
        return _labels(classes, proba.argmax(axis=1)), proba

    from modelpilot.runtime._extract_boosters import lightgbm_arrays

    return BoosterRuntime(
        flavor="lightgbm",
        answer=answer,
        n_features=n_features,
        classes=classes,
        feature_names=None if unnamed else list(names),
        arrays=lambda: lightgbm_arrays(booster),
    )


# ---- CatBoost ---------------------------------------------------------------------------


def load_catboost(path: Path, *, trust: bool) -> BoosterRuntime:
    del trust  # a .cbm model holds no code
    catboost = _library("catboost", "catboost", "CatBoost")
    model = catboost.CatBoost()
    try:
        model.load_model(str(path))
        params = model.get_all_params()
        names = list(model.feature_names_)
        n_features = len(names)
        cat_indices = list(model.get_cat_feature_indices())
    except Exception as exc:
        raise ArtifactError(f"{path.name} is not a loadable CatBoost model ({exc})") from None
    loss = str(params.get("loss_function", "RMSE")).split(":")[0]
    classifier = loss in {"Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll"}
    classes: list[object] | None = None
    if classifier:
        stored = getattr(model, "classes_", None)
        stored = [] if stored is None else list(stored)
        classes = [c.item() if hasattr(c, "item") else c for c in stored] or [0, 1]
    unnamed = all(name == str(i) for i, name in enumerate(names))

    def answer(X: np.ndarray) -> Answers:
        data: Any = X
        if cat_indices:
            data = pd.DataFrame(X, columns=names)
        if classes is None:
            return np.asarray(model.predict(data, thread_count=1)), None
        proba = np.asarray(model.predict(data, prediction_type="Probability", thread_count=1))
        return _labels(classes, proba.argmax(axis=1)), proba

    from modelpilot.runtime._extract_boosters import catboost_arrays

    return BoosterRuntime(
        flavor="catboost",
        answer=answer,
        n_features=n_features,
        classes=classes,
        feature_names=None if unnamed else names,
        categorical=[names[i] for i in cat_indices],
        arrays=lambda: catboost_arrays(model),
    )
