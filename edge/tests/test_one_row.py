"""One row at a time: the one-row tree walk and one record's path give the batch's bits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_helpers import _files, _npz
from modelpilot_edge import (
    Bundle,
    KeyPair,
    ModelFailed,
    ValidationFailed,
    load_private_key,
    write_bundle,
)
from modelpilot_edge.kernels import TreeEnsembleArrays, link


def _random_ensemble(rng: np.random.Generator, **options: Any) -> TreeEnsembleArrays:
    """Random trees (children adjacent, leaves pointing to themselves, one a bare leaf)."""
    n_features, n_groups = options.pop("n_features", 6), options.pop("n_groups", 1)
    n_values = options.pop("n_values", 1)
    feature: list[int] = []
    threshold: list[float] = []
    left: list[int] = []
    nan_right: list[bool] = []
    roots: list[int] = []
    depth = 0

    def grow(node: int, level: int) -> None:
        nonlocal depth
        depth = max(depth, level)
        if level < 5 and rng.random() < 0.8:
            feature[node] = int(rng.integers(n_features))
            # Thresholds from a small set: rows hit them exactly (x <= t goes left).
            threshold[node] = float(rng.choice([-1.0, -0.25, 0.0, 0.5, 1.0]))
            nan_right[node] = bool(rng.random() < 0.5)
            child = len(feature)
            left[node] = child
            for _ in range(2):
                feature.append(0)
                threshold.append(np.inf)
                left.append(len(left))
                nan_right.append(False)
            grow(child, level + 1)
            grow(child + 1, level + 1)

    for tree in range(4 * n_groups):
        roots.append(len(feature))
        feature.append(0)
        threshold.append(np.inf)
        left.append(len(left))
        nan_right.append(False)
        if tree:  # the first tree is a bare leaf
            grow(roots[-1], 0)
    leaf = np.asarray(left) == np.arange(len(left))
    values = rng.normal(size=(len(left), n_values)) * leaf[:, None]
    return TreeEnsembleArrays.from_nodes(
        n_features=n_features,
        feature=feature,
        threshold=threshold,
        left=left,
        nan_right=nan_right,
        leaf_value=values,
        roots=roots,
        depth=max(depth, 1),
        base=rng.normal(size=n_groups * n_values),
        n_groups=n_groups,
        **options,
    )


def _rows(rng: np.random.Generator, width: int) -> np.ndarray:
    rows = rng.choice([-1.0, -0.25, 0.0, 0.5, 1.0, 3.0], size=(200, width))
    rows += rng.normal(scale=1e-3, size=rows.shape) * (rng.random(rows.shape) < 0.5)
    rows[rng.random(rows.shape) < 0.1] = np.nan
    rows[0] = np.nan  # every value missing
    rows[1, 0], rows[2, 1] = np.inf, -np.inf
    return rows


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"input_float32": True},
        {"sum_float32": True},
        {"zero_threshold": 0.3},
        {"n_groups": 3, "divisor": 3.0},
        {"n_values": 2, "post_scale": 0.5, "post_bias": 0.25},
    ],
    ids=["float64", "float32-inputs", "float32-sums", "zero-threshold", "groups", "values"],
)
def test_one_row_gives_the_batch_walks_bits(options: dict[str, Any]) -> None:
    rng = np.random.default_rng(3)
    for _ in range(5):
        arrays = _random_ensemble(rng, allow_inf=True, **options)
        rows = _rows(rng, arrays.n_features)
        batch = arrays.raw(rows)
        assert arrays._one_row_walk is not None
        for i in range(len(rows)):
            one = arrays.raw(rows[i : i + 1])
            assert one.dtype == batch.dtype and np.array_equal(one, batch[i : i + 1]), i


def test_categorical_splits_keep_the_batch_walk() -> None:
    arrays = TreeEnsembleArrays.from_nodes(
        n_features=1,
        feature=[0, 0, 0],
        threshold=[np.inf, np.inf, np.inf],
        left=[1, 1, 2],
        nan_right=[False, False, False],
        category_set=[0, -1, -1],
        category_bitsets=[[0b101]],
        categorical_features=[True],
        leaf_value=[[0.0], [1.0], [2.0]],
        roots=[0],
        depth=1,
        base=[0.0],
    )
    assert arrays._one_row_walk is None
    assert arrays.raw(np.array([[0.0]])).tolist() == [[1.0]]  # category 0 is in the set
    assert arrays.raw(np.array([[1.0]])).tolist() == [[2.0]]


@pytest.mark.parametrize("scale", [1.0, 0.7])
def test_one_rows_sigmoid_is_the_batchs(scale: float) -> None:
    raw = np.random.default_rng(5).normal(scale=20.0, size=(2000, 1))
    raw[:4, 0] = [0.0, -0.0, 700.0, -30.0]
    batch = link("expit", raw, scale)
    for i in range(len(raw)):
        assert np.array_equal(link("expit", raw[i : i + 1], scale), batch[i : i + 1])


NAMES = [f"f{i}" for i in range(4)]


def _tree_classifier(tmp_path: Path, keys: KeyPair) -> Path:
    """A binary classifier of random trees over four numeric features, one with a range."""
    arrays = _random_ensemble(
        np.random.default_rng(9),
        n_features=4,
        link="expit",
        decision="positive",
        input_float32=True,  # compared in float32, as XGBoost: a number past its range fails
    )
    model = {
        "engine": "trees",
        "task": "binary",
        "columns": NAMES,
        "encodings": dict.fromkeys(NAMES, "number"),
        "classes": ["no", "yes"],
    }
    features: list[dict[str, Any]] = [{"name": n, "type": "numeric"} for n in NAMES]
    features[0]["range"] = [-5, 5]
    files = _files(model, {"model/trees.npz": _npz(arrays.save)}, features, 1)
    private = load_private_key(keys.private)
    return write_bundle(tmp_path / "c.zip", files, private_key=private, as_zip=True, created_at=0)


def test_one_record_answers_as_a_list_of_it(tmp_path: Path, keys: KeyPair) -> None:
    rng = np.random.default_rng(1)
    rows = _rows(rng, 4)
    records: list[dict[str, Any]] = [
        dict(zip(NAMES, row, strict=True))
        for row in rows[np.isfinite(rows).all(axis=1)][:98].tolist()
    ]
    records += [dict.fromkeys(NAMES, 0), dict.fromkeys(NAMES, 0.5)]  # integers, as JSON's
    with Bundle.open(
        _tree_classifier(tmp_path, keys), public_key=keys.public, log_dir=tmp_path / "log"
    ) as bundle:
        batch = bundle.predict(records)
        for record, expected in zip(records, batch, strict=True):
            one = bundle.predict(record)
            assert {**one, "id": None} == {**expected, "id": None}
        for bad in ({**records[-1], "f0": 9}, {**records[-1], "f1": "x"}, {"f0": 1}):
            with pytest.raises(ValidationFailed) as one_error:
                bundle.predict(bad)
            with pytest.raises(ValidationFailed) as list_error:
                bundle.predict([bad])
            assert one_error.value.problems == list_error.value.problems
            assert str(one_error.value) == str(list_error.value)
        # A valid record the model cannot take (past float32's range): the same failure, logged
        # with its error, one record or a list of it.
        too_large = {**records[-1], "f1": 1e300}
        with pytest.raises(ModelFailed) as one_failure:
            bundle.predict(too_large)
        with pytest.raises(ModelFailed) as list_failure:
            bundle.predict([too_large])
        one_message, list_message = str(one_failure.value), str(list_failure.value)
        assert "outside what the trees take" in one_message
        assert one_message.replace(one_failure.value.prediction_ids[0], "ID") == (
            list_message.replace(list_failure.value.prediction_ids[0], "ID")
        )
        assert bundle.log is not None
        logged, _ = bundle.log.pending(10_000)
    assert len(logged) == 2 * len(records) + 2  # each answer or failure once; refusals are not
    failed = [r for r in logged if r["outputs"].get("error")]
    assert [r["id"] for r in failed] == [
        *one_failure.value.prediction_ids,
        *list_failure.value.prediction_ids,
    ]
