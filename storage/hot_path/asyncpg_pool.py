"""The hot path's PostgreSQL connections: a fixed set of asyncpg connections taken and given
back without a task of their own.

asyncpg's `Pool.release` shields its work in a new task and resets the connection under a
time-out, at every use: ~90 µs of CPU of the ~200 µs a pooled one-statement read costs, and
a tap makes two (its member read, its answer). The hot path needs less: its statements set no
session state, so a connection that comes back clean (open, outside a transaction, its block
ended without an error of the connection) is handed to the next caller at once. Anything
else is closed and a new one made when needed: a database restart, a cancelled query, a
block that failed midway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


class ConnectionPool:
    """Up to `size` connections made by `connect`; callers past that wait their turn."""

    def __init__(self, connect: Callable[[], Awaitable[Any]], size: int) -> None:
        self.connect = connect
        self.size = size
        self.idle: deque[Any] = deque()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.made = 0  # connections open or being opened
        self.closed = False

    def get_size(self) -> int:
        return self.made

    def get_idle_size(self) -> int:
        return len(self.idle)

    async def fill(self) -> None:
        """Open every connection now (a bot starting, ahead of its first crowd)."""
        while self.made < self.size:
            self.made += 1
            try:
                conn = await self.connect()
            except BaseException:
                self.made -= 1
                raise
            self.give_back(conn)

    async def take(self) -> Any:
        """A connection; made when none is idle and the pool is not full, else waited for
        (`asyncio.timeout` around this call bounds the wait)."""
        while True:
            if self.closed:
                raise RuntimeError("the hot path's connection pool is closed")
            while self.idle:
                conn = self.idle.pop()  # the most recently used: its caches are warm
                if not conn.is_closed():
                    return conn
                self.made -= 1
            if self.made < self.size:
                self.made += 1
                try:
                    return await self.connect()
                except BaseException:
                    self.made -= 1
                    self._wake(None)
                    raise
            turn: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self.waiting.append(turn)
            try:
                conn = await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._handed_back(turn.result())
                raise
            if conn is not None:
                return conn
            # None: a connection was closed, its place is free: make one on the next round

    def _handed_back(self, conn: Any) -> None:
        """A connection handed to a caller that gave up waiting: to the next one."""
        if conn is None:
            self._wake(None)
        else:
            self.give_back(conn)

    def give_back(self, conn: Any, clean: bool = True) -> None:
        """Return `conn`; `clean`: its block ended without an error that may have left the
        connection mid-query. An unclean or closed connection is closed, its place freed."""
        if self.closed or not clean or conn.is_closed() or conn.is_in_transaction():
            if not conn.is_closed():
                conn.terminate()
            self.made -= 1
            self._wake(None)
            return
        if not self._wake(conn):
            self.idle.append(conn)

    def _wake(self, conn: Any) -> bool:
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(conn)
                return True
        return False

    def terminate(self) -> None:
        self.closed = True
        while self.idle:
            with contextlib.suppress(Exception):
                self.idle.pop().terminate()
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_exception(RuntimeError("the hot path's connection pool is closed"))
