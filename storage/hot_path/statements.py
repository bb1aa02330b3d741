"""The statements of every tap, run without the ORM session.

A survey tap loads its member, stores an answer and saves the dialog's state. Through an ORM
session each of those cost several times more CPU in SQLAlchemy than in the database (the
load benchmark's profile, bench/README.md): the session's transaction, the identity map,
a savepoint. Here they are prebuilt Core statements run on a plain connection:

- on a SQLite file, compiled once for SQLite and run on two sqlite3 connections of this
  engine's own: one reads (autocommit, WAL: it never waits), one writes, behind the engine's
  write gate like every other writer of the process, in `BEGIN IMMEDIATE` transactions;
- on PostgreSQL (asyncpg), compiled once and run on a small asyncpg pool of this engine's
  own (storage/hot_path/asyncpg_pool.py): through SQLAlchemy a one-statement read cost
  ~0.6 ms of CPU (pre-ping, BEGIN, ROLLBACK around it), on asyncpg ~0.1 ms. A closed
  connection is replaced when next needed (a database restart);
- on any other database, on a connection of the engine's pool.

Rows come back as the driver gives them: select plain columns (text, integers), not
datetimes or booleans, and convert them in the repository.

A survey answer is stored by the statements of `SurveyRepository.store`
(storage/repositories/survey.py) run here on SQLite; on PostgreSQL by one call of
`consultbot_store_answer`, the function of migration 0007 that runs the same statements
(`SurveyRepository.store_at_once`, autocommitted). tests/test_store_parity.py checks that both
leave the same rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import sqlite3
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from storage.hot_path.asyncpg_pool import ConnectionPool
from storage.hot_path.sqlite_driver import retry_busy
from storage.pools import PoolExhausted, exhausted

log = logging.getLogger(__name__)
Params = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None
_ATTRIBUTE = "consultbot_direct"


class Runner(Protocol):
    async def rows(self, statement: Any, params: Mapping[str, Any] | None = None) -> list[Any]:
        """The statement's rows (tuples)."""

    async def run(self, statement: Any, params: Params = None) -> None:
        """Run a statement; a list of parameter sets runs it once for each."""


class _Engine:
    """Any database: a pooled connection of the engine."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def rows(self, statement: Any, params: Mapping[str, Any] | None = None) -> list[Any]:
        return list((await self.conn.execute(statement, params)).all())

    async def run(self, statement: Any, params: Params = None) -> None:
        if isinstance(params, Sequence) and not params:
            return
        await self.conn.execute(statement, params)  # type: ignore[arg-type]


class _Compiled:
    """One statement compiled for SQLite: its SQL, parameter order, fixed values, converters."""

    def __init__(self, statement: Any, dialect: Any, keys: Sequence[str] | None) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=keys)
        if "POSTCOMPILE" in compiled.string:
            raise ValueError(f"expanding parameters are not run directly: {compiled.string}")
        self.sql: str = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        # Values written into the statement (`.values(status="draft")`).
        self.fixed = {
            name: bind.value
            for name, bind in compiled.binds.items()
            if not bind.required and bind.value is not None and bind.callable is None
        }
        # SQLAlchemy's own converters (dates, booleans) for these parameters.
        self.processors: dict[str, Any] = dict(compiled._bind_processors)

    def values(self, params: Mapping[str, Any] | None) -> tuple[Any, ...]:
        given = params or {}
        out = []
        for name in self.names:
            if name in given:
                value = given[name]
            elif name in self.fixed:
                value = self.fixed[name]
            else:
                # A column default SQLAlchemy would have filled in: pass it explicitly.
                raise KeyError(f"no value for {name!r} in {self.sql}")
            process = self.processors.get(name)
            out.append(process(value) if process is not None and value is not None else value)
        return tuple(out)


class _SQLite:
    """A SQLite file: statements compiled once, run on a sqlite3 connection."""

    def __init__(self, conn: sqlite3.Connection, direct: Direct) -> None:
        self.conn = conn
        self.direct = direct

    async def rows(self, statement: Any, params: Mapping[str, Any] | None = None) -> list[Any]:
        compiled = self.direct.compiled(statement, None)
        args = compiled.values(params)
        cursor = await retry_busy(lambda: self.conn.execute(compiled.sql, args), self.direct.busy)
        return cursor.fetchall()

    async def run(self, statement: Any, params: Params = None) -> None:
        if isinstance(params, Sequence):
            if not params:
                return
            compiled = self.direct.compiled(statement, tuple(params[0]))
            args = [compiled.values(p) for p in params]
            await retry_busy(lambda: self.conn.executemany(compiled.sql, args), self.direct.busy)
            return
        compiled = self.direct.compiled(statement, None)
        one = compiled.values(params)
        await retry_busy(lambda: self.conn.execute(compiled.sql, one), self.direct.busy)


@functools.cache
def _refused() -> type[Exception]:
    import asyncpg

    return asyncpg.PostgresError


class _Asyncpg:
    """PostgreSQL: statements compiled once, run on an asyncpg connection."""

    def __init__(self, conn: Any, direct: Direct) -> None:
        self.conn = conn
        self.direct = direct

    async def rows(self, statement: Any, params: Mapping[str, Any] | None = None) -> list[Any]:
        compiled = self.direct.compiled(statement, None)
        return list(await self.conn.fetch(compiled.sql, *compiled.values(params)))

    async def run(self, statement: Any, params: Params = None) -> None:
        if isinstance(params, Sequence):
            if not params:
                return
            compiled = self.direct.compiled(statement, tuple(params[0]))
            await self.conn.executemany(compiled.sql, [compiled.values(p) for p in params])
            return
        compiled = self.direct.compiled(statement, None)
        await self.conn.execute(compiled.sql, *compiled.values(params))


class _SQLiteAside:
    """A SQLite file read on a worker thread, on a connection of that thread: sqlite3 lets go
    of the GIL while SQLite works, so a GROUP BY over every response (seconds at 100,000)
    leaves the event loop and its taps running. Reads only."""

    def __init__(self, direct: Direct) -> None:
        self.direct = direct

    async def rows(self, statement: Any, params: Mapping[str, Any] | None = None) -> list[Any]:
        compiled = self.direct.compiled(statement, None)
        job = functools.partial(self.direct._read_aside, compiled.sql, compiled.values(params))
        return await asyncio.get_running_loop().run_in_executor(self.direct._aside_threads(), job)

    async def run(self, statement: Any, params: Params = None) -> None:
        raise RuntimeError("long reads only: write through writing()")


# Long reads at once; more would only share the same cores.
ASIDE_THREADS = 2
# How much lower than the loop's a long read's CPU priority is (nice): on a busy machine the
# members' taps come first, a tally can wait a little.
BACKGROUND_NICE = 10
# PostgreSQL, for the long reads of background work (tallies, exports): no parallel workers.
# A tally over 100,000 responses ran as three processes, 0.5 s on every core of a 2-core
# machine, and the members' taps waited for CPU meanwhile (bench/results_load.py); serial,
# it takes one core for ~1 s and leaves the others to the bot. Nice cannot reach the
# server's processes; this can.
SERIAL_READS = {"max_parallel_workers_per_gather": "0"}


def background_priority() -> None:
    """Lower the calling thread's CPU priority (Linux schedules threads one by one)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


# Connections of the asyncpg pool: the statements are short, a crowd's updates take turns.
ASYNCPG_POOL_SIZE = 10


class Direct:
    """`reading()` and `writing()` runners for one engine (`Direct.of(engine)`)."""

    def __init__(self, engine: AsyncEngine, database: str | None, gate: Any = None) -> None:
        self.engine = engine
        self.database = database  # a SQLite file run directly, or None
        self.gate = gate
        self.busy = 30.0
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._compiled: dict[tuple[Any, tuple[str, ...] | None], _Compiled] = {}
        self._trace: Any = None
        self.asyncpg = database is None and engine.dialect.driver == "asyncpg"
        self.pool_size = ASYNCPG_POOL_SIZE
        self.acquire_timeout = 30.0
        self._pool: ConnectionPool | None = None
        # Worker threads' own connections for long reads (`reading_aside`), closed with ours.
        self._aside = threading.local()
        self._aside_connections: list[sqlite3.Connection] = []
        self._aside_pool: ThreadPoolExecutor | None = None
        if self.asyncpg:
            event.listen(engine.sync_engine, "engine_disposed", self._terminate)

    @classmethod
    def attach(cls, engine: AsyncEngine, database: str | None = None, gate: Any = None) -> Direct:
        direct = cls(engine, database, gate)
        setattr(engine.sync_engine, _ATTRIBUTE, direct)
        if database is not None:
            event.listen(engine.sync_engine, "engine_disposed", lambda _e: direct.close())
        return direct

    @classmethod
    def of(cls, engine: AsyncEngine) -> Direct:
        found = getattr(engine.sync_engine, _ATTRIBUTE, None)
        return found if found is not None else cls.attach(engine)

    @classmethod
    def of_session(cls, session: AsyncSession) -> Direct:
        """The runners of the engine `session` is bound to (statements run without it)."""
        engine = session.bind
        assert isinstance(engine, AsyncEngine)
        return cls.of(engine)

    def limit(self, pool_size: int, acquire_timeout: float) -> None:
        """PostgreSQL: the asyncpg pool's size, its share of the instance's connection budget
        (storage/pools.py); 0: no pool of its own, the statements run on the engine's."""
        if pool_size == 0:
            self.asyncpg = False
        self.pool_size = pool_size
        self.acquire_timeout = acquire_timeout

    def compiled(self, statement: Any, keys: tuple[str, ...] | None) -> _Compiled:
        found = self._compiled.get((statement, keys))
        if found is None:
            found = _Compiled(statement, self.engine.dialect, keys)
            self._compiled[(statement, keys)] = found
        return found

    def trace(self, callback: Any) -> None:
        """Call `callback(sql)` for every statement run on a SQLite file directly (SQLAlchemy's
        events do not see them): for tests and debugging."""
        self._trace = callback
        for conn in (self._reader, self._writer, *self._aside_connections):
            if conn is not None:
                conn.set_trace_callback(callback)

    def _open(self) -> sqlite3.Connection:
        assert self.database is not None
        conn = sqlite3.connect(self.database, timeout=0, check_same_thread=False)
        conn.isolation_level = None  # transactions are begun and ended here, explicitly
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")
        conn.set_trace_callback(self._trace)
        return conn

    async def _asyncpg_pool(self, full: bool = False) -> ConnectionPool:
        if self._pool is None:
            import asyncpg

            args, kwargs = self.engine.dialect.create_connect_args(self.engine.url)
            self._pool = ConnectionPool(
                functools.partial(asyncpg.connect, *args, **kwargs), self.pool_size
            )
        if full:
            await self._pool.fill()
        return self._pool

    async def open(self) -> None:
        """Connect ahead of the first crowd (a bot starting): each connection of the asyncpg
        pool opened and kept. Otherwise they open on demand, a few milliseconds each, during
        the first burst of taps. Nothing to do on SQLite (a local file)."""
        if self.asyncpg:
            await self._asyncpg_pool(full=True)

    @contextlib.asynccontextmanager
    async def _acquire(self, pool: ConnectionPool) -> AsyncIterator[Any]:
        """A connection of the pool, or a clear error once none came free in time."""
        if pool.idle:
            conn = await pool.take()  # one is free: no wait to bound
        else:
            try:
                async with asyncio.timeout(self.acquire_timeout):
                    conn = await pool.take()
            except TimeoutError:
                message = exhausted("hot-path (asyncpg)", self.pool_size, self.acquire_timeout)
                log.error(message)
                raise PoolExhausted(message) from None
        clean = False
        try:
            yield conn
            clean = True
        except _refused():  # the server refused a statement: the connection is fine
            clean = True
            raise
        finally:
            pool.give_back(conn, clean)

    def _terminate(self, _engine: Any = None) -> None:
        """The engine is disposed: so is the asyncpg pool (made again if the engine is used)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()

    @contextlib.asynccontextmanager
    async def reading(self) -> AsyncIterator[Runner]:
        """Reads outside any transaction (each sees the newest committed data)."""
        if self.asyncpg:
            async with self._acquire(await self._asyncpg_pool()) as conn:
                yield _Asyncpg(conn, self)
            return
        if self.database is None:
            async with self.engine.connect() as conn:
                yield _Engine(conn)
            return
        if self._reader is None:
            self._reader = self._open()
        yield _SQLite(self._reader, self)

    @contextlib.asynccontextmanager
    async def reading_aside(self) -> AsyncIterator[Runner]:
        """Reads too long for the event loop's thread (a tally of every response): on a SQLite
        file they run on a worker thread; elsewhere as `reading()`, the database server doing
        the work while the loop goes on (serially: `SERIAL_READS`)."""
        if self.asyncpg:
            async with self._acquire(await self._asyncpg_pool()) as conn:
                async with conn.transaction(readonly=True):
                    for name, value in SERIAL_READS.items():
                        await conn.execute("SELECT set_config($1, $2, true)", name, value)
                    yield _Asyncpg(conn, self)
            return
        if self.database is None:
            async with self.reading() as runner:
                yield runner
            return
        yield _SQLiteAside(self)

    def _aside_threads(self) -> ThreadPoolExecutor:
        if self._aside_pool is None:
            self._aside_pool = ThreadPoolExecutor(
                ASIDE_THREADS, "sqlite-aside", initializer=background_priority
            )
        return self._aside_pool

    def _read_aside(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        """On a worker thread: its own connection (WAL: a reader never waits for writers)."""
        conn: sqlite3.Connection | None = getattr(self._aside, "conn", None)
        if conn is None:
            assert self.database is not None
            conn = sqlite3.connect(self.database, timeout=self.busy, check_same_thread=False)
            conn.isolation_level = None
            conn.set_trace_callback(self._trace)
            self._aside.conn = conn
            self._aside_connections.append(conn)
        return conn.execute(sql, args).fetchall()

    def autocommit(self) -> contextlib.AbstractAsyncContextManager[Runner]:
        """PostgreSQL: each statement committed on its own (a pooled connection outside any
        transaction), for a write that is one statement."""
        if not self.asyncpg:
            raise RuntimeError("autocommitted writes are run on PostgreSQL (asyncpg) only")
        return self.reading()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[Runner]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        if self.asyncpg:
            async with self._acquire(await self._asyncpg_pool()) as conn, conn.transaction():
                yield _Asyncpg(conn, self)
            return
        if self.database is None:
            async with self.engine.begin() as conn:
                yield _Engine(conn)
            return
        async with self.gate.holding():
            if self._writer is None:
                self._writer = self._open()
            writer = self._writer
            await retry_busy(lambda: writer.execute("BEGIN IMMEDIATE"), self.busy)
            try:
                yield _SQLite(writer, self)
                await retry_busy(lambda: writer.execute("COMMIT"), self.busy)
            except BaseException:
                if writer.in_transaction:
                    writer.execute("ROLLBACK")
                raise

    def close(self) -> None:
        for conn in (self._reader, self._writer, *self._aside_connections):
            if conn is not None:
                conn.close()
        self._reader = self._writer = None
        self._aside = threading.local()
        self._aside_connections = []
        if self._aside_pool is not None:
            self._aside_pool.shutdown(wait=False)
            self._aside_pool = None
