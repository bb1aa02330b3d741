"""Engine and session factory; Alembic migrations applied programmatically."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
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
from sqlalchemy.util import await_

from storage.hot_path.sqlite_driver import InlineConnection
from storage.hot_path.statements import SERIAL_READS, Direct

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"


def _prepare_sqlite_path(url: str) -> None:
    """The database's folder 0700 and file 0600 when this creates them: members' data."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not path.exists():
            path.touch(mode=0o600)


def make_engine(
    url: str, *, sqlite_busy_timeout: float = 30.0, background: bool = False, **kwargs: Any
) -> AsyncEngine:
    """`background`: for a worker's long reads (an export), which on PostgreSQL run
    without parallel workers (storage/hot_path/statements.py, SERIAL_READS)."""
    _prepare_sqlite_path(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        # Readers never wait in WAL mode; writers queue on the gate instead of SQLite's busy
        # handler. No cap on connections: a session blocked on the gate keeps its own.
        kwargs.setdefault("pool_size", 20)
        kwargs.setdefault("max_overflow", -1)
        database = parsed.database
        if database and database != ":memory:" and not parsed.query:
            # A file: statements run on the loop's thread (storage/hot_path/sqlite_driver.py).
            engine = create_async_engine(
                url,
                async_creator=lambda: InlineConnection.open(database, sqlite_busy_timeout),
                **kwargs,
            )
            gate = SQLiteWriteGate(busy_ms=0)
            gate.install(engine)
            Direct.attach(engine, database, gate).busy = sqlite_busy_timeout
        else:
            engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
            SQLiteWriteGate().install(engine)
        return engine
    # Each update may hold two connections (its session and the FSM storage's), and the
    # outbox several: leave room above SQLAlchemy's default of 5 + 10.
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 30)
    if background and parsed.get_driver_name() == "asyncpg":
        kwargs.setdefault("connect_args", {"server_settings": SERIAL_READS})
    return create_async_engine(url, pool_pre_ping=True, **kwargs)


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


# Statements that never write: they run outside any transaction, as pysqlite always did.
_READS = ("SELECT", "PRAGMA", "EXPLAIN")
_GATE_KEY = "consultbot_write_gate"


class SQLiteWriteGate:
    """One writing transaction at a time per engine, each one `BEGIN IMMEDIATE`.

    SQLite has a single writer. Left to itself, each connection that wants to write spins in
    the busy handler with a growing back-off, and a transaction that read before writing may
    be refused outright (its snapshot is stale). Here the first write of a transaction (or a
    SAVEPOINT, or DDL) first takes an asyncio lock, then opens the transaction with
    `BEGIN IMMEDIATE`; COMMIT or ROLLBACK releases it. Reads before the first write run in
    autocommit, so they see the newest data and never hold a lock. pysqlite's own implicit
    BEGIN is switched off (isolation_level=None), so savepoints and DDL are transactional.
    """

    def __init__(self, wait: float = 20.0, busy_ms: int = 30_000) -> None:
        self.lock = asyncio.Lock()
        self.wait = wait
        self.busy_ms = busy_ms

    def install(self, engine: AsyncEngine) -> None:
        sync = engine.sync_engine
        event.listen(sync, "connect", self._on_connect)
        event.listen(sync, "before_cursor_execute", self._before_execute)
        event.listen(sync, "commit", self._on_commit)
        event.listen(sync, "rollback", self._on_rollback)
        event.listen(sync.pool, "reset", self._on_reset)
        event.listen(sync.pool, "invalidate", self._on_invalidate)

    def _on_connect(self, dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives the process being killed (only an OS crash or a
        # power cut can lose the last ones), without an fsync per transaction.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(self.busy_ms)}")
        cursor.close()

    async def _acquire(self) -> None:
        # asyncio.timeout, not wait_for: wait_for wraps the acquisition in a task of its own,
        # a cost paid at every write.
        async with asyncio.timeout(self.wait):
            await self.lock.acquire()

    @contextlib.asynccontextmanager
    async def holding(self) -> AsyncIterator[None]:
        """The gate for a writer that runs its own BEGIN and COMMIT (storage/hot_path/statements.py)."""
        try:
            await self._acquire()
        except TimeoutError:
            log.warning("SQLite write gate busy for %.0f s; writing without it", self.wait)
            yield
            return
        try:
            yield
        finally:
            self.lock.release()

    def _before_execute(
        self, conn: Any, _cursor: Any, statement: str, *_args: Any, **_kwargs: Any
    ) -> None:
        info = conn.info
        if info.get(_GATE_KEY) or statement.lstrip()[:7].upper().startswith(_READS):
            return
        try:
            await_(self._acquire())
            info[_GATE_KEY] = "held"
        except TimeoutError:
            # The holder is most likely this very task, in another session: let SQLite's
            # busy handler decide rather than wait for ever.
            log.warning("SQLite write gate busy for %.0f s; writing without it", self.wait)
            info[_GATE_KEY] = "bypass"
        try:
            self._run(conn.connection.dbapi_connection, "BEGIN IMMEDIATE")
        except BaseException:
            self._release(info)
            raise

    def _release(self, info: dict[str, Any]) -> None:
        if info.pop(_GATE_KEY, None) == "held":
            self.lock.release()

    @staticmethod
    def _run(dbapi_conn: Any, sql: str) -> None:
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(sql)
        finally:
            cursor.close()

    def _end(self, info: dict[str, Any], dbapi_conn: Any, sql: str) -> None:
        if _GATE_KEY not in info:
            return
        try:
            self._run(dbapi_conn, sql)
        finally:
            self._release(info)

    def _on_commit(self, conn: Any) -> None:
        self._end(conn.info, conn.connection.dbapi_connection, "COMMIT")

    def _on_rollback(self, conn: Any) -> None:
        if conn.info.get(_GATE_KEY):
            with contextlib.suppress(Exception):
                self._end(conn.info, conn.connection.dbapi_connection, "ROLLBACK")

    def _on_reset(self, dbapi_conn: Any, record: Any, reset_state: Any) -> None:
        # A connection returned to the pool without commit or rollback (an error, a cancel).
        if record.info.get(_GATE_KEY):
            with contextlib.suppress(Exception):
                self._end(record.info, dbapi_conn, "ROLLBACK")

    def _on_invalidate(self, _dbapi_conn: Any, record: Any, *_args: Any) -> None:
        self._release(record.info)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    from storage.session_reads import TrackedSession

    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=TrackedSession)


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

    destination.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    destination.touch(mode=0o600)  # members' data: the owner's only
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


def integrity_problem(db: Path, quick: bool = False) -> str | None:
    """What SQLite's integrity check finds wrong with a database file, or None when sound
    (`quick`: PRAGMA quick_check, which skips the indexes' contents: for a start-up)."""
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            pragma = "quick_check" if quick else "integrity_check"
            rows = conn.execute(f"PRAGMA {pragma}").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    found = [str(r[0]) for r in rows]
    return None if found == ["ok"] else "; ".join(found[:3])


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


def head_revision(migrations: Path = MIGRATIONS) -> str:
    from alembic.script import ScriptDirectory

    return str(
        ScriptDirectory.from_config(alembic_config("sqlite://", migrations)).get_current_head()
    )


async def current_revision(url: str) -> str | None:
    """The schema's revision, or None for a database nothing was migrated into. Reads only:
    a missing SQLite file is not created."""
    db = _sqlite_file(url)
    if db is not None:
        return await asyncio.to_thread(_sqlite_revision, db)
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()


async def upgrade_async(url: str, revision: str = "head") -> None:
    """`upgrade` from inside a running event loop (Alembic's env starts a loop of its own)."""
    import asyncio

    await asyncio.to_thread(upgrade, url, revision)
