"""Fixtures of the runner's tests: a key pair, and signed bundles made by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_helpers import linear_files, new_keys, tree_files, write_signed
from modelpilot_edge import KeyPair


@pytest.fixture(scope="session")
def keys() -> KeyPair:
    return new_keys()


@pytest.fixture
def linear_bundle(tmp_path: Path, keys: KeyPair) -> Path:
    return write_signed(tmp_path / "linear.zip", linear_files(), keys)


@pytest.fixture
def tree_bundle(tmp_path: Path, keys: KeyPair) -> Path:
    return write_signed(tmp_path / "trees", tree_files(), keys, as_zip=False)
