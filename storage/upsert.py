"""INSERT … ON CONFLICT for the dialect at hand (SQLite and PostgreSQL spell it alike)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession


def insert_for(dialect: str) -> Any:
    """`insert` of the dialect named, with `on_conflict_do_update/_nothing`."""
    return sqlite_insert if dialect == "sqlite" else pg_insert


def upsert_for(bind: AsyncSession | AsyncEngine) -> Any:
    """`insert` of the bind's dialect, with `on_conflict_do_update/_nothing`."""
    engine = bind.bind if isinstance(bind, AsyncSession) else bind
    return insert_for(engine.dialect.name if engine is not None else "sqlite")
