"""Baseline for benchmarks/serving.py: a minimal raw Starlette app serving the same model.

One route, ``await request.json()``, a NumPy row, ``predict_proba``, a ``JSONResponse``: the
least a Python ASGI model server can do per request. No validation, no logging, no auth.
Run: ``SERVING_BENCH_MODEL=model.skops uvicorn serving_starlette:app --app-dir benchmarks/peers``.
"""

from __future__ import annotations

import os

import numpy as np
import skops.io as sio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_path = os.environ["SERVING_BENCH_MODEL"]
model = sio.load(_path, trusted=sio.get_untrusted_types(file=_path))
FEATURES = [f"f{i}" for i in range(model.n_features_in_)]
CLASSES = [str(c) for c in model.classes_]


async def predict(request: Request) -> JSONResponse:
    record = await request.json()
    row = np.array([[record[name] for name in FEATURES]], dtype=np.float64)
    proba = model.predict_proba(row)[0]
    return JSONResponse(
        {
            "prediction": CLASSES[int(proba.argmax())],
            "probabilities": dict(zip(CLASSES, proba.tolist(), strict=True)),
        }
    )


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])
