"""The store tests' database: an empty one on each backend (``database_url``), opened."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from modelpilot.store import create_database


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_database(database_url)
    yield engine
    engine.dispose()
