"""Engine and session factory; Alembic migrations applied programmatically."""

from __future__ import annotations

import re
import threading
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
        _explicit_begin(engine)

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


# Statements that only read: they may run before the transaction's BEGIN (see below).
_READ_ONLY = re.compile(r"\s*(SELECT|PRAGMA|EXPLAIN)\b", re.IGNORECASE)


def _explicit_begin(engine: AsyncEngine) -> None:
    """SQLAlchemy's "explicit BEGIN" recipe for pysqlite/aiosqlite. The driver alone emits
    BEGIN only before INSERT/UPDATE/DELETE: a SAVEPOINT coming first committed at once, and
    migrations' DDL committed statement by statement. Here the driver never begins, and each
    SQLAlchemy transaction emits its own BEGIN before its first statement that is not a plain
    read (a write, a SAVEPOINT, DDL), as BEGIN IMMEDIATE. Reads before it stay outside, as
    before: a BEGIN at the first read would pin a snapshot that SQLite refuses to turn into a
    write once another connection has committed ("database is locked", at once, no waiting)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _no_driver_begin(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        conn.info["sqlite_begin"] = "pending"

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _begin_before_first_write(conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if conn.info.get("sqlite_begin") == "pending" and not _READ_ONLY.match(statement):
            conn.info["sqlite_begin"] = "begun"
            cursor.execute("BEGIN IMMEDIATE")

    @event.listens_for(engine.sync_engine, "commit")
    @event.listens_for(engine.sync_engine, "rollback")
    def _end(conn: Any) -> None:
        conn.info.pop("sqlite_begin", None)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def alembic_config(url: str, migrations: Path = MIGRATIONS) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def backup_sqlite(source: Path, destination: Path) -> None:
    """A consistent copy of a live SQLite database (sqlite3's online backup API: safe while
    the bot writes, WAL included)."""
    import sqlite3

    destination.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source)
    try:
        dst = sqlite3.connect(destination)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        finally:
            dst.close()
    finally:
        src.close()


def _sqlite_revision(db: Path) -> str | None:
    import sqlite3

    if not db.exists() or db.stat().st_size == 0:
        return None
    conn = sqlite3.connect(db)
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no version table: nothing migrated yet
        return None
    finally:
        conn.close()
    return row[0] if row else None


def _copy_before_upgrade(db: Path, cfg: Any, revision: str) -> Path | None:
    """data/consultbot.db -> data/consultbot.db.bak-<current revision>, when the upgrade has
    something to apply to a database that holds something."""
    from alembic.script import ScriptDirectory

    current = _sqlite_revision(db)
    if current is None:
        return None
    targets = {r.revision for r in ScriptDirectory.from_config(cfg).get_revisions(revision) if r}
    if current in targets:
        return None
    copy = db.with_name(f"{db.name}.bak-{current}")
    backup_sqlite(db, copy)
    return copy


# Alembic's `context` is a process-wide proxy: two upgrades in threads of one process would
# mix their environments. Other processes are kept out by the file or advisory lock.
_UPGRADE_IN_PROCESS = threading.Lock()


def upgrade(url: str, revision: str = "head", migrations: Path = MIGRATIONS) -> None:
    """Apply migrations (synchronous: call it outside a running event loop).

    One upgrade at a time (several instances may start together): a file lock next to the
    SQLite file, pg_advisory_xact_lock on PostgreSQL (see migrations/env.py). Each runs in one
    transaction, so a failing migration leaves the previous revision intact; on SQLite the
    file is copied first when there is something to apply."""
    from alembic import command

    _prepare_sqlite_path(url)
    cfg = alembic_config(url, migrations)
    db = _sqlite_file(url)
    with _UPGRADE_IN_PROCESS:
        if db is None:
            command.upgrade(cfg, revision)
            return
        import fcntl

        with open(db.with_name(f"{db.name}.migrate.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                _copy_before_upgrade(db, cfg, revision)
                command.upgrade(cfg, revision)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


async def upgrade_async(url: str, revision: str = "head") -> None:
    """`upgrade` from inside a running event loop (Alembic's env starts a loop of its own)."""
    import asyncio

    await asyncio.to_thread(upgrade, url, revision)
