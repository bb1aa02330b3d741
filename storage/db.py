"""Engine and session factory; Alembic migrations applied programmatically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def _prepare_sqlite_path(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    _prepare_sqlite_path(url)
    if make_url(url).get_backend_name() == "sqlite":
        # Several sessions write concurrently (FSM storage, outbox): wait instead of failing.
        # No cap on connections: an update holds one while aiogram-dialog's FSM storage takes
        # another, and the outbox takes up to 9; with QueuePool's cap (5 + 10) a burst of
        # updates during a broadcast waited on each other for the pool timeout (30 s).
        kwargs.setdefault("max_overflow", -1)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # Each update may hold two connections (its session and the FSM storage's), and the
    # outbox several: leave room above SQLAlchemy's default of 5 + 10.
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 30)
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (synchronous: call it outside a running event loop)."""
    from alembic import command

    _prepare_sqlite_path(url)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """`upgrade` from inside a running event loop (Alembic's env starts a loop of its own)."""
    import asyncio

    await asyncio.to_thread(upgrade, url, revision)
