"""Loading models behind one protocol: skops (safe), joblib/pickle (trusted), ONNX, MLflow."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from types import ModuleType

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import make_column_transformer
from sklearn.datasets import make_classification
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from modelpilot.errors import ArtifactError, NotFoundError, UntrustedArtifactError
from modelpilot.runtime import ModelRuntime, detect_flavor, load_runtime


class ShiftedMean(RegressorMixin, BaseEstimator):
    """A user's own estimator: skops must not load it unless the user trusts the file."""

    def __init__(self, shift: float = 0.0) -> None:
        self.shift = shift

    def fit(self, X: np.ndarray, y: np.ndarray) -> ShiftedMean:
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.mean_ + self.shift)


@pytest.fixture(scope="module")
def classification() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = make_classification(n_samples=300, n_features=4, random_state=0)
    return pd.DataFrame(X.astype(np.float32), columns=["a", "b", "c", "d"]), y


# ---- skops ----------------------------------------------------------------------------


def test_skops_pipeline_loads_without_trust(
    house_model_file: Path, house_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    runtime = load_runtime(house_model_file)
    assert isinstance(runtime, ModelRuntime)
    assert (runtime.flavor, runtime.classes) == ("skops", None)
    features = house_data[1].drop(columns="price")
    expected = sio.load(house_model_file, trusted=sio.get_untrusted_types(file=house_model_file))
    np.testing.assert_array_equal(runtime.predict(features), expected.predict(features))
    assert runtime.predict_proba(features) is None
    # Columns are matched by name, whatever order the caller has them in.
    np.testing.assert_array_equal(
        runtime.predict(features[features.columns[::-1]]), expected.predict(features)
    )


def test_skops_classifier_exposes_plain_classes(
    tmp_path: Path, classification: tuple[pd.DataFrame, np.ndarray]
) -> None:
    X, y = classification
    path = tmp_path / "clf.skops"
    model = LogisticRegression().fit(X, y)
    sio.dump(model, path)
    runtime = load_runtime(path)
    assert runtime.classes == [0, 1] and all(type(c) is int for c in runtime.classes)
    np.testing.assert_allclose(runtime.predict_proba(X), model.predict_proba(X))


def test_model_fitted_on_arrays_gets_arrays(tmp_path: Path) -> None:
    # scikit-learn warns (an error here) when a model fitted without names is handed a frame.
    path = tmp_path / "array.skops"
    sio.dump(LinearRegression().fit(np.array([[0.0], [1.0], [2.0]]), [1.0, 3.0, 5.0]), path)
    runtime = load_runtime(path)
    np.testing.assert_allclose(runtime.predict(pd.DataFrame({"x": [3.0]})), [7.0])


def test_skops_with_a_custom_class_needs_trust(tmp_path: Path) -> None:
    path = tmp_path / "custom.skops"
    sio.dump(ShiftedMean(shift=1.0).fit(np.zeros((4, 1)), np.array([1.0, 2.0, 3.0, 4.0])), path)
    with pytest.raises(
        ArtifactError,
        match=r"custom\.skops contains types skops does not trust "
        r"by default: .*ShiftedMean; pass --trust",
    ):
        load_runtime(path)
    runtime = load_runtime(path, trust=True)
    np.testing.assert_allclose(runtime.predict(pd.DataFrame({"x": [0.0, 5.0]})), [3.5, 3.5])


def test_a_corrupt_skops_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.skops"
    path.write_bytes(b"definitely not a zip archive")
    with pytest.raises(ArtifactError, match=r"broken\.skops is not a loadable skops file"):
        load_runtime(path)


# ---- joblib / pickle ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "flavor"), [(".joblib", "joblib"), (".pkl", "pickle"), (".pickle", "pickle")]
)
def test_pickle_formats_need_trust(tmp_path: Path, suffix: str, flavor: str) -> None:
    model = LinearRegression().fit(np.array([[0.0], [1.0]]), [0.0, 2.0])
    path = tmp_path / f"model{suffix}"
    if suffix == ".joblib":
        joblib.dump(model, path)
    else:
        path.write_bytes(pickle.dumps(model))
    with pytest.raises(
        UntrustedArtifactError,
        match=rf"model\{suffix} is a pickle/joblib file, "
        r"which can run arbitrary code when loaded; .*pass --trust",
    ):
        load_runtime(path)
    runtime = load_runtime(path, trust=True)
    assert runtime.flavor == flavor
    np.testing.assert_allclose(runtime.predict(pd.DataFrame({"x": [3.0]})), [6.0])


def test_untrusted_pickle_is_never_opened(tmp_path: Path) -> None:
    # Unpickling this would create a file; refusing must happen before reading it.
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(UntrustedArtifactError):
        load_runtime(path)
    assert not marker.exists()


def test_a_corrupt_pickle(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"not a pickle")
    with pytest.raises(ArtifactError, match=r"model\.pkl cannot be unpickled"):
        load_runtime(path, trust=True)


def test_a_pickled_object_without_predict(tmp_path: Path) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump({"weights": [1, 2]}, path)
    with pytest.raises(
        ArtifactError, match="the loaded joblib object is a dict, which has no predict method"
    ):
        load_runtime(path, trust=True)


# ---- formats --------------------------------------------------------------------------


def test_detect_flavor(tmp_path: Path) -> None:
    assert detect_flavor("m.SKOPS") == "skops"
    assert detect_flavor(Path("dir/m.onnx")) == "onnx"
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    assert detect_flavor(tmp_path) == "mlflow"


def test_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(
        ArtifactError,
        match=r"model\.h5: unknown model format '\.h5'; expected "
        r"\.skops",
    ):
        detect_flavor("model.h5")
    with pytest.raises(ArtifactError, match="is a directory without an MLmodel file"):
        detect_flavor(tmp_path)
    model = tmp_path / "m.skops"
    model.write_bytes(b"x")
    with pytest.raises(ArtifactError, match="unknown flavor 'tensorflow'; known: skops"):
        load_runtime(model, flavor="tensorflow")


def test_a_missing_artifact(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"artifact '.*gone\.onnx' was not found"):
        load_runtime(tmp_path / "gone.onnx")


# ---- ONNX -----------------------------------------------------------------------------


def _save_onnx(path: Path, onx: object) -> Path:
    path.write_bytes(onx.SerializeToString())  # type: ignore[attr-defined]
    return path


@pytest.mark.parametrize("zipmap", [True, False])
def test_onnx_classifier_agrees_with_scikit_learn(
    tmp_path: Path, classification: tuple[pd.DataFrame, np.ndarray], zipmap: bool
) -> None:
    from skl2onnx import to_onnx

    X, y = classification
    model = LogisticRegression().fit(X.to_numpy(), y)
    onx = to_onnx(model, X.to_numpy()[:1], options={"zipmap": zipmap})
    runtime = load_runtime(_save_onnx(tmp_path / "clf.onnx", onx))
    assert isinstance(runtime, ModelRuntime) and runtime.flavor == "onnx"
    np.testing.assert_array_equal(runtime.predict(X), model.predict(X.to_numpy()))
    np.testing.assert_allclose(
        runtime.predict_proba(X), model.predict_proba(X.to_numpy()), atol=1e-5
    )


def test_onnx_regressor_agrees_with_scikit_learn(
    tmp_path: Path, classification: tuple[pd.DataFrame, np.ndarray]
) -> None:
    from skl2onnx import to_onnx

    X = classification[0].to_numpy()
    model = LinearRegression().fit(X, X @ np.array([1.0, -2.0, 0.5, 3.0]) + 10)
    runtime = load_runtime(_save_onnx(tmp_path / "reg.onnx", to_onnx(model, X[:1])))
    frame = pd.DataFrame(X)
    assert runtime.predict(frame).shape == (len(X),)
    np.testing.assert_allclose(runtime.predict(frame), model.predict(X), atol=1e-5, rtol=1e-5)
    assert runtime.predict_proba(frame) is None and runtime.classes is None


def test_onnx_with_one_input_per_column(tmp_path: Path) -> None:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"size": rng.uniform(1, 10, 200), "city": rng.choice(["oslo", "bergen", "tromso"], 200)}
    )
    price = frame["size"] * 2 + (frame["city"] == "oslo") * 5
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["city"]), remainder="passthrough"),
        LinearRegression(),
    ).fit(frame, price)
    onx = to_onnx(
        model,
        initial_types=[("size", FloatTensorType([None, 1])), ("city", StringTensorType([None, 1]))],
    )
    runtime = load_runtime(_save_onnx(tmp_path / "pipe.onnx", onx))
    np.testing.assert_allclose(runtime.predict(frame), model.predict(frame), atol=1e-4)
    with pytest.raises(ArtifactError, match="wants an input named 'city', which is not a feature"):
        runtime.predict(frame.drop(columns="city").assign(town="oslo"))


def test_a_corrupt_onnx_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x00\x01 not a protobuf")
    with pytest.raises(ArtifactError, match=r"broken\.onnx is not a loadable ONNX model"):
        load_runtime(path)


# ---- MLflow ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_sklearn() -> ModuleType:
    with warnings.catch_warnings():
        # mlflow warns about its own type hints while importing (an error under this suite).
        warnings.simplefilter("ignore")
        try:
            import mlflow.pyfunc
            import mlflow.sklearn
        except ImportError:
            if os.environ.get("CI"):
                pytest.fail("mlflow-skinny is not installed; it is in the dev extra", pytrace=False)
            pytest.skip("mlflow is not installed: pip install mlflow-skinny")
    return mlflow.sklearn


@pytest.fixture(scope="module")
def mlflow_model(
    mlflow_sklearn: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, LinearRegression, pd.DataFrame]:
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [0.0, 1.0, 0.0, 1.0]})
    model = LinearRegression().fit(frame, frame["a"] * 2 + frame["b"])
    path = tmp_path_factory.mktemp("mlflow") / "model"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow_sklearn.save_model(model, str(path), pip_requirements=[])
    return path, model, frame


def test_mlflow_model_directory_needs_trust(
    mlflow_model: tuple[Path, LinearRegression, pd.DataFrame],
) -> None:
    path, model, frame = mlflow_model
    assert detect_flavor(path) == "mlflow"
    with pytest.raises(UntrustedArtifactError, match="pass --trust"):
        load_runtime(path)
    runtime = load_runtime(path, trust=True)
    assert isinstance(runtime, ModelRuntime) and runtime.flavor == "mlflow"
    np.testing.assert_allclose(runtime.predict(frame), model.predict(frame))
    assert runtime.predict_proba(frame) is None


def test_a_broken_mlflow_directory(mlflow_sklearn: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "MLmodel").write_text("flavors: {python_function: {loader_module: nowhere}}\n")
    with pytest.raises(ArtifactError, match="is not a loadable MLflow model"):
        load_runtime(tmp_path, trust=True)
