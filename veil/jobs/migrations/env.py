"""Alembic environment: runs the packaged migrations on the connection Veil hands over
(``veil.jobs.db.upgrade_database``), or on ``sqlalchemy.url`` / ``VEIL_DATABASE_URL`` from the
command line (``alembic -c alembic.ini upgrade head``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from veil.jobs.db import create_db_engine, database_url
from veil.jobs.tables import Base
from veil.settings import get_settings

config = context.config
target_metadata = Base.metadata

_PG_LOCK_ID = 0x7665696C  # "veil": serialises concurrent migrations on PostgreSQL


def _run(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things in place
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or database_url(get_settings())
    engine = create_db_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or database_url(get_settings()),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
