"""INSERT … ON CONFLICT for the dialect at hand (SQLite and PostgreSQL spell it alike)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession


def upsert_for(bind: AsyncSession | AsyncEngine) -> Any:
    """`insert` of the bind's dialect, with `on_conflict_do_update/_nothing`."""
    engine = bind.bind if isinstance(bind, AsyncSession) else bind
    name = engine.dialect.name if engine is not None else "sqlite"
    return sqlite_insert if name == "sqlite" else pg_insert
