"""``predict_with_proba``: both answers of a classifier, from one model call where that is exact.

For the classifiers the runtime trusts to predict the class of highest probability, it makes one
``predict_proba`` call and takes the argmax; every other model gets both calls. Either way the
answer must be exactly ``(estimator.predict(X), estimator.predict_proba(X))``: the labels (strings
or integers that are not 0..k-1), their types, and the probabilities.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_classification
from sklearn.discriminant_analysis import (
    LinearDiscriminantAnalysis,
    QuadraticDiscriminantAnalysis,
)
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingClassifier,
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.naive_bayes import (
    BernoulliNB,
    CategoricalNB,
    ComplementNB,
    GaussianNB,
    MultinomialNB,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier, ExtraTreeClassifier

from modelpilot.runtime import load_runtime
from modelpilot.runtime._sklearn import _ARGMAX_CLASSIFIERS

#: Each classifier of the one-call set (and any that left it), small enough to fit in
#: milliseconds, and whether it needs non-negative integer features (the multinomial and
#: categorical naive Bayes).
CLASSIFIERS: dict[str, tuple[Callable[[], BaseEstimator], bool]] = {
    "AdaBoostClassifier": (lambda: AdaBoostClassifier(n_estimators=10, random_state=0), False),
    "BaggingClassifier": (lambda: BaggingClassifier(n_estimators=5, random_state=0), False),
    "BernoulliNB": (BernoulliNB, False),
    "CalibratedClassifierCV": (lambda: CalibratedClassifierCV(GaussianNB(), cv=3), False),
    "CategoricalNB": (CategoricalNB, True),
    "ComplementNB": (ComplementNB, True),
    "DecisionTreeClassifier": (lambda: DecisionTreeClassifier(random_state=0), False),
    "ExtraTreeClassifier": (lambda: ExtraTreeClassifier(random_state=0), False),
    "ExtraTreesClassifier": (lambda: ExtraTreesClassifier(n_estimators=10, random_state=0), False),
    "GaussianNB": (GaussianNB, False),
    "GradientBoostingClassifier": (
        lambda: GradientBoostingClassifier(n_estimators=10, random_state=0),
        False,
    ),
    "HistGradientBoostingClassifier": (
        lambda: HistGradientBoostingClassifier(max_iter=5, random_state=0),
        False,
    ),
    "LinearDiscriminantAnalysis": (LinearDiscriminantAnalysis, False),
    "LogisticRegression": (LogisticRegression, False),
    "LogisticRegressionCV": (
        lambda: LogisticRegressionCV(
            Cs=3, cv=3, l1_ratios=(0.0,), scoring="neg_log_loss", use_legacy_attributes=False
        ),
        False,
    ),
    "MultinomialNB": (MultinomialNB, True),
    "QuadraticDiscriminantAnalysis": (QuadraticDiscriminantAnalysis, False),
    "RandomForestClassifier": (
        lambda: RandomForestClassifier(n_estimators=10, random_state=0),
        False,
    ),
}
#: Labels of two and three classes: integers that are not class indices, and strings.
LABELS = {
    "binary-int": np.array([-1, 1]),
    "binary-str": np.array(["no", "yes"]),
    "multiclass-int": np.array([3, 7, 11]),
    "multiclass-str": np.array(["ant", "bee", "cat"]),
}


def _data(labels: np.ndarray, *, counts: bool) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(
        n_samples=150,
        n_features=4,
        n_informative=3,
        n_redundant=0,
        n_classes=len(labels),
        n_clusters_per_class=1,
        random_state=0,
    )
    if counts:  # what the multinomial and categorical models take: small non-negative integers
        X = np.floor(np.abs(X) * 2)
    return X, labels[y]


def _runtime(estimator: Any, directory: Path) -> Any:
    """The estimator as the server loads it: a joblib file through ``load_runtime``."""
    path = directory / "model.joblib"
    joblib.dump(estimator, path)
    return load_runtime(path, trust=True)


def _assert_same_answers(runtime: Any, estimator: Any, X: Any) -> None:
    predictions, proba = runtime.predict_with_proba(X)
    expected = estimator.predict(X)
    assert predictions.tolist() == expected.tolist()  # the labels and their Python types
    assert predictions.dtype == expected.dtype
    np.testing.assert_array_equal(proba, estimator.predict_proba(X))


def test_every_one_call_classifier_has_a_case_here() -> None:
    assert set(_ARGMAX_CLASSIFIERS) <= set(CLASSIFIERS)


@pytest.mark.parametrize("labels", list(LABELS), ids=list(LABELS))
@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_one_call_gives_what_predict_and_predict_proba_give(
    name: str, labels: str, tmp_path: Path
) -> None:
    make, counts = CLASSIFIERS[name]
    X, y = _data(LABELS[labels], counts=counts)
    estimator = make().fit(X, y)
    _assert_same_answers(_runtime(estimator, tmp_path), estimator, X)


def test_a_pipeline_fitted_on_a_frame_gives_the_same_answers_too(tmp_path: Path) -> None:
    import pandas as pd

    X, y = _data(LABELS["multiclass-str"], counts=False)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    estimator = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, y)
    _assert_same_answers(_runtime(estimator, tmp_path), estimator, frame)


#: Classifiers that fit on data no feature separates: every probability is a tie.
TIES = [
    "BaggingClassifier",
    "BernoulliNB",
    "CalibratedClassifierCV",
    "CategoricalNB",
    "ComplementNB",
    "DecisionTreeClassifier",
    "ExtraTreeClassifier",
    "ExtraTreesClassifier",
    "GaussianNB",
    "GradientBoostingClassifier",
    "HistGradientBoostingClassifier",
    "LogisticRegression",
    "MultinomialNB",
    "RandomForestClassifier",
]


@pytest.mark.parametrize("name", TIES)
def test_a_tie_between_two_classes_is_broken_the_way_predict_breaks_it(
    name: str, tmp_path: Path
) -> None:
    # Two groups of rows, each half "a", half "b": the model can only answer 50/50.
    X = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]] * 10)
    y = np.array(["a", "b", "a", "b"] * 10)
    estimator = CLASSIFIERS[name][0]().fit(X, y)
    _assert_same_answers(_runtime(estimator, tmp_path), estimator, X)


@pytest.mark.parametrize("name", ["LogisticRegression", "LinearDiscriminantAnalysis"])
def test_a_tie_made_by_rounding_is_decided_by_predict(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decision of 1e-20 is class "b" for ``predict``, but its probabilities round to exactly
    0.5 and 0.5, whose argmax is "a"."""
    monkeypatch.setenv("MODELPILOT_NUMPY_KERNELS", "0")  # the one-call path, not the kernel
    X = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]] * 3)
    estimator = CLASSIFIERS[name][0]().fit(X, np.array(["a", "a", "b", "b"] * 3))
    runtime = _runtime(estimator, tmp_path)
    nudged = np.array([[0.0, 0.0], [2.0, 1.0], [0.0, 0.0]])
    # Move the boundary through the origin, a hair to the "b" side: a rounded tie there.
    estimator.coef_[:] = [[1.0, 0.0]]
    estimator.intercept_[:] = 1e-20
    runtime = _runtime(estimator, tmp_path)
    assert estimator.predict_proba(nudged)[0].tolist() == [0.5, 0.5]
    assert estimator.predict(nudged).tolist() == ["b", "b", "b"]
    _assert_same_answers(runtime, estimator, nudged)


def _svc() -> Any:
    with warnings.catch_warnings():  # SVC's own probabilities are deprecated in scikit-learn 1.9
        warnings.simplefilter("ignore", FutureWarning)
        X, y = make_classification(
            n_samples=150, n_features=4, n_informative=3, n_redundant=0, flip_y=0.2, random_state=0
        )
        return SVC(probability=True, random_state=0).fit(X, y), X


def test_svc_whose_predict_is_not_the_argmax_gets_its_own_predict(tmp_path: Path) -> None:
    svc, X = _svc()
    argmax = svc.classes_[svc.predict_proba(X).argmax(axis=1)]
    assert (svc.predict(X) != argmax).any()  # Platt scaling disagrees with predict somewhere
    _assert_same_answers(_runtime(svc, tmp_path), svc, X)


def test_a_stratified_dummy_draws_its_predictions_apart_from_its_probabilities(
    tmp_path: Path,
) -> None:
    X, y = _data(LABELS["binary-str"], counts=False)
    seeded = DummyClassifier(strategy="stratified", random_state=0).fit(X, y)
    _assert_same_answers(_runtime(seeded, tmp_path), seeded, X)
    # Unseeded, predict draws again: with one call per answer, predictions would always be the
    # argmax of the probabilities; with two, about half of 150 rows differ from it.
    unseeded = DummyClassifier(strategy="stratified").fit(X, y)
    predictions, proba = _runtime(unseeded, tmp_path).predict_with_proba(X)
    assert set(predictions) <= {"no", "yes"}
    assert (predictions != unseeded.classes_[proba.argmax(axis=1)]).any()


def test_a_model_without_probabilities_gets_none(tmp_path: Path) -> None:
    X, y = _data(LABELS["binary-int"], counts=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        svc = SVC().fit(X, y)
    predictions, proba = _runtime(svc, tmp_path).predict_with_proba(X)
    assert proba is None
    assert predictions.tolist() == svc.predict(X).tolist()
