"""scikit-learn estimators: skops files (safe), joblib/pickle files (only when trusted)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from modelpilot.errors import ArtifactError, UntrustedArtifactError
from modelpilot.runtime._kernels import LinearKernel
from modelpilot.runtime._protocol import ModelInput, column_positions
from modelpilot.runtime._sklearn_kernels import sklearn_kernel
from modelpilot.runtime._tree_kernel import TreeKernel


class SklearnRuntime:
    """Wraps any object with a scikit-learn style ``predict`` (and maybe ``predict_proba``)."""

    def __init__(self, estimator: Any, *, flavor: str) -> None:
        if not callable(getattr(estimator, "predict", None)):
            raise ArtifactError(
                f"the loaded {flavor} object is a {type(estimator).__name__}, which has no "
                "predict method; save a fitted scikit-learn estimator or pipeline"
            )
        self.estimator = estimator
        self.flavor = flavor
        classes = getattr(estimator, "classes_", None)
        self.classes: list[object] | None = (
            [c.item() if hasattr(c, "item") else c for c in classes]
            if classes is not None
            else None
        )
        self._has_proba = self.classes is not None and callable(
            getattr(estimator, "predict_proba", None)
        )
        names = getattr(estimator, "feature_names_in_", None)
        self.feature_names: list[str] | None = (
            [str(n) for n in names] if names is not None else None
        )
        # A model fitted on an array takes the server's 2-D array of numeric features as is.
        self.accepts_array = self.feature_names is None
        final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
        self._classes_array = np.asarray(classes) if classes is not None else None
        self._proba_decides = (
            self._has_proba
            and type(final).__module__.startswith("sklearn.")
            and type(final).__name__ in _ARGMAX_CLASSIFIERS
            and self._classes_array is not None
            and self._classes_array.ndim == 1
        )
        # Linear and tree models answer through exact NumPy kernels (see _kernels.py for why).
        self.kernel: LinearKernel | TreeKernel | None = sklearn_kernel(estimator)
        self._take: np.ndarray | None = None
        self._named_arrays = False

    def bind_columns(self, columns: list[str]) -> None:
        """Take 2-D arrays whose columns are ``columns`` (the project's features, in order).

        A model fitted on a DataFrame then answers the server's arrays too: its own columns
        are picked from them by position, without building a DataFrame per batch.
        """
        fits, self._take = column_positions(self.feature_names, columns)
        if fits:
            self._named_arrays = self.accepts_array = True

    def _input(self, frame: ModelInput) -> Any:
        # A model fitted on a DataFrame wants the same columns in the same order; one fitted on
        # an array wants an array (and scikit-learn warns when handed names it never saw).
        if isinstance(frame, np.ndarray):
            if self.feature_names is None:
                return frame
            if not self._named_arrays:
                raise TypeError("this model was fitted on named columns: pass a DataFrame")
            picked = frame if self._take is None else frame[:, self._take]
            # The Fortran order a DataFrame's values have: the answers (BLAS sums in another
            # order for another layout) are those for the DataFrame it stands for (_kernels.py).
            return np.asfortranarray(picked)
        if self.feature_names is not None:
            if list(frame.columns) == self.feature_names:
                return frame  # already the model's columns in its order (selecting copies)
            return frame[self.feature_names]
        return frame.to_numpy()

    def _kernel_answers(self, data: Any) -> tuple[np.ndarray, np.ndarray | None] | None:
        """The kernel's answers for ``data`` (what the estimator would get), if it takes it."""
        kernel = self.kernel
        if kernel is None:
            return None
        if isinstance(data, pd.DataFrame):
            array = kernel.from_frame(data)
        elif isinstance(data, np.ndarray):
            array = kernel.from_array(data)
        else:
            return None
        return None if array is None else kernel.answer(array)

    def _estimator_input(self, data: Any) -> Any:
        if isinstance(data, np.ndarray) and self.feature_names is not None:
            return pd.DataFrame(data, columns=self.feature_names, copy=False)
        return data

    def predict(self, frame: ModelInput) -> np.ndarray:
        data = self._input(frame)
        answers = self._kernel_answers(data)
        if answers is not None:
            return answers[0]
        return np.asarray(self.estimator.predict(self._estimator_input(data)))

    def predict_proba(self, frame: ModelInput) -> np.ndarray | None:
        if not self._has_proba:
            return None
        data = self._input(frame)
        answers = self._kernel_answers(data)
        if answers is not None:
            return answers[1]
        return np.asarray(self.estimator.predict_proba(self._estimator_input(data)))

    def predict_with_proba(self, frame: ModelInput) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions and class probabilities, with one model call where that is exact.

        For the classifiers in ``_ARGMAX_CLASSIFIERS``, scikit-learn's ``predict`` is the
        class of highest ``predict_proba``, so one call gives both (half the work of a
        micro-batch). Others (SVC's Platt scaling, tuned thresholds, random dummies) answer
        ``predict`` their own way and get both calls.

        Examples
        --------
        >>> from sklearn.linear_model import LogisticRegression
        >>> X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array(["a", "a", "b", "b"])
        >>> runtime = SklearnRuntime(LogisticRegression().fit(X, y), flavor="skops")
        >>> predictions, proba = runtime.predict_with_proba(X)
        >>> predictions.tolist(), proba.shape
        (['a', 'a', 'b', 'b'], (4, 2))
        """
        data = self._input(frame)
        answers = self._kernel_answers(data)
        if answers is not None:
            return answers
        data = self._estimator_input(data)
        if not self._has_proba:
            return np.asarray(self.estimator.predict(data)), None
        proba = np.asarray(self.estimator.predict_proba(data))
        if self._proba_decides and proba.ndim == 2 and self._classes_array is not None:
            labels = self._classes_array[proba.argmax(axis=1)]
            # Where two classes share the top probability, rounding may have made the tie
            # (a decision of 1e-20 is a probability of exactly 0.5): predict decides those rows.
            tied = (proba == proba.max(axis=1, keepdims=True)).sum(axis=1) > 1
            if tied.any():
                rows = data.iloc[tied] if isinstance(data, pd.DataFrame) else data[tied]
                labels[tied] = np.asarray(self.estimator.predict(rows))
            return labels, proba
        return np.asarray(self.estimator.predict(data)), proba


# scikit-learn classifiers whose ``predict`` is ``classes_[argmax(predict_proba)]`` wherever the
# top probability is one class's alone (rows with a tie ask ``predict``). Not
# GradientBoostingClassifier: its binary ``predict`` sends a tie to class 1.
_ARGMAX_CLASSIFIERS = frozenset(
    {
        "AdaBoostClassifier",
        "BaggingClassifier",
        "BernoulliNB",
        "CalibratedClassifierCV",
        "CategoricalNB",
        "ComplementNB",
        "DecisionTreeClassifier",
        "ExtraTreeClassifier",
        "ExtraTreesClassifier",
        "GaussianNB",
        "HistGradientBoostingClassifier",
        "LinearDiscriminantAnalysis",
        "LogisticRegression",
        "LogisticRegressionCV",
        "MultinomialNB",
        "QuadraticDiscriminantAnalysis",
        "RandomForestClassifier",
    }
)


# Classes of the libraries whose fitted models are made of them: scikit-learn, NumPy, and the
# boosting libraries' scikit-learn wrappers with their boosters (XGBClassifier holds an
# xgboost.core.Booster, restored from its own model bytes). They are library code, not the
# user's, as scikit-learn's own are. An OrderedDict is a plain container (LightGBM's).
_SAFE_PREFIXES = ("sklearn.", "numpy.", "xgboost.", "lightgbm.", "catboost.")
_SAFE_TYPES = frozenset({"collections.OrderedDict"})


def load_skops(path: Path, *, trust: bool) -> SklearnRuntime:
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
        # skops leaves some of scikit-learn's own internals (e.g. the TreePredictor of
        # HistGradientBoosting) off its default list, and the boosting libraries' classes.
        # Those are what a fitted estimator is made of, not user code, so we accept them;
        # anything else (a custom transformer, a function) still needs an explicit --trust.
        foreign = [
            t for t in untrusted if not t.startswith(_SAFE_PREFIXES) and t not in _SAFE_TYPES
        ]
        if foreign and not trust:
            raise ArtifactError(
                f"{path.name} contains types skops does not trust by default: "
                f"{', '.join(foreign)}; pass --trust if you know where this file comes from"
            )
        estimator = sio.load(path, trusted=untrusted if untrusted else None)
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(f"{path.name} is not a loadable skops file ({exc})") from None
    return SklearnRuntime(estimator, flavor="skops")


def load_pickle(path: Path, *, trust: bool) -> SklearnRuntime:
    if not trust:
        raise UntrustedArtifactError(str(path.name))
    try:
        if path.suffix == ".joblib":
            estimator = joblib.load(path)
        else:
            with open(path, "rb") as handle:
                estimator = pickle.load(handle)
    except Exception as exc:
        raise ArtifactError(f"{path.name} cannot be unpickled ({exc})") from None
    return SklearnRuntime(estimator, flavor="joblib" if path.suffix == ".joblib" else "pickle")
