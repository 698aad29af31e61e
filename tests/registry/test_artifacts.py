"""The content-addressed artifact store: atomic puts, one copy per content, verified loads."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelpilot.errors import ArtifactError, NotFoundError
from modelpilot.registry import LocalArtifactStore, sha256_path


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "model.onnx"
    path.parent.mkdir()
    path.write_bytes(b"\x08\x07 an onnx graph, byte for byte" * 1000)
    return path


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def test_put_stores_a_verified_copy_under_its_sha256(
    store: LocalArtifactStore, model_file: Path
) -> None:
    ref = store.put(model_file)
    data = model_file.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    assert (ref.sha256, ref.filename, ref.size_bytes) == (sha, "model.onnx", len(data))
    assert ref.uri == f"{sha[:2]}/{sha}/model.onnx"
    stored = store.verify(ref)
    assert stored == store.root / ref.uri
    assert stored.read_bytes() == model_file.read_bytes()
    assert model_file.exists()  # the user's file is copied, not moved


def test_same_content_is_stored_once_and_no_staging_is_left(
    store: LocalArtifactStore, model_file: Path
) -> None:
    first = store.put(model_file)
    second = store.put(model_file)
    assert first == second
    assert _files(store.root) == [Path(first.uri)]


def test_put_a_missing_file(store: LocalArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"artifact '.*nope\.skops' was not found"):
        store.put(tmp_path / "nope.skops")


def test_verify_refuses_a_modified_artifact(store: LocalArtifactStore, model_file: Path) -> None:
    ref = store.put(model_file)
    stored = store.root / ref.uri
    data = bytearray(stored.read_bytes())
    data[100] ^= 0xFF  # one flipped byte, same size
    stored.write_bytes(bytes(data))
    with pytest.raises(
        ArtifactError,
        match=r"is corrupt: its sha256 is [0-9a-f]{12}\.\.\., the "
        rf"registry recorded {ref.sha256[:12]}\.\.\.; .* register the model again",
    ):
        store.verify(ref)


def test_verify_refuses_a_missing_artifact(store: LocalArtifactStore, model_file: Path) -> None:
    ref = store.put(model_file)
    (store.root / ref.uri).unlink()
    with pytest.raises(ArtifactError, match="is missing from the artifact store"):
        store.verify(ref)


def test_putting_the_content_again_repairs_a_corrupt_copy(
    store: LocalArtifactStore, model_file: Path
) -> None:
    # The corrupt-artifact message says "register the model again"; that must actually help.
    ref = store.put(model_file)
    (store.root / ref.uri).write_bytes(b"tampered")
    assert store.put(model_file) == ref
    assert store.verify(ref).read_bytes() == model_file.read_bytes()


def test_directory_artifacts(store: LocalArtifactStore, tmp_path: Path) -> None:
    model_dir = tmp_path / "mlflow-model"
    (model_dir / "sub").mkdir(parents=True)
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    (model_dir / "sub" / "weights.bin").write_bytes(b"\x00\x01" * 50)
    ref = store.put(model_dir)
    assert ref.sha256 == sha256_path(model_dir)
    assert ref.size_bytes == len("flavors: {}\n") + 100
    assert _files(store.verify(ref)) == [Path("MLmodel"), Path("sub/weights.bin")]

    (store.root / ref.uri / "sub" / "weights.bin").write_bytes(b"\x00\x02" * 50)
    with pytest.raises(ArtifactError, match="is corrupt"):
        store.verify(ref)
    store.put(model_dir)  # repaired, as for files
    assert store.verify(ref)


def test_directory_hash_covers_names_and_contents(tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    model_dir.mkdir()
    (model_dir / "a.bin").write_bytes(b"1")
    (model_dir / "b.bin").write_bytes(b"2")
    original = sha256_path(model_dir)
    (model_dir / "b.bin").rename(model_dir / "c.bin")
    renamed = sha256_path(model_dir)
    (model_dir / "c.bin").write_bytes(b"3")
    changed = sha256_path(model_dir)
    assert len({original, renamed, changed}) == 3
    assert sha256_path(model_dir / "a.bin") == hashlib.sha256(b"1").hexdigest()
