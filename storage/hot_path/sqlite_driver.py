"""SQLite on the event loop's own thread, behind the interface SQLAlchemy's aiosqlite
dialect expects (`create_async_engine(..., async_creator=...)`).

aiosqlite runs every statement on a thread of its own: two thread hand-offs and the GIL
traffic that goes with them cost about half a millisecond of CPU per statement here, against
a few dozen microseconds for the statement itself on a local file. In WAL mode readers never
wait, and the write gate (storage/db.py) lets one writer of this process in at a time, so a
statement does not block. Only another process can hold the write lock: SQLite's own busy
handler is off (it would sleep on the loop), and "database is locked" is retried here with
asyncio.sleep instead, up to `busy_timeout` seconds.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
BUSY_MESSAGES = ("database is locked", "database table is locked", "database is busy")


async def retry_busy(call: Callable[[], T], busy_timeout: float) -> T:
    delay, waited = 0.002, 0.0
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not str(exc).startswith(BUSY_MESSAGES) or waited >= busy_timeout:
                raise
        await asyncio.sleep(delay)
        waited += delay
        delay = min(delay * 2, 0.1)


class InlineCursor:
    def __init__(self, connection: InlineConnection) -> None:
        self._connection = connection
        self._cursor = connection._conn.cursor()

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        cursor = self._cursor
        if parameters is None:
            await retry_busy(lambda: cursor.execute(sql), self._connection.busy_timeout)
        else:
            await retry_busy(lambda: cursor.execute(sql, parameters), self._connection.busy_timeout)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        rows = list(parameters)
        await retry_busy(lambda: self._cursor.executemany(sql, rows), self._connection.busy_timeout)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Sequence[Any] | None:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _RunNow:
    """What SQLAlchemy's adapter hands functions to (aiosqlite's queue to its thread)."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)


class InlineConnection:
    def __init__(self, conn: sqlite3.Connection, busy_timeout: float) -> None:
        self._conn = conn
        self._connection = conn  # the adapter tests it before commit and rollback
        self._tx = _RunNow()
        self.busy_timeout = busy_timeout

    @classmethod
    async def open(cls, database: str, busy_timeout: float = 30.0) -> InlineConnection:
        # No busy handler inside SQLite: it would sleep on the event loop (see retry_busy).
        conn = sqlite3.connect(database, timeout=0, check_same_thread=False)
        return cls(conn, busy_timeout)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        await retry_busy(self._conn.commit, self.busy_timeout)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._conn.close()
            self._connection = None

    def stop(self) -> None:
        self._conn.close()
        self._connection = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)
