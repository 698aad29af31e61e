"""Baseline for benchmarks/serving.py: a minimal FastAPI app serving the same model.

The request body is a pydantic model of the 20 float features (so FastAPI validates it, as a
FastAPI user would write it); the handler builds a NumPy row and calls ``predict_proba``.
Run (in benchmarks/peers/.envs/fastapi): ``SERVING_BENCH_MODEL=model.skops uvicorn
serving_fastapi:app --app-dir benchmarks/peers``.
"""

from __future__ import annotations

import os

import numpy as np
import skops.io as sio
from fastapi import FastAPI
from pydantic import BaseModel, create_model

_path = os.environ["SERVING_BENCH_MODEL"]
model = sio.load(_path, trusted=sio.get_untrusted_types(file=_path))
FEATURES = [f"f{i}" for i in range(model.n_features_in_)]
CLASSES = [str(c) for c in model.classes_]

# class Record(BaseModel): f0: float; f1: float; ... f19: float
Record: type[BaseModel] = create_model("Record", **{name: (float, ...) for name in FEATURES})

app = FastAPI()


@app.post("/predict")
async def predict(record: Record) -> dict[str, object]:  # type: ignore[valid-type]
    row = np.array([[getattr(record, name) for name in FEATURES]], dtype=np.float64)
    proba = model.predict_proba(row)[0]
    return {
        "prediction": CLASSES[int(proba.argmax())],
        "probabilities": dict(zip(CLASSES, proba.tolist(), strict=True)),
    }
