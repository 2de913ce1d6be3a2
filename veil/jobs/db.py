"""The job store's database: one engine per process, built from ``Settings``.

Embedded mode is a SQLite file in ``VEIL_DATA_DIR`` in WAL mode (readers never
block the writer, and a killed process loses no committed row). Scaled-out mode
is any SQLAlchemy URL, PostgreSQL in practice. The schema comes only from the
Alembic migrations in ``veil/jobs/migrations``, applied by :func:`upgrade_database`
before anything serves (the migrations ship inside the package, so an installed
``veil`` can migrate its own database).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from veil.errors import StorageError, StorageFull, StorageUnavailable
from veil.private_files import make_private_dirs
from veil.settings import Settings

__all__ = [
    "MIGRATIONS_DIR",
    "Database",
    "alembic_config",
    "create_db_engine",
    "database_url",
    "upgrade_database",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def database_url(settings: Settings) -> str:
    """``VEIL_DATABASE_URL``, or the SQLite file ``VEIL_DATA_DIR/veil.db``."""
    if settings.database_url:
        return settings.database_url
    return f"sqlite:///{settings.data_dir / 'veil.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable at every checkpoint; WAL keeps it consistent
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
    finally:
        cursor.close()


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``: WAL and a generous busy timeout on SQLite, pre-ping on servers."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            _create_private(Path(path))
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _create_private(path: Path) -> None:
    """Create the SQLite file 0600 in a 0700 folder before SQLite does (it would use the umask, 0644):
    the job table names tenants and hashes. SQLite gives its -wal and -shm files the same mode."""
    make_private_dirs(path.parent)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


_SQLITE_FULL = 13
_SQLITE_IOERR = 10
_SQLITE_READONLY = 8
_PG_DISK_FULL = "53100"
_PG_GONE = ("57P01", "57P02", "57P03")
"""admin_shutdown, crash_shutdown, cannot_connect_now: the server is restarting (class 08 is the
connection itself)."""


def storage_error_of(exc: DBAPIError) -> StorageError | None:
    """The ``StorageError`` a database error means, if it means the database cannot be written
    (SQLite's "database or disk is full", a write I/O error or a read-only file; PostgreSQL's
    disk_full), or that it cannot be reached right now (a restart, a lost connection), else None."""
    orig = exc.orig
    if _unreachable(exc):
        return StorageUnavailable("the job database cannot be reached right now; try again shortly")
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    primary = None if sqlite_code is None else int(sqlite_code) & 0xFF
    if primary == _SQLITE_FULL or getattr(orig, "sqlstate", None) == _PG_DISK_FULL:
        return StorageFull("the job database cannot be written: its disk is full")
    if primary in (_SQLITE_IOERR, _SQLITE_READONLY):
        return StorageError("the job database cannot be written")
    return None


def _unreachable(exc: DBAPIError) -> bool:
    """A lost or refused connection to a database server (not SQLite, whose file is always there)."""
    if getattr(exc.orig, "sqlite_errorcode", None) is not None or isinstance(exc.orig, sqlite3.Error):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate is None:  # psycopg: connection refused or closed, before any SQL state
        return isinstance(exc, OperationalError)
    return str(sqlstate).startswith("08") or sqlstate in _PG_GONE


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config that finds the packaged migrations (no ``alembic.ini`` needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade_database(engine: Engine) -> None:
    """Apply every migration up to head. Idempotent; safe to call at each start."""
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")


class Database:
    """The engine plus a session factory. ``with db.begin() as session:`` is one transaction."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(create_db_engine(database_url(settings)))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Session]:
        """A session whose transaction commits when the block ends and rolls back on error.

        A database that cannot be written (disk full, I/O error) raises ``StorageFull`` or
        ``StorageError``, so callers see one error type for every place Veil writes to."""
        try:
            with self._sessions.begin() as session:
                yield session
        except DBAPIError as exc:
            converted = storage_error_of(exc)
            if converted is None:
                raise
            raise converted from exc

    def upgrade(self) -> None:
        upgrade_database(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
