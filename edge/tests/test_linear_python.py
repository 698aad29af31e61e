"""A linear bundle answers one record in plain Python: the NumPy kernel's answers, no NumPy."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edge_helpers import _files, _npz, linear_files, tree_files, write_signed
from modelpilot_edge import Bundle, KeyPair, load_private_key, write_bundle
from modelpilot_edge._npy import read_npz
from modelpilot_edge.kernels import LinearArrays

WIDTH = 20
NAMES = [f"f{i}" for i in range(WIDTH)]
CLASSES = {"binary": ["no", "yes"], "multiclass": ["a", "b", "c"], "regression": None}


def _linear_bundle(tmp_path: Path, keys: KeyPair, kind: str, *, dtype: Any = np.float64) -> Path:
    """A scaled linear model of 20 features; multiclass: classes a and b score alike."""
    rng = np.random.default_rng(7)
    if kind == "regression":
        coef, intercept = rng.normal(size=WIDTH), np.array(0.25)
    else:
        coef = rng.normal(size=(WIDTH, 1 if kind == "binary" else 3))
        intercept = rng.normal(size=coef.shape[1])
        if kind == "multiclass":  # ties between a and b: NumPy's argmax decides them
            coef[:, 1], intercept[1] = coef[:, 0], intercept[0]
    arrays = LinearArrays(
        width=WIDTH,
        means=(rng.normal(size=WIDTH).astype(dtype),),
        scales=(rng.uniform(0.5, 2.0, size=WIDTH).astype(dtype),),
        coef_t=coef.astype(dtype),
        intercept=intercept,
        n_classes=0 if kind == "regression" else len(CLASSES[kind] or []),
    )
    model = {
        "engine": "linear",
        "task": kind,
        "columns": NAMES,
        "encodings": dict.fromkeys(NAMES, "number"),
        "classes": CLASSES[kind],
        "layout": "C",
    }
    features = [{"name": n, "type": "numeric"} for n in NAMES]
    files = _files(model, {"model/linear.npz": _npz(arrays.save)}, features, 1)
    private = load_private_key(keys.private)
    target = tmp_path / f"{kind}.zip"
    return write_bundle(target, files, private_key=private, as_zip=True, created_at=0.0)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_one_record_in_plain_python_answers_as_the_numpy_kernel(
    tmp_path: Path, keys: KeyPair, kind: str
) -> None:
    """Classes exactly; probabilities within 1e-12 (absolute), predictions of a regressor
    within 1e-12 (relative): the plain sum may differ from BLAS's in the last bits."""
    rng = np.random.default_rng(11)
    records = [dict(zip(NAMES, row, strict=True)) for row in rng.normal(size=(300, WIDTH)).tolist()]
    records.append(dict.fromkeys(NAMES, 0))  # integers, as JSON sends them
    with Bundle.open(
        _linear_bundle(tmp_path, keys, kind), public_key=keys.public, logging=False
    ) as b:
        for record in records:
            one = b.predict(record)
            numpy_answer = b.predict([record, record])[0]  # a batch: the NumPy kernel
            if kind == "regression":
                want = numpy_answer["prediction"]
                assert abs(one["prediction"] - want) <= 1e-12 * max(1.0, abs(want))
                continue
            assert one["prediction"] == numpy_answer["prediction"]
            assert one.keys() == numpy_answer.keys()
            for name, p in numpy_answer["probabilities"].items():
                assert abs(one["probabilities"][name] - p) <= 1e-12
            assert one["confidence"] == max(one["probabilities"].values())
        if kind == "multiclass":
            tied = [b.predict(r)["prediction"] for r in records]
            assert "b" not in tied and "a" in tied  # a tie goes to the first, as argmax does


_OPEN_AND_ANSWER = """
import sys
from modelpilot_edge import Bundle
with Bundle.open(sys.argv[1], public_key=sys.argv[2], log_dir=sys.argv[3]) as bundle:
    print("numpy" in sys.modules)
    bundle.predict({"size": 170, "rooms": 4})
    print("numpy" in sys.modules)
    bundle.predict([{"size": 170, "rooms": 4}] * 2)
    print("numpy" in sys.modules)
"""


@pytest.mark.parametrize(
    ("files", "expected"),
    [(linear_files, ["False", "False", "True"]), (tree_files, ["True", "True", "True"])],
    ids=["linear: NumPy for batches only", "trees: NumPy at the open"],
)
def test_what_imports_numpy(tmp_path: Path, keys: KeyPair, files: Any, expected: list[str]) -> None:
    bundle = write_signed(tmp_path / "b.zip", files(), keys)
    if files is tree_files:
        script = _OPEN_AND_ANSWER.replace('"rooms": 4', '"rooms": 4, "city": "a", "garage": True')
    else:
        script = _OPEN_AND_ANSWER
    out = subprocess.run(
        [sys.executable, "-c", script, str(bundle), keys.public, str(tmp_path / "log")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.split() == expected


def test_the_plain_reader_reads_what_linear_arrays_save_and_nothing_else() -> None:
    arrays = LinearArrays(
        width=2,
        means=(np.array([1.5, -2.0]),),
        scales=(np.array([], dtype=np.float64),),
        coef_t=np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]),
        intercept=np.array([1.0, 2.0, 3.0]),
        n_classes=3,
    )
    plain = read_npz(_npz(arrays.save))
    assert plain is not None
    with np.load(io.BytesIO(_npz(arrays.save))) as data:
        for name in data.files:
            assert plain[name] == (data[name].shape, data[name].ravel().tolist()), name
    fortran = _npz(lambda f: np.savez(f, a=np.asfortranarray(np.ones((2, 3)))))
    single = _npz(lambda f: np.savez(f, a=np.ones(3, dtype=np.float32)))
    text = _npz(lambda f: np.savez(f, a=np.array(["x"])))
    assert read_npz(fortran) is None and read_npz(single) is None and read_npz(text) is None
    assert read_npz(b"not a zip") is None


def test_arrays_the_plain_path_does_not_read_go_to_numpy(tmp_path: Path, keys: KeyPair) -> None:
    bundle = _linear_bundle(tmp_path, keys, "binary", dtype=np.float32)
    record = dict.fromkeys(NAMES, 0.5)
    with Bundle.open(bundle, public_key=keys.public, logging=False) as b:
        assert b.predict(record)["probabilities"] == b.predict([record])[0]["probabilities"]


def test_a_record_the_full_rules_coerce_takes_the_plain_path_too(
    linear_bundle: Path, keys: KeyPair
) -> None:
    """The text "170" is a number to the server's rules: checked column by column, then plain."""
    with Bundle.open(linear_bundle, public_key=keys.public, logging=False) as b:
        one = b.predict({"size": "170", "rooms": 4})
        batch = b.predict([{"size": "170", "rooms": 4}] * 2)[0]
        assert one["prediction"] == batch["prediction"] == "yes"
        assert one["probabilities"] == pytest.approx(batch["probabilities"], abs=1e-12)
