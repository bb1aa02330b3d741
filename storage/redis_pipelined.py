"""One pipelined Redis connection for the commands every tap sends (the member lock's scripts).

redis-py spends ~185 µs of CPU per command on its pool, retries, health checks and hooks;
a tap sends two (the member lock taken with its dialog read, then written and let go), and
at 50 members on PostgreSQL + Redis the bot's one core is the limit (bench/survey_load.py).
Here a command is one write on a shared connection and one reply parsed in the protocol's
callback: the commands of a crowd's updates go out together and their replies come back in
order. Everything else (FSM storage, rate limit, admin) keeps redis-py.

Faults: a dropped connection fails the commands waiting on it, and each is sent again on a
new connection, with back-off, for `RIDE_OUT_SECONDS` at least (a Redis restart); a reply that
does not come within `COMMAND_SECONDS` closes the connection the same way. A command sent
again may have run once already: the callers' scripts are written to be run twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import ssl
import time
from collections import deque
from typing import Any

from redis.asyncio.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

# The same tries and back-off as redis-py's clients (a Redis restart of a few seconds).
from storage.redis_pool import BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS, RETRIES

CONNECT_SECONDS = 5.0
COMMAND_SECONDS = 10.0
# A command is given up only after its tries and at least this long: a restart's few seconds
# of refused connections would otherwise use up the tries of every command in flight at once.
RIDE_OUT_SECONDS = 10.0

Reply = bytes | int | list[Any] | None | ResponseError


class Incomplete(Exception):
    """The buffer ends inside a reply: wait for more bytes."""


def parse(buf: bytes | bytearray, pos: int) -> tuple[Reply, int]:
    """One RESP2 reply at `pos`: (value, position after it). Errors are returned, not raised."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete
    kind, line = buf[pos], bytes(buf[pos + 1 : end])
    pos = end + 2
    if kind == 36:  # $ bulk string
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise Incomplete
        return bytes(buf[pos : pos + size]), pos + size + 2
    if kind == 42:  # * array
        count = int(line)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            item, pos = parse(buf, pos)
            items.append(item)
        return items, pos
    if kind == 58:  # : integer
        return int(line), pos
    if kind == 43:  # + simple string
        return line, pos
    if kind == 45:  # - error
        text = line.decode("utf-8", "replace")
        return (NoScriptError if text.startswith("NOSCRIPT") else ResponseError)(text), pos
    raise RedisConnectionError(f"unexpected reply from Redis: {bytes(buf[pos - 2 : end])!r}")


def encode(args: tuple[Any, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, int | float):
            arg = repr(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    """A connection: commands written in one send per loop turn, replies matched in order."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.waiting: deque[tuple[asyncio.Future[Reply], float]] = deque()
        self.outgoing: list[bytes] = []
        self.buffer = bytearray()
        self.lost: Exception | None = None
        self.watchdog: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def send(self, payload: bytes) -> asyncio.Future[Reply]:
        if self.lost is not None:
            raise RedisConnectionError(str(self.lost))
        future: asyncio.Future[Reply] = self.loop.create_future()
        self.waiting.append((future, time.monotonic()))
        if not self.outgoing:
            self.loop.call_soon(self._flush)
        self.outgoing.append(payload)
        if self.watchdog is None:
            self.watchdog = self.loop.call_later(COMMAND_SECONDS, self._check)
        return future

    def _flush(self) -> None:
        if self.outgoing and self.transport is not None and self.lost is None:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()

    def _check(self) -> None:
        """Close a connection whose oldest command has waited too long: Redis is hung or the
        network gone, and the replies still to come could not be told apart."""
        self.watchdog = None
        if not self.waiting:
            return
        age = time.monotonic() - self.waiting[0][1]
        if age >= COMMAND_SECONDS:
            self.close(RedisTimeoutError(f"no reply from Redis in {COMMAND_SECONDS:g} s"))
        else:
            self.watchdog = self.loop.call_later(COMMAND_SECONDS - age, self._check)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer
        buf += data
        pos = 0
        try:
            while pos < len(buf):
                reply, pos = parse(buf, pos)
                future, _ = self.waiting.popleft()
                if not future.done():
                    if isinstance(reply, ResponseError):
                        future.set_exception(reply)
                    else:
                        future.set_result(reply)
        except Incomplete:
            pass
        except (RedisConnectionError, ValueError, IndexError) as exc:
            self.close(RedisConnectionError(f"Redis reply out of step: {exc}"))
            return
        del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"connection to Redis lost: {exc or 'closed'}"))

    def close(self, reason: Exception) -> None:
        self._fail(reason)
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, reason: Exception) -> None:
        if self.lost is None:
            self.lost = reason
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(self.lost)
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None


class Script:
    def __init__(self, body: str) -> None:
        self.body = body
        self.sha = hashlib.sha1(body.encode()).hexdigest()


class PipelinedRedis:
    """Commands on one shared connection, made on first use and again after a fault."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.protocol: _Protocol | None = None
        self.connecting: asyncio.Lock | None = None
        self.connections = 0  # made so far, for tests and logs
        self.backoff = ExponentialWithJitterBackoff(
            base=BACKOFF_BASE_SECONDS, cap=BACKOFF_CAP_SECONDS
        )

    @classmethod
    def from_url(cls, url: str) -> PipelinedRedis:
        return cls(**parse_url(url))

    @classmethod
    def like(cls, client: Any) -> PipelinedRedis:
        """To the same server and database as a redis-py client."""
        pool = client.connection_pool
        return cls(**pool.connection_kwargs, connection_class=pool.connection_class)

    async def _connection(self) -> _Protocol:
        protocol = self.protocol
        if protocol is not None and protocol.lost is None:
            return protocol
        if self.connecting is None:
            self.connecting = asyncio.Lock()
        async with self.connecting:
            if self.protocol is None or self.protocol.lost is not None:
                self.protocol = await self._connect()
            return self.protocol

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        kw = self.kwargs
        kind = kw.get("connection_class")
        try:
            async with asyncio.timeout(CONNECT_SECONDS):
                if kind is not None and issubclass(kind, UnixDomainSocketConnection):
                    _, protocol = await loop.create_unix_connection(_Protocol, kw["path"])
                else:
                    secure = kind is not None and issubclass(kind, SSLConnection)
                    _, protocol = await loop.create_connection(
                        _Protocol,
                        kw.get("host", "localhost"),
                        kw.get("port", 6379),
                        ssl=ssl.create_default_context() if secure else None,
                    )
                self.connections += 1
                try:
                    if kw.get("password"):
                        user = kw.get("username")
                        auth = ("AUTH", user, kw["password"]) if user else ("AUTH", kw["password"])
                        await protocol.send(encode(auth))
                    if int(kw.get("db") or 0):
                        await protocol.send(encode(("SELECT", int(kw["db"]))))
                except BaseException as exc:
                    protocol.close(RedisConnectionError(f"Redis refused the connection: {exc}"))
                    raise
        except TimeoutError:
            raise RedisTimeoutError(f"Redis did not answer within {CONNECT_SECONDS:g} s") from None
        except OSError as exc:
            raise RedisConnectionError(f"cannot connect to Redis: {exc}") from exc
        return protocol

    async def execute_command(self, *args: Any) -> Any:
        """A command; sent again on a new connection after a connection fault or time-out."""
        payload = encode(args)
        began = time.monotonic()
        for attempt in itertools.count():
            try:
                return await (await self._connection()).send(payload)
            except (RedisConnectionError, RedisTimeoutError):
                if attempt >= RETRIES and time.monotonic() - began >= RIDE_OUT_SECONDS:
                    raise
                await asyncio.sleep(self.backoff.compute(min(attempt, RETRIES)))
        raise AssertionError("unreachable")

    async def run(self, script: Script, keys: list[Any], args: list[Any]) -> Any:
        """A Lua script by its digest, sent whole when the server does not know it yet (a new or
        restarted Redis)."""
        try:
            return await self.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await self.execute_command("EVAL", script.body, len(keys), *keys, *args)

    async def open(self) -> None:
        await self._connection()

    @property
    def connected(self) -> bool:
        return self.protocol is not None and self.protocol.lost is None

    async def close(self) -> None:
        if self.protocol is not None:
            self.protocol.close(RedisConnectionError("closed"))
            self.protocol = None
