"""Opening the metadata database: created and migrated on first use, clear errors otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect

from modelpilot.errors import ConfigError
from modelpilot.store import (
    PredictionLog,
    PredictionRecord,
    create_database,
    resolve_url,
    upgrade,
)


def _record(pid: str) -> PredictionRecord:
    return PredictionRecord(
        id=pid, ts=1.0, model="m", version=1, inputs={"x": 1.0}, outputs={"prediction": 2.0}
    )


def test_every_backend_is_migrated_and_upgrades_are_idempotent(database_url: str) -> None:
    engine = create_database(database_url)
    try:
        assert "alembic_version" in inspect(engine).get_table_names()
        PredictionLog(engine).append([_record("a")])
        upgrade(engine)  # already at the newest migration: nothing changes
        assert PredictionLog(engine).exists(["a"]) == {"a"}
    finally:
        engine.dispose()


def test_a_relative_sqlite_path_is_created_in_the_project(tmp_path: Path) -> None:
    engine = create_database("sqlite:///.modelpilot/meta.db", base_dir=tmp_path)
    try:
        PredictionLog(engine).append([_record("a")])
    finally:
        engine.dispose()
    assert (tmp_path / ".modelpilot" / "meta.db").is_file()

    reopened = create_database("sqlite:///.modelpilot/meta.db", base_dir=tmp_path)
    try:
        assert PredictionLog(reopened).exists(["a"]) == {"a"}
    finally:
        reopened.dispose()


def test_sqlite_file_uses_wal_and_enforces_foreign_keys(tmp_path: Path) -> None:
    # WAL lets readers (drift checks, the dashboard) run while the log writer commits.
    engine = create_database(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()


def test_in_memory_database_is_one_database_for_all_connections() -> None:
    engine = create_database("sqlite://")
    try:
        PredictionLog(engine).append([_record("a")])
        with engine.connect() as first, engine.connect() as second:
            assert first.connection.dbapi_connection is second.connection.dbapi_connection
        assert PredictionLog(engine).count() == 1
    finally:
        engine.dispose()


def test_resolve_url_leaves_absolute_and_memory_urls_alone(tmp_path: Path) -> None:
    absolute = f"sqlite:///{tmp_path / 'm.db'}"
    assert resolve_url(absolute, "/elsewhere") == absolute
    assert resolve_url("sqlite://", "/elsewhere") == "sqlite://"
    assert resolve_url("sqlite:///:memory:", "/elsewhere") == "sqlite:///:memory:"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "not a url",
            r"store\.database_url: expected an SQLAlchemy URL such as "
            r"sqlite:///\.modelpilot/modelpilot\.db, got 'not a url'",
        ),
        ("nosuchdb://user@host/db", r"store\.database_url: .*nosuchdb"),
        (
            "postgresql+psycopg://nobody:x@127.0.0.1:1/none",
            r"store\.database_url: cannot open the database",
        ),
    ],
)
def test_unusable_urls(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        create_database(url)
    assert info.value.exit_code == 2


def test_a_directory_where_the_database_file_should_be(tmp_path: Path) -> None:
    (tmp_path / "meta.db").mkdir()
    with pytest.raises(ConfigError, match="cannot open the database"):
        create_database(f"sqlite:///{tmp_path / 'meta.db'}")


def test_the_newest_revision_read_from_file_names_is_alembics_head() -> None:
    # `upgrade` skips importing Alembic when the database is at newest_revision(): a migration
    # file named otherwise would leave databases behind.
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from modelpilot.store import _db

    config = Config()
    config.set_main_option("script_location", str(_db._MIGRATIONS))
    assert _db.newest_revision() == ScriptDirectory.from_config(config).get_current_head()
