"""Alembic environment: async engines for SQLite and PostgreSQL alike."""

import asyncio
from typing import Any

from alembic import context
from sqlalchemy.engine import Connection

from storage.db import make_engine
from storage.models import Base, UtcDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(kind: str, obj: Any, autogen_context: Any) -> str | bool:
    # Migrations must not import the models: UtcDateTime is a plain DateTime in the schema.
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime(timezone=True)"
    return False


# Any fixed number: the key of the advisory lock every instance takes before migrating.
MIGRATION_LOCK = 0x636F6E73756C74  # "consult"


def _run(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        # Rebuilding a table (batch mode) drops it: with foreign keys on, SQLite would first
        # delete its rows and cascade to the children. The pragma only works outside a
        # transaction: sent on the raw connection, before SQLAlchemy begins one.
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute("PRAGMA foreign_keys=OFF")
        cursor.close()
    if connection.dialect.name == "postgresql":
        # Instances starting together take turns; the lock ends with the transaction, which
        # then holds every migration: Alembic leaves a transaction begun here to us.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=_render_item,
        # SQLite's DDL is transactional too (with the explicit BEGIN of storage.db): one
        # transaction around the upgrade, so a failure leaves the previous revision intact.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
