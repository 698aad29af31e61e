"""Bundles for the runner's tests, written by hand: no scikit-learn here, so the models are
arrays (a linear classifier, a tree regressor) signed with a key made for the test."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelpilot_edge import Bundle, KeyPair, generate_keys, load_private_key, write_bundle
from modelpilot_edge.kernels import LinearArrays, TreeEnsembleArrays

FEATURES = [
    {"name": "size", "type": "numeric", "range": [0, 1000]},
    {"name": "rooms", "type": "numeric", "range": [0, 20]},
    {"name": "city", "type": "categorical", "categories": ["a", "b"]},
    {"name": "garage", "type": "boolean"},
    {"name": "email", "type": "text", "pii": True, "nullable": True},
]
NUMERIC = FEATURES[:2]


def _npz(save: Callable[[Any], None]) -> bytes:
    buffer = io.BytesIO()
    save(buffer)
    return buffer.getvalue()


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def linear_files(version: int = 1, *, intercept: float = -2.0) -> dict[str, bytes]:
    """A logistic regression on size and rooms: classes "no" and "yes"."""
    arrays = LinearArrays(
        width=2,
        means=(np.array([100.0, 3.0]),),
        scales=(np.array([50.0, 1.0]),),
        coef_t=np.array([[1.5], [0.5]]),
        intercept=np.array([intercept]),
        n_classes=2,
    )
    model = {
        "engine": "linear",
        "task": "binary",
        "columns": ["size", "rooms"],
        "encodings": {"size": "number", "rooms": "number"},
        "classes": ["no", "yes"],
        "layout": "C",
    }
    return _files(model, {"model/linear.npz": _npz(arrays.save)}, NUMERIC, version)


def tree_files(version: int = 1, *, unknown: float | None = 2.0) -> dict[str, bytes]:
    """One tree on size (split at 100), then city's codes: a regressor over all features.
    ``unknown``: the code of a city the encoder never saw (None: it has none)."""
    trees = TreeEnsembleArrays.from_nodes(
        n_features=3,
        feature=[0, 0, 0],
        threshold=[100.0, np.inf, np.inf],
        left=[1, 1, 2],
        nan_right=[True, False, False],
        leaf_value=[[0.0], [10.0], [20.0]],
        roots=[0],
        depth=1,
        base=[1.0],
    )
    model = {
        "engine": "trees",
        "task": "regression",
        "columns": ["size", "city", "garage"],
        "encodings": {"size": "number", "city": "codes", "garage": "boolean"},
        "codes": {
            "city": {"categories": [["a", 0], ["b", 1]], "unknown": unknown, "missing": None}
        },
        "classes": None,
    }
    return _files(model, {"model/trees.npz": _npz(trees.save)}, FEATURES, version)


def _files(
    model: dict[str, Any], arrays: dict[str, bytes], features: list[dict[str, Any]], version: int
) -> dict[str, bytes]:
    profile = {
        "features": {
            "size": {
                "type": "numeric",
                "count": 1000,
                "missing": 0,
                "quantiles": list(np.linspace(0.0, 200.0, 1001)),
            },
            "city": {
                "type": "categorical",
                "count": 1000,
                "missing": 0,
                "counts": {"a": 500, "b": 500},
            },
        }
    }
    return {
        "model.json": _json(model),
        **arrays,
        "schema.json": _json(
            {"features": features, "max_instances": 100, "pii": {"mode": "hash", "key": "00" * 32}}
        ),
        "profile.json": _json(profile),
        "metadata.json": _json({"name": "houses", "version": version, "deployment": "houses"}),
        "smoke.json": _json({"records": [], "answers": []}),
    }


def smoke_records(files: dict[str, bytes]) -> list[dict[str, Any]]:
    features = json.loads(files["schema.json"])["features"]
    names = {f["name"] for f in features}
    records = [
        {
            "size": 50.0 * i,
            "rooms": float(i % 5),
            "city": "ab"[i % 2],
            "garage": i % 3 == 0,
            "email": f"user{i}@example.com",
        }
        for i in range(8)
    ]
    return [{k: v for k, v in r.items() if k in names} for r in records]


def write_signed(
    target: Path,
    files: dict[str, bytes],
    keys: KeyPair,
    *,
    as_zip: bool = True,
    wrong_smoke: bool = False,
) -> Path:
    """``files`` as a signed bundle, with smoke rows the bundle itself answers (or, with
    ``wrong_smoke``, answers it does not give)."""
    private = load_private_key(keys.private)
    bundle = Bundle(target, files, log=None, device_id="writer")
    records = smoke_records(files)
    answers = [{k: v for k, v in a.items() if k != "id"} for a in bundle.predict(records)]
    if wrong_smoke:
        answers = [{**a, "prediction": "a different answer"} for a in answers]
    files = {**files, "smoke.json": _json({"records": records, "answers": answers})}
    return write_bundle(target, files, private_key=private, as_zip=as_zip, created_at=0.0)


def new_keys() -> KeyPair:
    return generate_keys()
