"""One SQL database for all metadata: SQLite under `.modelpilot/` by default, any SQLAlchemy URL.

The schema is created and upgraded by Alembic migrations the first time a project opens its
database, so a project made by an older modelpilot upgrades itself in place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

from modelpilot.errors import ConfigError

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).with_name("migrations")


def resolve_url(url: str, base_dir: str | os.PathLike[str]) -> str:
    """Make a relative SQLite path relative to the project directory.

    Examples
    --------
    >>> resolve_url("sqlite:///.modelpilot/m.db", "/srv/proj")
    'sqlite:////srv/proj/.modelpilot/m.db'
    >>> resolve_url("postgresql+psycopg://u@h/db", "/srv/proj")
    'postgresql+psycopg://u@h/db'
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(
            "store.database_url",
            [
                f"store.database_url: expected an SQLAlchemy URL such as "
                f"sqlite:///.modelpilot/modelpilot.db, got {url!r}"
            ],
        ) from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        if not path.is_absolute():
            path = Path(base_dir) / path
        return str(parsed.set(database=str(path)))
    return url


def _alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers (drift checks, the dashboard) run while the log writer commits;
    # synchronous=NORMAL is durable across process crashes, which is the promise we make.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # A 64 MiB page cache: the prediction log's index pages stay in memory during appends,
    # which doubles append throughput over the 2 MiB default.
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def _create_private(path: Path) -> None:
    """Create the SQLite file owner-only (0600) in an owner-only directory (0700), as
    ``tokens.json`` is: the prediction log holds the requests' inputs. SQLite creates its
    -wal and -shm files with the database file's permissions."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)


def create_database(url: str, *, base_dir: str | os.PathLike[str] = ".") -> Engine:
    """Open (and create or upgrade) the metadata database at ``url``."""
    resolved = resolve_url(url, base_dir)
    parsed = make_url(resolved)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    kwargs: dict[str, Any] = {}
    if is_sqlite:
        if parsed.database not in (None, "", ":memory:"):
            _create_private(Path(parsed.database))
        else:  # one shared connection, or every connection would see its own empty database
            kwargs["poolclass"] = StaticPool
            kwargs["connect_args"] = {"check_same_thread": False}
    try:
        engine = create_engine(resolved, **kwargs)
    except Exception as exc:  # missing driver, bad options
        raise ConfigError("store.database_url", [f"store.database_url: {exc}"]) from None
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    upgrade(engine)
    return engine


def newest_revision() -> str | None:
    """The newest migration's revision, read from the file names: ``0005_alerts.py`` is
    revision "0005" (a test holds every migration to this, and to Alembic's own answer).

    Examples
    --------
    >>> newest_revision() >= "0005"
    True
    """
    names = [p.name.split("_", 1)[0] for p in (_MIGRATIONS / "versions").glob("[0-9]*_*.py")]
    return max(names, default=None)


def _current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            value = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:  # a new database: no table yet
        return None
    return None if value is None else str(value)


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (no-op when it is already there)."""
    # Importing Alembic costs about 0.3 s, more than all the work of a command that only reads
    # (`models list`): a database already at the newest revision is recognised without it.
    if _current_revision(engine) == newest_revision():
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    try:
        with engine.begin() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
            if current == head:
                return
            cfg = _alembic_config()
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
    except OperationalError as exc:
        raise ConfigError(
            "store.database_url",
            [f"store.database_url: cannot open the database ({exc.orig})"],
        ) from None
