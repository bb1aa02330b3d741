"""The member lock's pipelined Redis connection: replies matched in order, scripts the server
does not know yet, and faults (a dropped connection, a silent server, a wrong password)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from storage import redis_pipelined
from storage.redis_pipelined import Incomplete, PipelinedRedis, Script, encode, parse
from storage.redis_pool import redis_client
from tests.support import REDIS_URL

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
# asyncio's own loop and uvloop, the bot's (consultbot/event_loop.py): their transports
# differ (uvloop's are not `asyncio.Transport`s), and so may their faults.
LOOPS = [
    pytest.param(asyncio.new_event_loop, id="asyncio"),
    pytest.param(uvloop.new_event_loop, id="uvloop"),
]


def on(loop: LoopFactory, test: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=loop) as runner:
        runner.run(test)


def test_replies_are_parsed_whole_or_not_at_all() -> None:
    stream = (
        b"*4\r\n$5\r\nhello\r\n$-1\r\n:42\r\n*2\r\n+OK\r\n$0\r\n\r\n"
        b"-NOSCRIPT No matching script.\r\n-ERR wrong\r\n*-1\r\n"
    )
    replies, pos = [], 0
    while pos < len(stream):
        reply, pos = parse(stream, pos)
        replies.append(reply)
    assert replies[:1] == [[b"hello", None, 42, [b"OK", b""]]]
    assert type(replies[1]).__name__ == "NoScriptError" and isinstance(replies[2], ResponseError)
    assert replies[3] is None
    # Cut anywhere, a reply is not taken until its last byte is there.
    for cut in range(1, 40):
        with pytest.raises(Incomplete):
            parse(stream[:cut], 0)
    assert encode(("SET", "clé", 5, b"\x00")) == (
        b"*4\r\n$3\r\nSET\r\n$4\r\ncl\xc3\xa9\r\n$1\r\n5\r\n$1\r\n\x00\r\n"
    )


async def _a_crowd_of_commands_gets_each_its_own_reply() -> None:
    fast = PipelinedRedis.from_url(REDIS_URL)
    check = redis_client(REDIS_URL)
    prefix = f"pipe-{secrets.token_hex(4)}"
    try:
        await asyncio.gather(*(fast.execute_command("SET", f"{prefix}:{i}", i) for i in range(500)))
        values = await asyncio.gather(
            *(fast.execute_command("GET", f"{prefix}:{i}") for i in range(500))
        )
        assert values == [str(i).encode() for i in range(500)]
        # the URL's database, as redis-py sees it
        assert await check.get(f"{prefix}:499") == b"499"
        assert fast.connections == 1
    finally:
        await check.delete(*(f"{prefix}:{i}" for i in range(500)))
        await check.aclose()
        await fast.close()


async def _a_script_the_server_does_not_know_is_sent_whole_once() -> None:
    fast = PipelinedRedis.from_url(REDIS_URL)
    check = redis_client(REDIS_URL)
    # A body of its own: a digest no server has seen, as after a Redis restart.
    script = Script(f"-- {secrets.token_hex(8)}\nreturn {{KEYS[1], ARGV[1]}}")
    try:
        assert await check.script_exists(script.sha) == [False]
        assert await fast.run(script, ["k"], [7]) == [b"k", b"7"]
        assert await check.script_exists(script.sha) == [True]
        assert await fast.run(script, ["l"], ["x"]) == [b"l", b"x"]
        with pytest.raises(ResponseError):
            await fast.run(Script("return redis.call('NOSUCH')"), [], [])
        assert await fast.execute_command("PING") == b"PONG"  # still in step
    finally:
        await check.aclose()
        await fast.close()


async def _a_dropped_connection_is_made_again_and_the_command_sent_again() -> None:
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        first = len(connections) == 1
        while data := await reader.read(65536):
            if first:
                break  # dropped with the command unanswered
            writer.write(b":1\r\n" * data.count(b"*"))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    fast = PipelinedRedis(host="127.0.0.1", port=server.sockets[0].getsockname()[1])
    try:
        replies = await asyncio.gather(*(fast.execute_command("PING") for _ in range(20)))
        assert replies == [1] * 20
        assert len(connections) == 2 and fast.connections == 2
    finally:
        await fast.close()
        server.close()


async def _a_silent_server_times_out_and_gives_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_pipelined, "COMMAND_SECONDS", 0.2)
    monkeypatch.setattr(redis_pipelined, "RETRIES", 1)
    monkeypatch.setattr(redis_pipelined, "RIDE_OUT_SECONDS", 0)
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while await reader.read(65536):
            pass  # reads, never answers
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    fast = PipelinedRedis(host="127.0.0.1", port=server.sockets[0].getsockname()[1])
    try:
        async with asyncio.timeout(5):
            with pytest.raises(RedisTimeoutError):
                await fast.execute_command("PING")
        assert connections == 2  # tried once more on a new connection, then gave up
    finally:
        await fast.close()
        server.close()


async def _no_server_and_a_wrong_password_are_clear_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(redis_pipelined, "RETRIES", 1)
    monkeypatch.setattr(redis_pipelined, "RIDE_OUT_SECONDS", 0)
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    nobody = PipelinedRedis(host="127.0.0.1", port=port)
    with pytest.raises(RedisConnectionError, match="cannot connect"):
        await nobody.execute_command("PING")
    # This Redis has no password: AUTH is refused, and not tried again and again.
    wrong = PipelinedRedis.from_url(REDIS_URL.replace("redis://", "redis://:wrong@"))
    try:
        async with asyncio.timeout(5):
            with pytest.raises(ResponseError, match="AUTH"):
                await wrong.execute_command("PING")
        assert wrong.connections == 1
    finally:
        await wrong.close()


async def _a_server_back_within_seconds_is_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    # A real Redis restart (shutdown, 1 s down, started again) under 40 member turns at once:
    # 8 turns failed, their few tries spent while nothing listened.
    monkeypatch.setattr(redis_pipelined, "RETRIES", 2)  # alone, given up within ~0.15 s
    probe = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(b"+PONG\r\n" * data.count(b"*"))
        writer.close()

    async def restart() -> asyncio.Server:
        await asyncio.sleep(1.5)
        return await asyncio.start_server(serve, "127.0.0.1", port)

    fast = PipelinedRedis(host="127.0.0.1", port=port)
    back = asyncio.create_task(restart())
    try:
        async with asyncio.timeout(10):
            replies = await asyncio.gather(*(fast.execute_command("PING") for _ in range(40)))
        assert replies == [b"PONG"] * 40
    finally:
        await fast.close()
        (await back).close()


@pytest.mark.parametrize("loop", LOOPS)
def test_a_crowd_of_commands_gets_each_its_own_reply(loop: LoopFactory) -> None:
    on(loop, _a_crowd_of_commands_gets_each_its_own_reply())


@pytest.mark.parametrize("loop", LOOPS)
def test_a_script_the_server_does_not_know_is_sent_whole_once(loop: LoopFactory) -> None:
    on(loop, _a_script_the_server_does_not_know_is_sent_whole_once())


@pytest.mark.parametrize("loop", LOOPS)
def test_a_dropped_connection_is_made_again_and_the_command_sent_again(loop: LoopFactory) -> None:
    on(loop, _a_dropped_connection_is_made_again_and_the_command_sent_again())


@pytest.mark.parametrize("loop", LOOPS)
def test_a_silent_server_times_out_and_gives_up(
    loop: LoopFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    on(loop, _a_silent_server_times_out_and_gives_up(monkeypatch))


@pytest.mark.parametrize("loop", LOOPS)
def test_no_server_and_a_wrong_password_are_clear_errors(
    loop: LoopFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    on(loop, _no_server_and_a_wrong_password_are_clear_errors(monkeypatch))


@pytest.mark.parametrize("loop", LOOPS)
def test_a_server_back_within_seconds_is_waited_for(
    loop: LoopFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    on(loop, _a_server_back_within_seconds_is_waited_for(monkeypatch))
