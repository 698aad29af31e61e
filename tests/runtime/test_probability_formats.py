"""Probabilities survive every format: XGBoost, LightGBM and scikit-learn classifiers through
ONNX (skl2onnx with and without ZipMap, onnxmltools) and MLflow keep their class labels and
probabilities, so scored files get proba_* columns and registration gets roc_auc."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import numpy as np
import onnx
import onnxmltools
import pandas as pd
import pytest
import xgboost as xgb
from onnxmltools.convert.common.data_types import FloatTensorType
from skl2onnx import to_onnx
from sklearn.datasets import load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.tree import DecisionTreeClassifier

from modelpilot.errors import ArtifactError, UntrustedArtifactError
from modelpilot.inference import run_model
from modelpilot.project import Project
from modelpilot.registry import register_model
from modelpilot.runtime import load_runtime
from modelpilot.spec import FeatureSpec, render_project

Builder = Callable[[Path], tuple[Path, object]]


@pytest.fixture(scope="module")
def wine() -> tuple[pd.DataFrame, pd.Series]:
    features, labels = load_wine(return_X_y=True, as_frame=True)
    features.columns = [f"x{i}" for i in range(features.shape[1])]
    return features.astype("float32"), labels


def _onnx_file(path: Path, model: onnx.ModelProto) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _xgb_onnx(directory: Path, X: pd.DataFrame, y: pd.Series) -> tuple[Path, object]:
    native = xgb.XGBClassifier(n_estimators=5, max_depth=3).fit(X.to_numpy(), y)
    types = [("input", FloatTensorType([None, X.shape[1]]))]
    converted = onnxmltools.convert_xgboost(native, initial_types=types, target_opset=15)
    return _onnx_file(directory / "xgb.onnx", converted), native


def _lgb_onnx(zipmap: bool) -> Callable[[Path, pd.DataFrame, pd.Series], tuple[Path, object]]:
    def build(directory: Path, X: pd.DataFrame, y: pd.Series) -> tuple[Path, object]:
        native = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X.to_numpy(), y)
        types = [("input", FloatTensorType([None, X.shape[1]]))]
        converted = onnxmltools.convert_lightgbm(
            native, initial_types=types, target_opset=15, zipmap=zipmap
        )
        return _onnx_file(directory / f"lgb-{zipmap}.onnx", converted), native

    return build


def _skl2onnx(zipmap: bool) -> Callable[[Path, pd.DataFrame, pd.Series], tuple[Path, object]]:
    def build(directory: Path, X: pd.DataFrame, y: pd.Series) -> tuple[Path, object]:
        native = RandomForestClassifier(n_estimators=5, random_state=0).fit(X.to_numpy(), y)
        converted = to_onnx(native, X.to_numpy()[:1], options={"zipmap": zipmap}, target_opset=15)
        return _onnx_file(directory / f"rf-{zipmap}.onnx", converted), native

    return build


def _mlflow(kind: str) -> Callable[[Path, pd.DataFrame, pd.Series], tuple[Path, object]]:
    def build(directory: Path, X: pd.DataFrame, y: pd.Series) -> tuple[Path, object]:
        import mlflow.lightgbm
        import mlflow.xgboost
        from mlflow.models import infer_signature

        path = directory / f"mlflow-{kind}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if kind == "xgboost":
                native: object = xgb.XGBClassifier(n_estimators=5, max_depth=3).fit(X, y)
                signature = infer_signature(X, native.predict(X))  # type: ignore[attr-defined]
                mlflow.xgboost.save_model(
                    native, str(path), signature=signature, pip_requirements=[]
                )
            else:
                native = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
                signature = infer_signature(X, native.predict(X))  # type: ignore[attr-defined]
                mlflow.lightgbm.save_model(
                    native, str(path), signature=signature, pip_requirements=[]
                )
        return path, native

    return build


FORMATS = {
    "xgboost-onnxmltools": _xgb_onnx,
    "lightgbm-onnxmltools-zipmap": _lgb_onnx(True),
    "lightgbm-onnxmltools-tensor": _lgb_onnx(False),
    "sklearn-skl2onnx-zipmap": _skl2onnx(True),
    "sklearn-skl2onnx-tensor": _skl2onnx(False),
    "xgboost-mlflow": _mlflow("xgboost"),
    "lightgbm-mlflow": _mlflow("lightgbm"),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_class_labels_and_probabilities_are_read(
    name: str, tmp_path: Path, wine: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = wine
    artifact, native = FORMATS[name](tmp_path, X, y)
    runtime = load_runtime(artifact)  # XGBoost's ubj and skops need no trust
    assert runtime.classes == [0, 1, 2]
    output = run_model(runtime, X.iloc[:40], task="multiclass")
    assert output.proba is not None and output.proba.shape == (40, 3)
    rows = X.iloc[:40] if hasattr(native, "feature_names_in_") else X.iloc[:40].to_numpy()
    np.testing.assert_allclose(output.proba, native.predict_proba(rows), atol=1e-5)  # type: ignore[attr-defined]
    assert list(output.columns()) == ["prediction", "proba_0", "proba_1", "proba_2", "confidence"]
    assert output.predictions.tolist() == native.predict(rows).tolist()  # type: ignore[attr-defined]


def test_registration_of_an_onnx_xgboost_model_computes_roc_auc(
    tmp_path: Path, wine: tuple[pd.DataFrame, pd.Series]
) -> None:
    X, y = wine
    artifact, _ = _xgb_onnx(tmp_path, X, y)
    features = [FeatureSpec(name=str(c), type="numeric") for c in X.columns]
    (tmp_path / "modelpilot.yaml").write_text(
        render_project(
            project="wine",
            task="multiclass",
            target="cultivar",
            features=features,
            key_metrics=["roc_auc >= 0.9"],
        )
    )
    X.assign(cultivar=y).to_parquet(tmp_path / "holdout.parquet")
    project = Project.open(tmp_path, environ={})
    try:
        version = register_model(project, artifact, eval_file=tmp_path / "holdout.parquet")
    finally:
        project.engine.dispose()
    assert version.status == "registered"
    assert version.metrics["roc_auc"] > 0.9 and "log_loss" in version.metrics


def test_mlflow_trust_names_the_pickled_part(
    tmp_path: Path, wine: tuple[pd.DataFrame, pd.Series]
) -> None:
    import mlflow.sklearn

    X, y = wine
    path = tmp_path / "mlflow-sklearn"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
        mlflow.sklearn.save_model(
            model, str(path), serialization_format="cloudpickle", pip_requirements=[]
        )
    with pytest.raises(
        UntrustedArtifactError,
        match=r"mlflow-sklearn is an MLflow model whose loading unpickles or imports "
        r"model\.pkl \(cloudpickle\), which can run arbitrary code; .* pass --trust",
    ):
        load_runtime(path)
    runtime = load_runtime(path, trust=True)
    assert runtime.classes == [0, 1, 2]
    assert runtime.predict_proba(X.iloc[:2]).shape == (2, 3)  # type: ignore[union-attr]


def _softmax_graph(path: Path, *, classes: str | None) -> Path:
    """A network's last layer: probabilities from a softmax, no classifier node."""
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Softmax", ["input"], ["probabilities"], axis=1)],
        "net",
        [onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [None, 2])],
        [onnx.helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [None, 2])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 15)])
    model.ir_version = 8
    if classes is not None:
        onnx.helper.set_model_props(model, {"classes": classes})
    return _onnx_file(path, model)


def test_a_graph_without_class_labels_needs_them_in_its_metadata(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"names no class labels.*set_model_props"):
        load_runtime(_softmax_graph(tmp_path / "bare.onnx", classes=None))
    runtime = load_runtime(_softmax_graph(tmp_path / "named.onnx", classes="no,yes"))
    output = run_model(runtime, np.array([[0.0, 2.0], [3.0, 0.0]]), task="binary")
    assert output.predictions.tolist() == ["yes", "no"]
    assert output.classes == ["no", "yes"] and output.proba is not None
