"""The bot's process runs on uvloop where it is installed, on asyncio's loop otherwise."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest
import uvloop

from consultbot import event_loop


async def _loop_and_signal() -> tuple[type, bool]:
    # The bot's own uses of the loop beyond tasks: a signal handler and a thread hop.
    loop = asyncio.get_running_loop()
    got = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, got.set)
    try:
        await asyncio.to_thread(signal.raise_signal, signal.SIGUSR1)
        await asyncio.wait_for(got.wait(), 5)
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    return type(loop), got.is_set()


def test_the_bot_runs_on_uvloop() -> None:
    kind, signalled = event_loop.run(_loop_and_signal())
    assert kind is uvloop.Loop
    assert signalled


def test_without_uvloop_asyncio_runs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import fails, as on Windows
    kind, signalled = event_loop.run(_loop_and_signal())
    assert kind is not uvloop.Loop
    assert issubclass(kind, asyncio.BaseEventLoop)
    assert signalled
