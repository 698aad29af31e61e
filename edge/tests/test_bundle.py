"""Opening a bundle: what it answers, and every way a changed bundle is refused."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from edge_helpers import linear_files, new_keys, tree_files, write_signed
from modelpilot_edge import (
    Bundle,
    BundleRejected,
    KeyPair,
    ModelFailed,
    ValidationFailed,
    load_public_key,
    read_bundle,
)


def test_a_linear_bundle_answers_like_the_server(linear_bundle: Path, keys: KeyPair) -> None:
    with Bundle.open(linear_bundle, public_key=keys.public, logging=False) as bundle:
        one = bundle.predict({"size": 150, "rooms": 4})
        many = bundle.predict([{"size": 150, "rooms": 4}, {"size": 10.5, "rooms": 1}])
    assert set(one) == {"id", "prediction", "probabilities", "confidence"}
    assert len(one["id"]) == 32
    # (150 - 100) / 50 * 1.5 + (4 - 3) * 0.5 - 2 = 0 -> 0.5: "no" (class 1 needs > 0).
    assert one["prediction"] == "no" and one["probabilities"] == {"no": 0.5, "yes": 0.5}
    assert [a["prediction"] for a in many] == ["no", "no"]
    assert many[0]["id"] != many[1]["id"]
    assert many[1]["confidence"] == max(many[1]["probabilities"].values())


def test_a_tree_bundle_encodes_categories_and_booleans(tree_bundle: Path, keys: KeyPair) -> None:
    record = {"size": 150, "rooms": 2, "city": "b", "garage": True, "email": "x@example.com"}
    with Bundle.open(tree_bundle, public_key=keys.public, logging=False) as bundle:
        assert bundle.predict(record)["prediction"] == 21.0  # base 1 + right leaf 20
        assert bundle.predict({**record, "size": 100})["prediction"] == 11.0  # x <= t goes left
        assert bundle.describe()["engine"] == "trees"


def test_invalid_records_get_every_problem_as_the_server_words_them(
    linear_bundle: Path, keys: KeyPair
) -> None:
    with Bundle.open(linear_bundle, public_key=keys.public, logging=False) as bundle:
        with pytest.raises(ValidationFailed) as caught:
            bundle.predict([{"size": "big", "rooms": 4}, {"size": 2000}])
        assert caught.value.problems == [
            {"instance": 0, "field": "size", "expected": "a number in [0, 1000]", "got": "big"},
            {"instance": 1, "field": "size", "expected": "a number in [0, 1000]", "got": 2000},
            {
                "instance": 1,
                "field": "rooms",
                "expected": "a number in [0, 20]",
                "got": "(missing)",
            },
        ]
        assert caught.value.to_dict()["error"] == "validation_error"
        with pytest.raises(ValidationFailed, match="expected at least one instance"):
            bundle.predict([])
        with pytest.raises(ValidationFailed, match="expected at most 100 instances, got '101"):
            bundle.predict([{"size": 1, "rooms": 1}] * 101)
        with pytest.raises(ValidationFailed, match="instances: expected a list of records"):
            bundle.predict("size=1")


def test_a_record_the_model_cannot_take_fails_and_is_logged(tmp_path: Path, keys: KeyPair) -> None:
    bundle_path = write_signed(tmp_path / "t.zip", tree_files(unknown=None), keys)
    record = {"size": 1, "rooms": 1, "city": "c", "garage": False}  # "c": valid, never seen
    with Bundle.open(bundle_path, public_key=keys.public, log_dir=tmp_path / "log") as bundle:
        with pytest.raises(ModelFailed, match="city='c' is a category the model's encoder") as e:
            bundle.predict(record)
        assert bundle.log is not None
        logged, _ = bundle.log.pending(10)
    assert [r["id"] for r in logged] == e.value.prediction_ids
    assert logged[0]["outputs"]["prediction"] is None
    assert "never saw" in logged[0]["outputs"]["error"]


def test_the_wrong_key_is_refused(linear_bundle: Path) -> None:
    other = new_keys()
    with pytest.raises(BundleRejected, match="does not verify with the public key"):
        Bundle.open(linear_bundle, public_key=other.public, logging=False)


def _rewrite_zip(path: Path, change: dict[str, bytes | None]) -> None:
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    for name, data in change.items():
        if data is None:
            files.pop(name)
        else:
            files[name] = data
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"model/linear.npz": b"not the arrays"}, "model/linear.npz changed since it was signed"),
        ({"schema.json": None}, "schema.json listed in manifest.json are missing"),
        ({"extra.py": b"import os"}, "extra.py are not in manifest.json"),
        ({"manifest.sig": b"00" * 64}, "does not verify"),
        ({"manifest.json": None}, "no manifest.json"),
    ],
    ids=["changed-file", "missing-file", "extra-file", "bad-signature", "no-manifest"],
)
def test_a_tampered_bundle_is_refused(
    linear_bundle: Path, keys: KeyPair, change: dict[str, bytes | None], why: str
) -> None:
    _rewrite_zip(linear_bundle, change)
    with pytest.raises(BundleRejected, match=why):
        Bundle.open(linear_bundle, public_key=keys.public, logging=False)


def test_a_changed_manifest_does_not_verify(tmp_path: Path, keys: KeyPair) -> None:
    bundle = write_signed(tmp_path / "b", tree_files(), keys, as_zip=False)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"]["model.json"] = "0" * 64
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleRejected, match="does not verify"):
        read_bundle(bundle, public_key=load_public_key(keys.public))
    shutil.rmtree(bundle)
    with pytest.raises(BundleRejected, match="no such file"):
        read_bundle(bundle, public_key=load_public_key(keys.public))


def test_smoke_checks_pass_on_the_bundles_own_rows(linear_bundle: Path, keys: KeyPair) -> None:
    with Bundle.open(linear_bundle, public_key=keys.public, logging=False) as bundle:
        assert bundle.smoke_check() == []
    bad = write_signed(linear_bundle.with_name("bad.zip"), linear_files(), keys, wrong_smoke=True)
    with Bundle.open(bad, public_key=keys.public, logging=False) as bundle:
        problems = bundle.smoke_check()
    assert problems and "expected 'a different answer'" in problems[0]
