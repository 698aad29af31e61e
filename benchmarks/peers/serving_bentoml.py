"""Peer for benchmarks/serving.py: a BentoML service with one API doing ``predict_proba``.

The API's parameters are the 20 features, so the request body is the same one JSON record
the other servers get. One worker, and the per-request access log and Prometheus metrics
switched off (as they are in the uvicorn baselines), so the server spends its one core on the
requests. benchmarks/serving.py starts it with
``taskset -c 0 bentoml serve serving_bentoml:Classifier`` in benchmarks/peers/.envs/bentoml.
"""

from __future__ import annotations

import os

import bentoml
import numpy as np
import skops.io as sio


@bentoml.service(workers=1, logging={"access": {"enabled": False}}, metrics={"enabled": False})
class Classifier:
    def __init__(self) -> None:
        path = os.environ["SERVING_BENCH_MODEL"]
        self.model = sio.load(path, trusted=sio.get_untrusted_types(file=path))
        self.classes = [str(c) for c in self.model.classes_]

    @bentoml.api
    async def predict(
        self,
        f0: float,
        f1: float,
        f2: float,
        f3: float,
        f4: float,
        f5: float,
        f6: float,
        f7: float,
        f8: float,
        f9: float,
        f10: float,
        f11: float,
        f12: float,
        f13: float,
        f14: float,
        f15: float,
        f16: float,
        f17: float,
        f18: float,
        f19: float,
    ) -> dict[str, object]:
        row = np.array(
            [
                [
                    f0,
                    f1,
                    f2,
                    f3,
                    f4,
                    f5,
                    f6,
                    f7,
                    f8,
                    f9,
                    f10,
                    f11,
                    f12,
                    f13,
                    f14,
                    f15,
                    f16,
                    f17,
                    f18,
                    f19,
                ]
            ],
            dtype=np.float64,
        )
        proba = self.model.predict_proba(row)[0]
        return {
            "prediction": self.classes[int(proba.argmax())],
            "probabilities": dict(zip(self.classes, proba.tolist(), strict=True)),
        }
