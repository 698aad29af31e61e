"""Baseline for benchmarks/serving.py: a minimal raw Starlette app serving the same model.

One route, ``await request.json()``, a NumPy row, the library's own ``predict_proba``, a
``JSONResponse``: the least a Python ASGI model server can do per request. No validation, no
logging, no auth. The model file decides the library: ``.skops`` (scikit-learn), ``.json`` /
``.ubj`` (XGBoost's ``XGBClassifier``), ``.txt`` (LightGBM's ``Booster``).
Run: ``SERVING_BENCH_MODEL=model.skops uvicorn serving_starlette:app --app-dir benchmarks/peers``.
With ``SERVING_BENCH_NO_MODEL=1`` it answers a constant instead of calling the model: the
ceiling of any server on this stack.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

# Models fitted on a DataFrame warn on every NumPy row; the peer takes the fast array path.
warnings.filterwarnings("ignore", message="X does not have valid feature names")


def load(path: str) -> tuple[Callable[[np.ndarray], Any], list[str], list[str]]:
    """(predict_proba on a 2-D float array, feature names in the model's order, classes)."""
    suffix = Path(path).suffix
    if suffix in {".json", ".ubj"}:
        import xgboost

        model: Any = xgboost.XGBClassifier()
        model.load_model(path)
        names = model.get_booster().feature_names
        return model.predict_proba, list(names), [str(c) for c in model.classes_]
    if suffix == ".txt":
        import lightgbm

        booster = lightgbm.Booster(model_file=path)

        def proba(rows: np.ndarray) -> np.ndarray:
            positive = booster.predict(rows)  # binary: P(class 1), as LGBMClassifier gives
            return np.column_stack([1.0 - positive, positive])

        return proba, booster.feature_name(), ["0", "1"]
    import skops.io as sio

    model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
    names = getattr(model, "feature_names_in_", None)
    features = (
        [str(n) for n in names]
        if names is not None
        else [f"f{i}" for i in range(model.n_features_in_)]
    )
    return model.predict_proba, features, [str(c) for c in model.classes_]


predict_proba, FEATURES, CLASSES = load(os.environ["SERVING_BENCH_MODEL"])
if os.environ.get("SERVING_BENCH_NO_MODEL") == "1":
    # The ceiling of this stack (``starlette-nomodel`` in benchmarks/serving.py): the same
    # request and answer, the model call replaced by a constant.
    _CONSTANT = np.full((1, len(CLASSES)), 1.0 / len(CLASSES))

    def predict_proba(rows: np.ndarray) -> np.ndarray:
        return _CONSTANT


async def predict(request: Request) -> JSONResponse:
    record = await request.json()
    row = np.array([[record[name] for name in FEATURES]], dtype=np.float64)
    proba = predict_proba(row)[0]
    return JSONResponse(
        {
            "prediction": CLASSES[int(proba.argmax())],
            "probabilities": dict(zip(CLASSES, proba.tolist(), strict=True)),
        }
    )


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
